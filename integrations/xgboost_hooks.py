"""XGBoost's plugin hooks, loaded through the ``labledger`` entry point (never imports xgboost)."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from labledger import Fingerprint, hookimpl
from labledger.integrations.base import imported_versions

#: How the XGBoost integration's params count in the completeness report: the booster's and the
#: wrapper's params (``xgb/<name>``, the number of rounds included) are hyperparameters, except those
#: that only say how training runs.
PARAM_ROLES: dict[str, str] = {
    "xgb/": "hyperparameter",
    **dict.fromkeys(
        (
            "xgb/early_stopping_rounds",
            "xgb/maximize",
            "xgb/custom_metric",
            "xgb/eval_metric",
            "xgb/xgb_model",
            "xgb/callbacks",
            "xgb/nthread",
            "xgb/n_jobs",
            "xgb/device",
            "xgb/verbosity",
            "xgb/seed",
            "xgb/random_state",
            "xgb/importance_type",
            "xgb/validate_parameters",
            "xgb/disable_default_eval_metric",
        ),
        "configuration",
    ),
}


@hookimpl
def labledger_collect_environment() -> dict[str, str | None] | None:
    return imported_versions("xgboost")


@hookimpl
def labledger_param_roles() -> dict[str, str] | None:
    """``xgb/*`` params are hyperparameters; early stopping, metrics, threads, device and seeds are
    training configuration (``cv/*``, ``fit/*`` follow labledger's built-in rules)."""
    return dict(PARAM_ROLES)


@hookimpl
def labledger_fingerprint_dataset(data: Any) -> Fingerprint | None:
    """Fingerprint an ``xgboost.DMatrix`` by its content: features (as CSR), labels, weights, names.

    A ``QuantileDMatrix`` keeps only quantised data and is not fingerprinted.
    """
    xgb = sys.modules.get("xgboost")
    if xgb is None or not isinstance(data, xgb.DMatrix) or isinstance(data, xgb.QuantileDMatrix):
        return None
    import numpy as np  # xgboost is loaded, so NumPy is too

    csr = data.get_data()
    h = hashlib.sha256()

    def field(name: str, payload: bytes) -> None:
        h.update(name.encode() + len(payload).to_bytes(8, "little"))
        h.update(payload)

    field("labledger-fingerprint-v1:xgboost.DMatrix", b"")
    field("shape", np.asarray(csr.shape, dtype=np.int64).tobytes())
    field("indptr", np.ascontiguousarray(csr.indptr, dtype=np.int64).tobytes())
    field("indices", np.ascontiguousarray(csr.indices, dtype=np.int64).tobytes())
    field("data", np.ascontiguousarray(csr.data, dtype=np.float32).tobytes())
    label, weight = data.get_label(), data.get_weight()
    field("label", np.ascontiguousarray(label, dtype=np.float32).tobytes())
    field("weight", np.ascontiguousarray(weight, dtype=np.float32).tobytes())
    names = list(data.feature_names or [])
    field("feature_names", "\x1f".join(names).encode())
    field("feature_types", "\x1f".join(data.feature_types or []).encode())
    summary: dict[str, Any] = {
        "type": "xgboost.DMatrix",
        "rows": int(data.num_row()),
        "columns": int(data.num_col()),
        "nonzero": int(csr.nnz),
    }
    if names:
        summary["feature_names"] = names[:50]
    return Fingerprint(h.hexdigest(), summary)
