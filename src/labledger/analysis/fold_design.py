"""The cross-validation design two compared runs recorded, read back for the corrected tests.

The corrected resampled t-test (Nadeau & Bengio 2003) and its repeated k-fold
form (Bouckaert & Frank 2004) need n_test / n_train. It comes from what the
runs recorded, never from a guess:

1. ``cv/train_sizes`` and ``cv/test_sizes``: the measured size of every fold
   (recorded by the integrations and by ``run.log_folds(..., cv=...)``); the
   ratio is mean n_test / mean n_train;
2. else ``cv/n_test`` and ``cv/n_train`` (mean sizes logged by hand);
3. else the ratio is unknown and no corrected p-value is given unless the
   caller passes one (``test_train_ratio=`` / ``--test-train-ratio``).

Time-ordered folds (``cv/time_ordered``, e.g. ``TimeSeriesSplit``) are flagged:
the corrected test assumes random, exchangeable splits, which they are not.

>>> from labledger.analysis.fold_design import fold_design
>>> fold_design(view_a, view_b, n_folds=100).source  # doctest: +SKIP
'n_test/n_train = 10/90, the mean measured sizes of the 100 folds'
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.query.runs import RunView

__all__ = ["FoldDesign", "fold_design", "fold_size_ratio"]

_TIME_ORDERED_CLASSES = ("TimeSeriesSplit",)


@dataclass(frozen=True)
class FoldDesign:
    """How the compared folds were made, as far as the runs recorded it."""

    ratio: float | None  # n_test / n_train for the correction; None when unknown
    source: str  # where the ratio came from, or why it is unknown
    splitter: str | None = None
    n_repeats: int | None = None
    time_ordered: bool = False

    @property
    def repeated(self) -> bool:
        """Repeated k-fold: the corrected repeated k-fold cv test of Bouckaert & Frank (2004) applies."""
        return self.n_repeats is not None and self.n_repeats > 1


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _sizes(value: Any) -> list[float] | None:
    if not isinstance(value, list) or not value:
        return None
    numbers = [_number(v) for v in value]
    return None if any(n is None for n in numbers) else [n for n in numbers if n is not None]


def _measured(run: RunView) -> tuple[list[float], list[float]] | None:
    train, test = _sizes(run.params.get("cv/train_sizes")), _sizes(run.params.get("cv/test_sizes"))
    if train is None or test is None or len(train) != len(test) or not all(train):
        return None
    return train, test


def _first(a: RunView, b: RunView, key: str) -> Any:
    value = a.params.get(key)
    return b.params.get(key) if value is None else value


def fold_design(a: RunView, b: RunView, n_folds: int, test_train_ratio: float | None = None) -> FoldDesign:
    """The design of the folds ``a`` and ``b`` were scored on; ``test_train_ratio`` overrides the ratio.

    >>> fold_design(view_a, view_b, 10, test_train_ratio=0.25).ratio  # doctest: +SKIP
    0.25
    """
    splitter = _first(a, b, "cv/class")
    repeats = _number(_first(a, b, "cv/n_repeats"))
    ordered = bool(_first(a, b, "cv/time_ordered")) or (
        isinstance(splitter, str) and splitter.rsplit(".", 1)[-1] in _TIME_ORDERED_CLASSES
    )
    base = FoldDesign(
        None,
        "",
        splitter=splitter if isinstance(splitter, str) else None,
        n_repeats=int(repeats) if repeats else None,
        time_ordered=ordered,
    )
    if test_train_ratio is not None:
        if not test_train_ratio > 0 or math.isinf(test_train_ratio):
            from labledger.analysis.stats import InvalidTestTrainRatioError

            raise InvalidTestTrainRatioError(test_train_ratio, "the corrected test")
        return replace(
            base, ratio=test_train_ratio, source=f"n_test/n_train = {test_train_ratio:g}, as given"
        )
    measured = _measured(a) or _measured(b)
    if measured is not None:
        train, test = measured
        n_train, n_test = math.fsum(train) / len(train), math.fsum(test) / len(test)
        lo, hi = min(test) / max(train), max(test) / min(train)
        spread = "" if lo == hi else f" (per fold {lo:.4g}–{hi:.4g})"
        return replace(
            base,
            ratio=n_test / n_train,
            source=f"n_test/n_train = {n_test:g}/{n_train:g}, the mean measured sizes of the {len(train)} "
            f"folds{spread}",
        )
    sizes = [(_number(r.params.get("cv/n_test")), _number(r.params.get("cv/n_train"))) for r in (a, b)]
    known = [(t, tr) for t, tr in sizes if t and tr]
    if known:
        n_test = math.fsum(t for t, _ in known) / len(known)
        n_train = math.fsum(tr for _, tr in known) / len(known)
        return replace(
            base,
            ratio=n_test / n_train,
            source=f"n_test/n_train = {n_test:g}/{n_train:g} from the cv/n_test, cv/n_train params",
        )
    return replace(
        base,
        source=f"the fold sizes are not recorded ({n_folds} folds, no cv/train_sizes, cv/test_sizes "
        "or cv/n_train, cv/n_test params): no corrected p-value without test_train_ratio= "
        "(--test-train-ratio n_test/n_train)",
    )


def fold_size_ratio(a: RunView, b: RunView, n_folds: int) -> tuple[float, str]:
    """n_test / n_train for the Nadeau–Bengio correction (NaN when unknown), and where it came from."""
    design = fold_design(a, b, n_folds)
    return (math.nan if design.ratio is None else design.ratio), design.source
