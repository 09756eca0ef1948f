"""Fingerprints and pipeline versions that depend on content, never on a type's exact name or an address.

Array subclasses, containers of arrays, estimators holding a ``RandomState``,
frozen SciPy distributions and functions: the same thing in two processes gets
the same digest or version, and different contents get different ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif, mutual_info_classif
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

import labledger as ll
from labledger.lineage.pipeline import pipeline_version

# The same objects, built the same way in this process and in subprocesses.
BUILD = """
import functools
import numpy as np, pandas as pd, scipy.stats as st, torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.model_selection import RandomizedSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler


def shift(x):
    return x + 1


def build():
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(500, 8)), rng.normal(size=(500, 3))  # large: their repr is elided
    frame = pd.DataFrame({"a": np.arange(2000), "b": np.linspace(0, 1, 2000)})
    data = {
        "list": [xa, xb],
        "tuple": (xa, frame),
        "dict": {"image": xa, "meta": xb, "ids": [1, 2, 3]},
        "tensors": [torch.arange(3000.0), torch.ones(2)],
        "masked": np.ma.masked_array(xa, mask=xa > 1.5),
    }
    pipe = make_pipeline(
        FunctionTransformer(shift),
        FunctionTransformer(functools.partial(np.clip, a_min=0, a_max=1)),
        StandardScaler(),
        SelectKBest(score_func=f_classif, k=2),
        RandomForestClassifier(n_estimators=5, random_state=np.random.RandomState(0)),
    )
    search = RandomizedSearchCV(
        pipe,
        {"randomforestclassifier__max_depth": st.randint(1, 5), "selectkbest__k": st.uniform(1, 2)},
        n_iter=2,
        refit=lambda results: 0,
        random_state=np.random.RandomState(1),
    )
    return data, pipe, search
"""

REPORT = (
    BUILD
    + """
import json, labledger as ll
from labledger.lineage.pipeline import pipeline_version, text
data, pipe, search = build()
print(json.dumps({
    "data": {k: ll.fingerprint(v).digest for k, v in data.items()},
    "pipe": pipeline_version(pipe),
    "search": pipeline_version(search),
    "text": text(search),
}))
"""
)


def _build():
    namespace: dict = {"__name__": "__main__"}  # as in `python -c`
    exec(compile(BUILD, "<build>", "exec"), namespace)
    return namespace["build"]()


def _in_subprocess(seed: int) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    out = subprocess.run(
        [sys.executable, "-c", REPORT], capture_output=True, text=True, check=True, env=env, timeout=120
    )
    return json.loads(out.stdout)


@pytest.mark.timeout(180)
def test_the_same_containers_and_pipelines_get_the_same_digest_in_two_processes():
    first, second = _in_subprocess(1), _in_subprocess(2)
    assert first == second
    assert " at 0x" not in first["text"] and "RandomState(MT19937)" in first["text"]
    data, pipe, search = _build()
    assert {k: ll.fingerprint(v).digest for k, v in data.items()} == first["data"]
    assert pipeline_version(pipe) == first["pipe"] and pipeline_version(search) == first["search"]


@pytest.mark.timeout(60)
def test_containers_of_arrays_are_hashed_by_content():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(500, 8)), rng.normal(size=(500, 3))
    changed = xa.copy()
    changed[250, 4] += 1.0  # in the middle: not in the elided repr
    assert repr(changed) == repr(xa)
    base = ll.fingerprint([xa, xb])
    assert ll.fingerprint([changed, xb]).digest != base.digest
    assert ll.fingerprint([xa, xb.copy()]).digest == base.digest
    assert ll.fingerprint([xb, xa]).digest != base.digest
    assert ll.fingerprint((xa, xb)).digest == base.digest  # the same JSON: a tuple is a list
    assert base.summary["items"]["1"]["shape"] == [500, 3]
    # dicts: by key, whatever the insertion order
    by_name = ll.fingerprint({"image": xa, "meta": xb})
    assert ll.fingerprint({"meta": xb, "image": xa}).digest == by_name.digest
    assert ll.fingerprint({"image": changed, "meta": xb}).digest != by_name.digest
    assert by_name.summary["items"]["image"]["shape"] == [500, 8]
    # nested, frames and tensors too
    frame = pd.DataFrame({"a": np.arange(2000.0)})
    other = frame.copy()
    other.loc[1000, "a"] = -1.0
    assert ll.fingerprint([[frame], 1]).digest != ll.fingerprint([[other], 1]).digest
    t = torch.arange(3000.0)
    u = t.clone()
    u[1500] = 0.0
    assert ll.fingerprint([t]).digest != ll.fingerprint([u]).digest
    # plain lists keep their digest; labels are still summarised
    assert ll.fingerprint([1, 2, 2]).summary["labels"] == {"1": 1, "2": 2}


@pytest.mark.timeout(60)
def test_subclasses_of_arrays_and_frames_are_fingerprinted(tmp_path):
    a = np.arange(3000.0)
    mm = np.memmap(tmp_path / "a.dat", dtype="float64", mode="w+", shape=(3000,))
    mm[:] = a
    fp = ll.fingerprint(mm)
    assert fp.digest == ll.fingerprint(a).digest and fp.summary["type"] == "numpy.memmap"

    masked = np.ma.masked_array(a, mask=a > 2990)
    hidden = masked.copy()
    hidden.data[2999] = -7.0  # under the mask: not part of the data
    assert ll.fingerprint(hidden).digest == ll.fingerprint(masked).digest
    remasked = np.ma.masked_array(a, mask=a > 2980)
    assert ll.fingerprint(remasked).digest != ll.fingerprint(masked).digest
    shown = masked.copy()
    shown[5] = 1e9
    assert ll.fingerprint(shown).digest != ll.fingerprint(masked).digest
    assert ll.fingerprint(masked).summary["masked"] == 9

    class Frame(pd.DataFrame):
        @property
        def _constructor(self):
            return Frame

    class Column(pd.Series):
        pass

    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    sub = ll.fingerprint(Frame(df))
    assert sub.digest == ll.fingerprint(df).digest and sub.summary["type"].endswith("Frame")
    assert (
        ll.fingerprint(Column([1, 2], name="y")).digest == ll.fingerprint(pd.Series([1, 2], name="y")).digest
    )


@pytest.mark.timeout(60)
def test_log_pipeline_of_estimators_holding_random_states_and_distributions(run):
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = np.array([0, 1] * 20)
    forest = RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0))
    version = run.log_pipeline(make_pipeline(StandardScaler(), forest))
    forest_again = RandomForestClassifier(n_estimators=3, random_state=np.random.RandomState(0))
    assert pipeline_version(make_pipeline(StandardScaler(), forest_again.fit(X, y))) == version
    generator = RandomForestClassifier(n_estimators=3, random_state=np.random.default_rng(0))
    assert pipeline_version(make_pipeline(StandardScaler(), generator)) != version
    run.end()
    (record,) = ll.get_run(run.id).pipelines
    step = record["structure"]["params"]["steps"][1][1]
    assert step["params"]["random_state"] == {"class": "numpy.random.RandomState", "bit_generator": "MT19937"}
    assert " at 0x" not in record["text"]

    def search(dist, score_func=f_classif, transform=None):
        steps = [FunctionTransformer(transform), SelectKBest(score_func=score_func)]
        return RandomizedSearchCV(make_pipeline(*steps), {"selectkbest__k": dist})

    base = pipeline_version(search(st.randint(1, 4)))
    assert pipeline_version(search(st.randint(1, 4))) == base
    assert pipeline_version(search(st.randint(1, 5))) != base
    assert pipeline_version(search(st.uniform(1, 4))) != base
    assert pipeline_version(search(st.randint(1, 4), score_func=mutual_info_classif)) != base
    assert pipeline_version(search(st.randint(1, 4), transform=np.log1p)) != base
