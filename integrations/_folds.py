"""The ``cv/*`` params of a cross-validated run, which fair comparisons between runs rely on.

Part of :mod:`labledger.integrations.base`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labledger.tracking import cv_design

__all__ = ["cv_design_params"]


def cv_design_params(
    cv: object = None,
    splits: Iterable[tuple[Any, Any]] | None = None,
    *,
    X: object = None,
    y: object = None,
    groups: object = None,
) -> dict[str, Any]:
    """The ``cv/*`` params that describe how a cross-validation's folds were made.

    ``cv`` is a splitter (any object with ``split(X, y, groups)``) or a list of
    ``(train, test)`` index pairs; ``splits`` are the folds actually used, when known.
    The params: ``cv/class``, ``cv/n_splits``, ``cv/shuffle``, ``cv/random_state``,
    ``cv/fingerprint`` (a hash of the indices, ``None`` unless the folds are known),
    ``cv/n_repeats`` and ``cv/k`` of a repeated splitter, the measured
    ``cv/train_sizes`` and ``cv/test_sizes`` (means ``cv/n_train``, ``cv/n_test``),
    ``cv/time_ordered``, ``cv/groups``. Log them with the fold results
    (:meth:`labledger.Run.log_folds`): ``labledger compare`` needs them for a
    corrected test.

    >>> run.log_params(cv_design_params(KFold(5, shuffle=True, random_state=0), X=X, y=y))  # doctest: +SKIP
    >>> cv_design_params(splits=[([0, 1, 2], [3]), ([0, 1, 3], [2])])["cv/n_test"]
    1.0
    """
    return cv_design.design_params(cv, splits, X=X, y=y, groups=groups)
