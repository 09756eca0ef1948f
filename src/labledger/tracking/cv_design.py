"""The design of a cross-validation: how its folds were made, and how large each one was.

A corrected paired test (Nadeau–Bengio) needs the test/train size ratio of the folds
actually evaluated; ``cv/n_splits`` alone cannot give it (10×10 repeated k-fold has 100
folds of 90/10, not 99/1). :func:`design_params` describes a splitter — any object with
``split(X, y, groups)``, read by duck typing — or an explicit list of ``(train, test)``
index pairs, as the ``cv/*`` params every cross-validated run records:

- ``cv/class`` (fully qualified, ``explicit`` for index pairs), ``cv/n_splits`` (the number
  of folds evaluated), ``cv/shuffle``, ``cv/random_state``, ``cv/fingerprint`` (SHA-256 of
  the indices; ``None`` unless the folds are the ones used);
- ``cv/n_repeats`` and ``cv/k`` (folds per repeat) of a repeated splitter; ``cv/test_size``,
  ``cv/train_size``, ``cv/gap``, ``cv/max_train_size`` when the splitter has them;
- ``cv/groups``: the fingerprint of the ``groups`` given;
- ``cv/train_sizes``, ``cv/test_sizes`` (every fold, in fold order), their means ``cv/n_train``,
  ``cv/n_test``, and ``cv/time_ordered`` (every fold trains on rows before its test rows) —
  only when the sizes are known: splits given, a splitter whose folds are the same on
  every call, or one whose fold sizes do not depend on its random draw (k-fold, shuffle-split).

>>> import numpy as np
>>> from sklearn.model_selection import KFold
>>> design_params(KFold(4), X=np.zeros((10, 1)))["cv/test_sizes"]  # doctest: +SKIP
[3, 3, 2, 2]
"""

from __future__ import annotations

import copy
import hashlib
import math
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from labledger.errors import LabledgerError

__all__ = [
    "FoldCountError",
    "FoldDesignError",
    "design_params",
    "fold_sizes",
    "fold_splits",
    "fold_stats",
    "folds_design",
    "same_folds",
    "size_params",
    "splits_fingerprint",
    "time_ordered",
    "yields_constant_splits",
]

Splits = list[tuple[Any, Any]]

#: Splitters whose fold sizes depend only on the data's size and labels, never on the random
#: draw: one ``split()`` call gives the sizes even when it cannot give the indices.
_FIXED_SIZES = frozenset(
    {"KFold", "StratifiedKFold", "RepeatedKFold", "RepeatedStratifiedKFold", "ShuffleSplit"}
    | {"StratifiedShuffleSplit"}
)
_SETTINGS = ("test_size", "train_size", "gap", "max_train_size")


class FoldDesignError(LabledgerError, ValueError):
    """The cross-validation design given with fold results cannot be read."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"cannot log the folds of {key!r} with cv=: {problem}")


class FoldCountError(FoldDesignError):
    """Fold results and their cross-validation design count a different number of folds."""

    def __init__(self, key: str, n_values: int, n_folds: int) -> None:
        self.n_values = n_values
        self.n_folds = n_folds
        super().__init__(
            key,
            f"{n_values} values were given but the cv design has {n_folds} folds; pass one "
            "value per fold, in the order the splitter yields them",
        )


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _plain(value: Any) -> Any:
    """A setting as a JSON value (a NumPy scalar as its Python number, an object by its repr)."""
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        value = value.item()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    from labledger.lineage.pipeline import stable_repr

    return stable_repr(value)


def _indices(part: Any) -> Any:
    """One side of a fold as an int64 index array (a boolean mask becomes its indices)."""
    import numpy as np

    array = np.asarray(part)
    if array.dtype == bool:
        return np.flatnonzero(array)
    return array.astype(np.int64, copy=False).reshape(-1)


def _normalized(key: str, splits: Iterable[Any]) -> Splits:
    out: Splits = []
    try:
        for fold in splits:
            train, test = fold
            out.append((_indices(train), _indices(test)))
    except (TypeError, ValueError) as error:
        raise FoldDesignError(
            key,
            f"the folds are not (train_indices, test_indices) pairs ({error}); pass a splitter with "
            "split(), or a list of (train, test) index arrays",
        ) from None
    if not out:
        raise FoldDesignError(key, "the split list is empty; pass at least one (train, test) pair")
    return out


def splits_fingerprint(splits: Iterable[tuple[Any, Any]]) -> str:
    """SHA-256 of the train/test indices of every fold, in fold order.

    >>> splits_fingerprint([([1, 2], [0])])[:12]  # doctest: +SKIP
    """
    import numpy as np

    h = hashlib.sha256()
    for train, test in splits:
        h.update(np.asarray(train, dtype=np.int64).tobytes())
        h.update(b"|")
        h.update(np.asarray(test, dtype=np.int64).tobytes())
        h.update(b";")
    return h.hexdigest()


def fold_sizes(splits: Iterable[tuple[Any, Any]]) -> tuple[list[int], list[int]]:
    """``(train sizes, test sizes)`` of every fold, in fold order.

    >>> fold_sizes([([0, 1, 2], [3]), ([1, 2, 3], [0])])
    ([3, 3], [1, 1])
    """
    pairs = [(len(_indices(train)), len(_indices(test))) for train, test in splits]
    return [a for a, _ in pairs], [b for _, b in pairs]


def time_ordered(splits: Iterable[tuple[Any, Any]]) -> bool:
    """Whether every fold trains only on rows before its test rows (``max(train) < min(test)``).

    >>> time_ordered([([0, 1], [2]), ([0, 1, 2], [3])])
    True
    """
    for train, test in splits:
        a, b = _indices(train), _indices(test)
        if len(a) and len(b) and not a.max() < b.min():
            return False
    return True


def yields_constant_splits(cv: Any) -> bool:
    """Whether every ``split()`` call of ``cv`` gives the same folds (no shuffle, or an int seed).

    >>> yields_constant_splits(KFold(5, shuffle=True))  # doctest: +SKIP
    False
    """
    import numpy as np

    shuffle = getattr(cv, "shuffle", True)
    random_state = getattr(cv, "random_state", 0)
    return isinstance(random_state, int | np.integer) or not shuffle


def _fixed_sizes(cv: Any) -> bool:
    cls = type(cv)
    return cls.__module__.startswith("sklearn.") and cls.__name__ in _FIXED_SIZES


def fold_splits(cv: Any, X: Any, y: Any = None, groups: Any = None) -> tuple[Splits | None, bool]:
    """``(splits, exact)`` of a splitter on this data: ``exact`` when they are the folds every call
    gives; else, for a splitter whose fold sizes do not depend on its draw, one draw (for the sizes
    only: the user's generators are left as they were); else ``(None, False)``. The splitter's
    warnings (``groups`` it ignores) were the user's to see when the folds were used, not again here.

    >>> fold_splits(ShuffleSplit(3, test_size=0.5), np.zeros((4, 1)))[1]  # doctest: +SKIP
    False
    """
    constant = yields_constant_splits(cv)
    if not constant and not _fixed_sizes(cv):
        return None, False
    import numpy as np

    state = np.random.get_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            splitter = cv if constant else copy.deepcopy(cv)
            return _normalized("cv", splitter.split(X, y, groups)), constant
    finally:
        np.random.set_state(state)


def _settings(cv: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    repeats = getattr(cv, "n_repeats", None)
    if isinstance(repeats, int) and not isinstance(repeats, bool):
        out["cv/n_repeats"] = repeats
        cvargs = getattr(cv, "cvargs", None)
        k = cvargs.get("n_splits") if isinstance(cvargs, Mapping) else None
        if isinstance(k, int):
            out["cv/k"] = k
    for name in _SETTINGS:
        if hasattr(cv, name):
            out[f"cv/{name}"] = _plain(getattr(cv, name))
    return out


def _groups_fingerprint(groups: Any) -> str:
    from labledger.lineage.fingerprint import fingerprint

    try:
        return fingerprint(groups).digest
    except TypeError:
        import numpy as np

        return fingerprint(np.asarray(groups)).digest


def design_params(
    cv: Any = None,
    splits: Iterable[tuple[Any, Any]] | None = None,
    *,
    X: Any = None,
    y: Any = None,
    groups: Any = None,
) -> dict[str, Any]:
    """The ``cv/*`` params of a cross-validation (see the module docstring).

    ``cv`` is a splitter or an explicit list of ``(train, test)`` index pairs; ``splits`` are
    the folds actually used, when known. Without them, a splitter is split on ``X``, ``y``
    and ``groups`` when that gives the folds used (or at least their sizes).

    >>> design_params(splits=[([0, 1, 2], [3]), ([0, 1, 3], [2])])["cv/n_test"]
    1.0
    """
    explicit = cv is not None and not callable(getattr(cv, "split", None))
    if explicit:
        splits = cv
    folds: Splits | None = None if splits is None else _normalized("cv", splits)
    exact = folds is not None
    if folds is None and cv is not None and X is not None:
        folds, exact = fold_splits(cv, X, y, groups)
    n_splits: int | None = None if folds is None else len(folds)
    if n_splits is None and cv is not None:
        try:
            n_splits = int(cv.get_n_splits(X, y, groups))
        except Exception:  # a splitter that cannot count its folds without the data
            n_splits = None
    shuffle = None if cv is None or explicit else getattr(cv, "shuffle", None)
    params: dict[str, Any] = {
        "cv/class": "explicit" if cv is None or explicit else _qualname(cv),
        "cv/n_splits": n_splits,
        "cv/shuffle": None if shuffle is None else bool(shuffle),
        "cv/random_state": None if cv is None or explicit else _plain(getattr(cv, "random_state", None)),
        "cv/fingerprint": splits_fingerprint(folds) if folds is not None and exact else None,
    }
    if cv is not None and not explicit:
        params.update(_settings(cv))
    if groups is not None:
        params["cv/groups"] = _groups_fingerprint(groups)
    if folds is not None:
        params.update(size_params(folds))
    return params


def size_params(splits: Splits) -> dict[str, Any]:
    """``cv/train_sizes``, ``cv/test_sizes``, ``cv/n_train``, ``cv/n_test`` and ``cv/time_ordered``."""
    train, test = fold_sizes(splits)
    return {
        "cv/train_sizes": train,
        "cv/test_sizes": test,
        "cv/n_train": sum(train) / len(train),
        "cv/n_test": sum(test) / len(test),
        "cv/time_ordered": time_ordered(splits),
    }


def folds_design(
    key: str, n_values: int, cv: Any, *, X: Any = None, y: Any = None, groups: Any = None
) -> dict[str, Any]:
    """The design params of ``n_values`` fold results of ``key`` evaluated with ``cv``.

    :raises FoldDesignError: ``cv`` is a splitter and ``X`` is missing, or its folds are unreadable.
    :raises FoldCountError: the design has another number of folds than there are values.

    >>> folds_design("acc", 2, [([0, 1], [2]), ([1, 2], [0])])["cv/n_splits"]
    2
    """
    if callable(getattr(cv, "split", None)):
        if X is None:
            raise FoldDesignError(
                key,
                f"{type(cv).__name__} is a splitter: pass X (and y, groups as when scoring) so its "
                "folds can be counted and measured, or pass the (train, test) index pairs as cv=",
            )
        try:
            params = design_params(cv, X=X, y=y, groups=groups)
        except FoldDesignError:
            raise
        except (TypeError, ValueError) as error:
            raise FoldDesignError(key, f"{type(cv).__name__}.split failed ({error})") from None
    elif isinstance(cv, str | bytes | Mapping) or not isinstance(cv, Iterable):
        raise FoldDesignError(
            key, f"a {type(cv).__name__} is neither a splitter nor a list of (train, test) index pairs"
        )
    else:
        params = design_params(splits=_normalized(key, cv), groups=groups)
    n_folds = params["cv/n_splits"]
    if n_folds is not None and n_folds != n_values:
        raise FoldCountError(key, n_values, n_folds)
    return params


def same_folds(a: list[float], b: list[float]) -> bool:
    """Whether two lists of fold values are identical (NaN equal to NaN)."""
    return len(a) == len(b) and all(x == y or (x != x and y != y) for x, y in zip(a, b, strict=True))


def fold_stats(values: list[float]) -> dict[str, float | None]:
    """Mean, population std (ddof=0, as scikit-learn reports it), min and max; NaN when a fold is NaN.

    >>> fold_stats([0.5, 1.0])
    {'mean': 0.75, 'std': 0.25, 'min': 0.5, 'max': 1.0}
    """
    n = len(values)
    if any(v != v for v in values):
        nan = math.nan
        return {"mean": nan, "std": nan, "min": nan, "max": nan}
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / n
    return {"mean": mean, "std": math.sqrt(var), "min": min(values), "max": max(values)}
