"""Holm and Bonferroni adjusted p-values, by hand and (when installed) against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labledger.analysis.multiple_testing import (
    CORRECTIONS,
    InvalidPValueError,
    UnknownCorrectionError,
    adjust_p_values,
)

P = [0.01, 0.04, 0.03, 0.005, 0.2]


def test_holm_by_hand():
    # sorted: 0.005·5, 0.01·4, 0.03·3, 0.04·2, 0.2·1 → 0.025, 0.04, 0.09, 0.08→0.09 (monotone), 0.2
    expected = [0.04, 0.09, 0.09, 0.025, 0.2]
    assert adjust_p_values(P, "holm") == pytest.approx(expected, rel=1e-12)
    assert adjust_p_values(P) == adjust_p_values(P, "holm")


def test_bonferroni_by_hand_is_capped_at_1():
    assert adjust_p_values(P, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0], rel=1e-12)


def test_holm_is_capped_monotone_and_never_above_bonferroni():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 0.3, rng.integers(1, 12)).tolist()
        holm, bonf = adjust_p_values(p, "holm"), adjust_p_values(p, "bonferroni")
        order = np.argsort(p, kind="stable")
        assert all(np.diff(np.array(holm)[order]) >= 0)
        assert all(p_i <= h <= b <= 1.0 for p_i, h, b in zip(p, holm, bonf, strict=True))


def test_none_returns_the_values_unchanged():
    assert adjust_p_values(P, "none") == P
    assert adjust_p_values(np.array(P), "none") == P


def test_nan_stays_nan_and_does_not_count_in_the_family():
    with_nan = [0.01, math.nan, 0.04, math.nan, 0.03]
    for method in CORRECTIONS:
        out = adjust_p_values(with_nan, method)
        assert math.isnan(out[1]) and math.isnan(out[3])
        kept = [out[0], out[2], out[4]]
        assert kept == adjust_p_values([0.01, 0.04, 0.03], method)
    assert adjust_p_values([math.nan], "holm")[0] != adjust_p_values([math.nan], "holm")[0]
    assert adjust_p_values([], "holm") == []


def test_ties_share_an_adjusted_value():
    assert adjust_p_values([0.02, 0.02, 0.5], "holm") == pytest.approx([0.06, 0.06, 0.5])


def test_bad_input_raises_errors_that_say_what_to_do():
    with pytest.raises(UnknownCorrectionError, match=r"'fdr'.*holm, bonferroni, none") as e:
        adjust_p_values(P, "fdr")
    assert isinstance(e.value, ValueError)
    for bad in (-0.1, 1.5, math.inf):
        with pytest.raises(InvalidPValueError, match=r"\[0, 1\]"):
            adjust_p_values([0.1, bad])


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_matches_statsmodels(method):
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = rng.uniform(0, 0.2, rng.integers(1, 15))
        _, ref, _, _ = multitest.multipletests(p, method=method)
        assert adjust_p_values(p.tolist(), method) == pytest.approx(ref.tolist(), rel=1e-12)
