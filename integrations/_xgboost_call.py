"""The running xgboost call, as a ``LedgerCallback`` finds it on the stack and wraps it.

:func:`find_training` reads the ``xgb.train``/``xgb.cv`` frame running the
callback: the arguments that are recorded, its ``CallbackContainer`` and the
scikit-learn wrapper whose ``fit`` made the call. :func:`wrap_method` replaces
a method on one instance of a per-call object (the container, ``xgb.cv``'s
packed folds) so that an exception passing through it is seen before it
propagates unchanged. :func:`passed_through` finds, later, an exception that
left a given frame.
"""

from __future__ import annotations

import sys
import traceback
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xgboost.callback import CallbackContainer
from xgboost.sklearn import XGBModel

#: Scikit-learn's per-fold fitting functions: a callback unpickled inside one runs in a search's worker.
_FOLD_FITS = ("_fit_and_score", "_fit_and_predict")
#: The arguments of ``xgb.train``/``xgb.cv`` and of a wrapper's ``fit`` that are recorded.
_TRAIN_LOCALS = (
    "params",
    "dtrain",
    "evals",
    "num_boost_round",
    "early_stopping_rounds",
    "maximize",
    "obj",
    "custom_metric",
    "xgb_model",
    "nfold",
    "folds",
    "stratified",
    "shuffle",
    "seed",
    "metrics",
)
_FIT_LOCALS = ("X", "y", "eval_set", "sample_weight", "xgb_model")


@dataclass
class Found:
    """What the call stack says about the running training (read once, not kept)."""

    kind: str | None = None  # "train" or "cv"
    locals: dict[str, Any] = field(default_factory=dict)  # the recorded arguments only
    container: Any = None
    frame: types.FrameType | None = None
    estimator: Any = None  # the scikit-learn wrapper whose fit runs the training
    fit_locals: dict[str, Any] = field(default_factory=dict)

    def forget_call(self) -> None:
        """Keep only what the run's start records: not the frame, not the container."""
        self.frame = self.container = None


def find_training(frame: types.FrameType | None, callback: Any) -> Found:
    """The ``xgboost.training`` call running ``callback``, its container, and the wrapper's ``fit``."""
    found = Found()
    while frame is not None:
        if frame.f_globals.get("__name__") == "xgboost.training" and frame.f_code.co_name in ("train", "cv"):
            found.kind, found.frame = frame.f_code.co_name, frame
            break
        frame = frame.f_back
    if found.frame is None:
        return found
    given = found.frame.f_locals
    found.locals = {k: given[k] for k in _TRAIN_LOCALS if k in given}
    for value in given.values():
        if isinstance(value, CallbackContainer) and any(c is callback for c in value.callbacks):
            found.container = value
    caller = found.frame.f_back
    for _ in range(8):  # decorators sit between train() and the wrapper's fit()
        if caller is None:
            break
        if caller.f_code.co_name == "fit" and isinstance(caller.f_locals.get("self"), XGBModel):
            fit_locals = caller.f_locals
            found.estimator = fit_locals["self"]
            found.fit_locals = {k: fit_locals[k] for k in _FIT_LOCALS if k in fit_locals}
            break
        caller = caller.f_back
    return found


def in_sklearn_fold_fit(frame: types.FrameType | None) -> bool:
    """Whether scikit-learn's per-fold fitting (a search's or ``cross_validate``'s) is on the stack."""
    while frame is not None:
        if (
            frame.f_code.co_name in _FOLD_FITS
            and frame.f_globals.get("__name__") == "sklearn.model_selection._validation"
        ):
            return True
        frame = frame.f_back
    return False


def describe_error(error: BaseException, outer: types.FrameType | None) -> str:
    """The traceback of ``error``, with the frames that called ``outer``'s code when it is still unwinding."""
    te = traceback.TracebackException.from_exception(error)
    if outer is not None:
        te.stack = traceback.StackSummary.from_list([*traceback.extract_stack(outer), *te.stack])
    return "".join(te.format())


def passed_through(frame_id: int | None, code: types.CodeType | None) -> BaseException | None:
    """The exception being handled, or the program's last (``sys.last_value``), if it left the
    frame ``frame_id`` running ``code`` (itself, or one it caused or arose in)."""
    for candidate in (sys.exc_info()[1], getattr(sys, "last_exc", None), getattr(sys, "last_value", None)):
        seen: set[int] = set()
        while candidate is not None and id(candidate) not in seen:
            seen.add(id(candidate))
            tb = candidate.__traceback__
            while tb is not None:
                if id(tb.tb_frame) == frame_id and tb.tb_frame.f_code is code:
                    return candidate
                tb = tb.tb_next
            candidate = candidate.__cause__ or candidate.__context__
    return None


def wrap_method(
    obj: Any,
    name: str,
    failed: Callable[[BaseException, types.FrameType], None],
    after: Callable[..., None] | None = None,
    before: Callable[[], None] | None = None,
) -> None:
    """Replace ``obj.<name>`` on this one instance; an exception is shown to ``failed(error, caller)``
    and then propagates unchanged.

    ``before()`` runs before the method, ``after(obj, result, *args)`` once it returned. ``obj``
    is held weakly, so the object is freed (and finalizers on it run) with its call's frame.
    """
    inner = obj.__dict__.get(name)  # already wrapped: a second LedgerCallback in the same call
    method = getattr(type(obj), name)
    ref = weakref.ref(obj)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        target = ref()
        try:
            if before is not None:
                before()
            result = inner(*args, **kwargs) if inner is not None else method(target, *args, **kwargs)
            if after is not None:
                after(target, result, *args)
        except BaseException as error:
            failed(error, sys._getframe(1))
            raise
        return result

    obj.__dict__[name] = wrapper
