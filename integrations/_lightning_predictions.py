"""The Lightning integration's predictions for error analysis: the trained module's outputs on
the examples given as ``predictions=(x_val, y_val[, features])``, stored in the run."""

from __future__ import annotations

from typing import Any

from labledger.errors import InvalidValueError
from labledger.integrations._lightning_lifecycle import INTEGRATION
from labledger.integrations._lightning_recorder import _Recorder
from labledger.integrations.base import from_outputs, safe, unchanged_randomness

__all__ = ["after_fit", "log_predictions"]

#: Rows per forward pass when predicting for the record.
_PREDICT_BATCH = 4096


def _outputs(module: Any, x: Any) -> Any:
    """``module(x)`` in eval mode without gradients, in batches, as a NumPy array; every submodule's
    training flag and the global generators are put back afterwards."""
    import numpy as np
    import torch

    tensor = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    dtype = getattr(module, "dtype", None)
    if tensor.is_floating_point() and isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        tensor = tensor.to(dtype)
    device = getattr(module, "device", None) or torch.device("cpu")
    modes = [(m, m.training) for m in module.modules()]
    parts = []
    try:
        module.eval()
        with torch.no_grad(), unchanged_randomness():
            for start in range(0, len(tensor), _PREDICT_BATCH):
                out = module(tensor[start : start + _PREDICT_BATCH].to(device))
                if not isinstance(out, torch.Tensor):
                    raise InvalidValueError(
                        "the module's output", type(out).__name__, "one tensor of outputs per example"
                    )
                parts.append(out.detach().to("cpu"))
    finally:
        for m, training in modes:
            m.training = training
    joined = torch.cat(parts) if parts else torch.empty(0)
    if joined.is_floating_point() and joined.dtype not in (torch.float32, torch.float64):
        joined = joined.float()
    return joined.numpy()


def log_predictions(recorder: _Recorder, module: Any, data: tuple[Any, Any, Any], split: str) -> None:
    """The trained module's predictions on ``data`` (``(x, y, features)``) into the recorder's run."""
    x, y, features = data
    if module is None:
        return
    y_true = y.detach().cpu().numpy() if hasattr(y, "detach") else y
    found = from_outputs(_outputs(module, x), y_true)
    name = f"predictions-fit_{recorder.fits}" if recorder.fits > 1 else "predictions"
    recorder._do(
        "log_predictions",
        found.y_true,
        found.y_pred,
        proba=found.proba,
        classes=found.classes,
        task=found.task,
        features=features,
        split=split,
        name=name,
    )


def after_fit(recorder: _Recorder, data: tuple[Any, Any, Any] | None, split: str, module: Any = None) -> None:
    """Store the predictions when a fit ends (``module``: the trained one; else the trainer's)."""
    if data is None:
        return
    if module is None:
        trainer = recorder.trainer() if recorder.trainer is not None else None
        if recorder.call != "fit" or trainer is None:
            return
        module = trainer.lightning_module
    with safe(INTEGRATION, "the predictions"):
        log_predictions(recorder, module, data, split)
