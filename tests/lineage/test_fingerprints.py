"""Dataset fingerprints: stable across processes, sensitive to values, column order and dtype."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import labledger as ll

FRAME_CODE = """
import json, pandas as pd, numpy as np, labledger as ll
df = pd.DataFrame({"age": [31, 47, 22, 58], "income": [3.5, np.nan, 2.25, 7.0],
                   "city": ["Oslo", "Lima", None, "Pune"], "label": pd.Categorical(["a", "b", "a", "b"])})
print(json.dumps([ll.fingerprint(df).digest, ll.fingerprint(df["income"]).digest]))
"""


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [31, 47, 22, 58],
            "income": [3.5, np.nan, 2.25, 7.0],
            "city": ["Oslo", "Lima", None, "Pune"],
            "label": pd.Categorical(["a", "b", "a", "b"]),
        }
    )


def test_the_same_dataframe_gets_the_same_fingerprint_in_two_processes():
    outs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", FRAME_CODE],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"},
            ).stdout
        )
        for seed in (1, 2)
    ]
    assert outs[0] == outs[1]
    assert outs[0][0] == ll.fingerprint(_frame()).digest


def test_fingerprint_is_sensitive_to_a_value_column_order_and_dtype():
    base = ll.fingerprint(_frame()).digest
    changed = _frame()
    changed.loc[2, "age"] = 23
    assert ll.fingerprint(changed).digest != base
    reordered = _frame()[["income", "age", "city", "label"]]
    assert ll.fingerprint(reordered).digest != base
    retyped = _frame().astype({"age": "int32"})
    assert ll.fingerprint(retyped).digest != base
    assert ll.fingerprint(_frame()).digest == base


def test_dataframe_summary_has_schema_nulls_and_shape():
    fp = ll.fingerprint(_frame())
    assert fp.summary["shape"] == [4, 4]
    assert fp.summary["dtypes"]["age"] == "int64" and fp.summary["dtypes"]["label"] == "category"
    assert fp.summary["nulls"] == {"income": 1, "city": 1}


def test_numpy_arrays_and_target_label_distribution():
    y = np.array([0, 1, 1, 2, 2, 2])
    fp = ll.fingerprint(y)
    assert fp.summary["labels"] == {"0": 1, "1": 2, "2": 3} and fp.summary["shape"] == [6]
    assert ll.fingerprint(y.astype(np.int32)).digest != fp.digest
    assert ll.fingerprint(y.reshape(2, 3)).digest != fp.digest
    x = np.array([[1.0, np.nan], [3.0, 4.0]])
    assert ll.fingerprint(x).summary["nulls"] == 1
    assert ll.fingerprint(np.asfortranarray(x)).digest == ll.fingerprint(x).digest


def test_series_sparse_lists_files_and_directories(tmp_path):
    s = pd.Series(["cat", "dog", "cat"], name="y")
    assert ll.fingerprint(s).summary["labels"] == {"cat": 2, "dog": 1}
    dense = np.array([[0, 1.5], [2.0, 0]])
    csr, coo = sp.csr_matrix(dense), sp.coo_matrix(dense)
    assert ll.fingerprint(csr).digest == ll.fingerprint(coo).digest
    assert ll.fingerprint(csr).summary["nnz"] == 2
    assert ll.fingerprint([1, 2, 3]).digest != ll.fingerprint([1, 2, 4]).digest
    f = tmp_path / "data.csv"
    f.write_text("a,b\n1,2\n")
    d = tmp_path / "images"
    (d / "x").mkdir(parents=True)
    (d / "x" / "1.png").write_bytes(b"png1")
    one = ll.fingerprint(f)
    assert one.summary["bytes"] == 8 and ll.fingerprint(str(f)).digest == one.digest
    before = ll.fingerprint(d)
    assert before.summary["files"] == 1
    (d / "x" / "1.png").write_bytes(b"png2")
    assert ll.fingerprint(d).digest != before.digest


def test_torch_tensors_and_tensor_datasets():
    torch = pytest.importorskip("torch")
    from torch.utils.data import TensorDataset

    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert ll.fingerprint(t).digest == ll.fingerprint(t.clone()).digest
    assert ll.fingerprint(t).digest != ll.fingerprint(t.to(torch.float64)).digest
    ds = TensorDataset(t, torch.tensor([0, 1]))
    assert ll.fingerprint(ds).summary["length"] == 2
    assert ll.fingerprint(t.to(torch.bfloat16)).summary["dtype"] == "torch.bfloat16"


def test_log_dataset_fingerprints_through_the_hook(run):
    X = np.arange(12.0).reshape(4, 3)
    fp = run.log_dataset("X", X, role="train", source="generated")
    assert fp == ll.fingerprint(X).digest
    run.end()
    (ds,) = ll.get_run(run.id).datasets
    assert ds["fingerprint"] == fp and ds["summary"]["shape"] == [4, 3]
    assert ds["summary"]["source"] == "generated"


def test_unknown_types_are_a_clear_error():
    with pytest.raises(TypeError, match=r"no plugin can fingerprint a builtins\.object"):
        ll.fingerprint(object())
