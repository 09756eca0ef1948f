"""Which scikit-learn methods autolog wraps, and putting every one of them back exactly.

A method is wrapped where it is defined (``BaseForest.fit``, ``ClassifierMixin.score``),
so every estimator that inherits it is covered. Methods scikit-learn guards with
``available_if`` (``Pipeline.predict``, ``GridSearchCV.predict_proba``) keep
their guard: the wrapper goes inside it, and ``hasattr`` answers as before.

Nothing is imported to find the classes: those defined when autolog starts are
found through ``BaseEstimator.__subclasses__()``, and a scikit-learn module
imported later has its classes wrapped as they are defined (a
``BaseEstimator.__init_subclass__`` hook, removed with the other patches).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from labledger.integrations._sklearn_runtime import INTEGRATION
from labledger.integrations.base import check_version

__all__ = ["Patches", "check_internals", "loaded_classes", "metric_functions", "on_new_classes"]

Wrap = Callable[[Callable[..., Any], str], Callable[..., Any]]

_ABSENT = object()
#: The second parameter of a metric function that holds predictions or scores.
_PREDICTION_PARAMS = ("y_pred", "y_score", "y_prob", "y_proba", "probas_pred")


def check_internals() -> None:
    """Warn once when the installed scikit-learn is not one whose internals this integration was checked with.

    Checked with scikit-learn 1.3.0 to 1.9.1. What scikit-learn offers no public way to:

    - ``sklearn.model_selection._validation._fit_and_score`` (and the name ``_search`` imported)
      is replaced, to know which candidate and split each fit of a search is
      (its ``candidate_progress``/``split_progress`` arguments) and capture its curves;
    - a fitted search's ``_checked_cv_orig`` and ``_n_samples_orig``,
      ``sklearn.utils.validation._num_samples`` and the ``_CVIterableWrapper`` of ``cv=`` index
      pairs describe the folds;
    - ``available_if`` guards are rebuilt from their ``fn`` and ``check``; ``BaseEstimator.__init_subclass__``
      wraps the classes of modules imported later;
    - ``sys._getframe`` reads the caller's variable name of held-out data (``X_test``).
    """
    import sklearn

    check_version(INTEGRATION, "scikit-learn", sklearn.__version__, oldest="1.3.0", latest="1.9")


class Patches:
    """Replaced attributes and their originals, restored in reverse order."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def __bool__(self) -> bool:
        return bool(self._saved)

    def replace(self, owner: Any, name: str, new: Any) -> None:
        """Set ``owner.<name>``; a class attribute it only inherited is deleted again on restore."""
        is_class = isinstance(owner, type)
        original = owner.__dict__.get(name, _ABSENT) if is_class else getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, new)

    def wrap_method(self, cls: type, name: str, wrap: Wrap) -> bool:
        """Wrap ``cls.<name>`` as defined in ``cls`` itself (a function or an ``available_if`` guard)."""
        attribute = cls.__dict__.get(name)
        if inspect.isfunction(attribute):
            self.replace(cls, name, wrap(attribute, name))
            return True
        fn, check = getattr(attribute, "fn", None), getattr(attribute, "check", None)
        if inspect.isfunction(fn) and callable(check):
            from sklearn.utils.metaestimators import available_if

            self.replace(cls, name, available_if(check)(wrap(fn, name)))
            return True
        return False

    def restore(self) -> None:
        for owner, name, original in reversed(self._saved):
            if original is _ABSENT:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._saved.clear()


def _is_sklearn(cls: type) -> bool:
    return (cls.__module__ or "").startswith("sklearn.")


def loaded_classes() -> list[type]:
    """scikit-learn's estimator classes defined so far, and the scikit-learn classes (mixins
    included) they inherit from, bases first."""
    from sklearn.base import BaseEstimator

    found: dict[type, None] = {}
    pending = [BaseEstimator]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found[sub] = None
                pending.append(sub)
    out: dict[type, None] = {}
    for cls in sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        for base in reversed(cls.__mro__):
            if _is_sklearn(base):
                out.setdefault(base, None)
    return list(out)


def on_new_classes(patches: Patches, handle: Callable[[type], None]) -> None:
    """Call ``handle`` with each scikit-learn estimator class defined from now on (and its
    scikit-learn bases), until ``patches`` are restored."""
    from sklearn.base import BaseEstimator

    own = BaseEstimator.__dict__.get("__init_subclass__")

    def __init_subclass__(cls: type, **kwargs: Any) -> None:
        if own is not None:
            own.__get__(None, cls)(**kwargs)
        else:
            super(BaseEstimator, cls).__init_subclass__(**kwargs)
        for base in reversed(cls.__mro__):
            if _is_sklearn(base):
                handle(base)

    patches.replace(BaseEstimator, "__init_subclass__", classmethod(__init_subclass__))


@functools.cache
def metric_functions() -> tuple[tuple[str, str, str], ...]:
    """``(name, true-labels param, predictions param)`` of ``sklearn.metrics``' score, error and
    loss functions that compare true values with a model's predictions."""
    import sklearn.metrics

    out = []
    for name in sorted(getattr(sklearn.metrics, "__all__", ())):
        fn = getattr(sklearn.metrics, name, None)
        if not inspect.isfunction(fn) or not name.endswith(("_score", "_error", "_loss", "_corrcoef")):
            continue
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
        if len(params) >= 2 and params[0] == "y_true" and params[1] in _PREDICTION_PARAMS:
            out.append((name, params[0], params[1]))
    return tuple(out)
