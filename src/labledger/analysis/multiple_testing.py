"""Adjusting p-values when several comparisons are tested at once.

Testing m pairs at level α each lets about α·m false "wins" through. The
adjusted p-values below keep the chance of any false rejection in the family
(the family-wise error rate) at most α: compare them to α as usual.

* ``holm``: Holm–Bonferroni step-down (Holm, 1979, "A Simple Sequentially
  Rejective Multiple Test Procedure", Scand. J. Statistics 6(2)); never less
  powerful than Bonferroni.
* ``bonferroni``: each p-value times m.
* ``none``: the p-values unchanged.

NaN p-values (pairs that could not be tested) stay NaN and do not count in m.

>>> from labledger.analysis.multiple_testing import adjust_p_values
>>> adjust_p_values([0.01, 0.04, 0.03, float("nan")], "holm")
[0.03, 0.06, 0.06, nan]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from labledger.errors import LabledgerError

__all__ = ["CORRECTIONS", "InvalidPValueError", "UnknownCorrectionError", "adjust_p_values"]

#: correction name → description shown in reports
CORRECTIONS = {
    "holm": "Holm–Bonferroni step-down correction",
    "bonferroni": "Bonferroni correction",
    "none": "no correction for multiple comparisons",
    "fdr_bh": "Benjamini–Hochberg false discovery rate correction",
}


class UnknownCorrectionError(LabledgerError, ValueError):
    """A multiple-comparison correction other than holm, bonferroni or none."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown correction {name!r}; use one of {', '.join(CORRECTIONS)}")


class InvalidPValueError(LabledgerError, ValueError):
    """A p-value outside [0, 1] (NaN is allowed and means "not tested")."""

    def __init__(self, index: int, value: float) -> None:
        self.index = index
        self.value = value
        super().__init__(
            f"p-value #{index} is {value!r}; p-values lie in [0, 1]. "
            "Pass the tests' p-values, with NaN for a pair that could not be tested."
        )


def adjust_p_values(p_values: Iterable[float], method: str = "holm") -> list[float]:
    """Adjusted p-values, in the order given, for a family of tests (``holm`` and ``bonferroni``
    control the family-wise error rate, ``fdr_bh`` the false discovery rate).

    >>> adjust_p_values([0.01, 0.02, 0.5], "bonferroni")
    [0.03, 0.06, 1.0]
    >>> adjust_p_values([0.01, 0.04, 0.03, 0.2], "fdr_bh")
    [0.04, 0.05333333333333334, 0.05333333333333334, 0.2]
    """
    if method not in CORRECTIONS:
        raise UnknownCorrectionError(method)
    ps = [float(p) for p in p_values]
    for i, p in enumerate(ps):
        if not (p != p or 0.0 <= p <= 1.0):
            raise InvalidPValueError(i, p)
    tested = [i for i, p in enumerate(ps) if not math.isnan(p)]
    m = len(tested)
    out = list(ps)
    if method == "bonferroni":
        for i in tested:
            out[i] = min(1.0, ps[i] * m)
    elif method == "holm":
        running = 0.0
        for rank, i in enumerate(sorted(tested, key=lambda j: ps[j])):
            running = max(running, min(1.0, (m - rank) * ps[i]))
            out[i] = running
    elif method == "fdr_bh":
        running = 1.0
        for rank, i in reversed(list(enumerate(sorted(tested, key=lambda j: ps[j])))):
            running = min(running, ps[i] * m / (rank + 1))
            out[i] = running
    return out
