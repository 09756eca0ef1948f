"""One run against another on one fold metric: comparability, the right test for the design, a verdict.

Which test is used:

- random splits (k-fold, shuffle-split): the corrected resampled t-test of
  Nadeau & Bengio with n_test/n_train from the measured fold sizes;
- repeated k-fold: the same formula over all k·r folds with df = k·r − 1, the
  corrected repeated k-fold cv test of Bouckaert & Frank (2004);
- time-ordered folds (``TimeSeriesSplit``): the corrected test's assumptions do
  not hold, so a paired t-test on the per-fold differences is shown, with that
  caveat beside the verdict;
- fold sizes unknown: no corrected p-value (pass ``test_train_ratio``), or the
  plain paired t / Wilcoxon tests on request.

Beside it, the Bayesian view of Benavoli et al. (2017): the posterior of the
mean difference under the same corrected t model, with P(A better),
P(B better) and P(practically equivalent) for a region ``rope``.

>>> from labledger.analysis.pairing import compare_pair
>>> compare_pair(view_a, view_b, "accuracy").verdict  # doctest: +SKIP
'A better than B on accuracy, p=0.012 (Nadeau–Bengio corrected resampled t-test)'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labledger.analysis.comparability import Issue, comparability_issues
from labledger.analysis.fold_design import FoldDesign, fold_design

if TYPE_CHECKING:
    from labledger.analysis.posterior import Posterior
    from labledger.analysis.stats import PairedTestResult
    from labledger.query.runs import RunView

__all__ = ["PairOutcome", "adjust_family", "compare_pair", "fold_values"]

#: the Nadeau–Bengio formula over all k·r folds of r repeats, df = k·r − 1
REPEATED_DESCRIPTION = "corrected repeated k-fold cv test (Bouckaert & Frank 2004)"
TIME_ORDERED_CAVEAT = (
    "time-ordered folds{splitter}: the corrected resampled t-test assumes random, exchangeable "
    "splits, which these are not; shown instead: a paired t-test on the per-fold differences — the "
    "folds share their training history, so read its p-value as indicative only"
)


@dataclass
class PairOutcome:
    """Run ``a`` against run ``b`` on one metric (``mean_difference`` = a − b)."""

    metric: str
    a: str
    b: str
    direction: str
    alpha: float
    issues: list[Issue]
    result: PairedTestResult | None = None
    ratio_source: str | None = None
    winner: str | None = None  # "a", "b" or None
    verdict: str = ""
    labels: tuple[str, str] = ("A", "B")
    design: FoldDesign | None = None
    description: str = ""  # the test used, in words
    p_adjusted: float | None = None  # after the multiple-comparison correction of its family
    correction: str = "none"
    family_size: int = 1
    posterior: Posterior | None = None
    caveat: str | None = None

    @property
    def comparable(self) -> bool:
        return not any(i.blocking for i in self.issues)

    @property
    def p_value(self) -> float | None:
        """The p-value the verdict rests on: adjusted for multiple comparisons when corrected."""
        if self.result is None:
            return None
        return self.result.p_value if self.p_adjusted is None else self.p_adjusted

    @property
    def significant(self) -> bool:
        p = self.p_value
        return p is not None and p < self.alpha

    @property
    def p_a_better(self) -> float | None:
        """Posterior probability that ``a`` is better by more than the ROPE (direction-aware)."""
        if self.posterior is None:
            return None
        return self.posterior.p_greater if self.direction == "max" else self.posterior.p_less

    @property
    def p_b_better(self) -> float | None:
        if self.posterior is None:
            return None
        return self.posterior.p_less if self.direction == "max" else self.posterior.p_greater

    def to_dict(self) -> dict[str, Any]:
        r, post = self.result, self.posterior
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "direction": self.direction,
            "comparable": self.comparable,
            "issues": [{"message": i.message, "blocking": i.blocking} for i in self.issues],
            "test": r.test if r else None,
            "description": self.description or None,
            "alternative": r.alternative if r else None,
            "n": r.n if r else None,
            "mean_difference": r.mean_difference if r else None,
            "statistic": r.statistic if r else None,
            "df": r.df if r else None,
            "p_value": r.p_value if r else None,
            "p_adjusted": self.p_adjusted,
            "correction": self.correction,
            "family_size": self.family_size,
            "test_train_ratio": self.design.ratio if self.design else None,
            "ratio_source": self.ratio_source,
            "repeats": self.design.n_repeats if self.design else None,
            "time_ordered": self.design.time_ordered if self.design else None,
            "caveat": self.caveat,
            "bayesian": None
            if post is None
            else {
                "rope": post.rope,
                "p_a_better": self.p_a_better,
                "p_b_better": self.p_b_better,
                "p_equivalent": post.p_rope,
                "mean": post.mean,
                "scale": post.scale,
                "df": post.df,
                "interval_95": list(post.interval(0.95)),
            },
            "alpha": self.alpha,
            "winner": self.winner,
            "verdict": self.verdict,
        }


def fold_values(run: RunView, key: str, split: str = "test") -> list[float]:
    """The run's per-fold values of ``key`` in fold order (NaN for a failed fold)."""
    rows = run.store.folds_of([run.id])  # in fold order
    return [math.nan if v is None else float(v) for _, k, s, _, v in rows if k == key and s == split]


def compare_pair(
    a: RunView,
    b: RunView,
    metric: str,
    split: str = "test",
    test: str = "nadeau-bengio",
    alpha: float = 0.05,
    direction: str = "max",
    labels: tuple[str, str] = ("A", "B"),
    *,
    alternative: str = "two-sided",
    test_train_ratio: float | None = None,
    rope: float | None = None,
) -> PairOutcome:
    """Compare two runs on one fold metric: comparability first, then the test the design calls for.

    ``alternative`` is about the values of a − b (``greater``: a's values are
    greater); ``rope`` (≥ 0) adds the Bayesian view's region of practical
    equivalence (0 shows it without one, ``None`` leaves the view out).

    >>> compare_pair(a, b, "accuracy", alternative="greater", rope=0.01).p_a_better  # doctest: +SKIP
    """
    from labledger.analysis.stats import (
        ALTERNATIVES,
        TESTS,
        NotEnoughFoldsError,
        UnknownAlternativeError,
        UnknownTestError,
        paired_test,
    )

    if test not in TESTS:
        raise UnknownTestError(test)
    if alternative not in ALTERNATIVES:
        raise UnknownAlternativeError(alternative)
    out = PairOutcome(metric, a.id, b.id, direction, alpha, comparability_issues(a, b, metric), labels=labels)
    va, vb = fold_values(a, metric, split), fold_values(b, metric, split)
    if not va or not vb:
        missing = ", ".join(lab for lab, v in zip(labels, (va, vb), strict=True) if not v)
        out.issues.append(Issue(f"no paired test: {missing} has no {metric} folds (split {split})"))
    elif len(va) != len(vb):
        out.issues.append(Issue(f"not comparable: different number of folds ({len(va)} vs {len(vb)})"))
    if not out.comparable:
        out.verdict = next(i for i in out.issues if i.blocking).message
        return out
    design = out.design = fold_design(a, b, len(va), test_train_ratio)
    used, ratio = test, None
    if test == "nadeau-bengio":
        if design.time_ordered:
            used = "paired-t"
            splitter = f" ({design.splitter.rsplit('.', 1)[-1]})" if design.splitter else ""
            out.caveat = TIME_ORDERED_CAVEAT.format(splitter=splitter)
        elif design.ratio is None:
            out.issues.append(Issue(f"no corrected p-value: {design.source}", blocking=False))
            out.verdict = f"no corrected p-value on {metric}: {design.source}"
            return out
        else:
            ratio = design.ratio
            out.ratio_source = design.source
    try:
        out.result = paired_test(va, vb, used, ratio, alternative=alternative)
    except NotEnoughFoldsError as e:
        out.issues.append(Issue(f"no paired test: {e}"))
        out.verdict = f"no paired test: {e.n} paired folds"
        return out
    out.description = (
        REPEATED_DESCRIPTION if used == "nadeau-bengio" and design.repeated else (out.result.description)
    )
    if rope is not None and design.ratio is not None and not design.time_ordered:
        from labledger.analysis.posterior import posterior

        out.posterior = posterior(va, vb, design.ratio, rope=rope)
    decide(out)
    return out


def adjust_family(pairs: Sequence[PairOutcome], correction: str = "holm") -> None:
    """Adjust the p-values of ``pairs`` (one family of tests) and redo their verdicts."""
    from labledger.analysis.multiple_testing import CORRECTIONS, UnknownCorrectionError, adjust_p_values

    if correction not in CORRECTIONS:
        raise UnknownCorrectionError(correction)
    tested = [p for p in pairs if p.result is not None]
    adjusted = adjust_p_values([p.result.p_value for p in tested if p.result is not None], correction)
    for pair, p in zip(tested, adjusted, strict=True):
        pair.p_adjusted, pair.correction, pair.family_size = p, correction, len(tested)
        decide(pair)


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _p_text(out: PairOutcome) -> str:
    assert out.result is not None
    text = f"p={_p(out.result.p_value)}"
    if out.correction != "none" and out.family_size > 1 and out.p_adjusted is not None:
        text += (
            f", {out.correction.capitalize()}-adjusted p={_p(out.p_adjusted)} over {out.family_size} tests"
        )
    return text


def decide(out: PairOutcome) -> None:
    """Set ``winner`` and ``verdict`` from the (adjusted) p-value, the alternative and the direction."""
    r = out.result
    if r is None:
        return
    first, second = out.labels
    alternative = r.alternative
    sign = ">" if alternative == "greater" else "<"
    sided = "" if alternative == "two-sided" else f"one-sided, H1: {first} {sign} {second}; "
    test = f"{sided}{out.description or r.description}"
    out.winner = None
    if out.significant and r.mean_difference != 0:
        a_wins = (r.mean_difference > 0) == (out.direction == "max")
        out.winner = "a" if a_wins else "b"
        win, lose = (first, second) if a_wins else (second, first)
        out.verdict = f"{win} better than {lose} on {out.metric}, {_p_text(out)} ({test})"
    elif alternative == "two-sided":
        out.verdict = (
            f"no significant difference on {out.metric} ({_p_text(out)}, alpha={out.alpha:g}, {test})"
        )
    else:
        out.verdict = (
            f"no significant evidence that {first} {sign} {second} on {out.metric} "
            f"({_p_text(out)}, alpha={out.alpha:g}, {test})"
        )
    if out.caveat:
        out.verdict += f" — caveat: {out.caveat}"


def pair_family(pairs: list[PairOutcome]) -> dict[str, list[PairOutcome]]:
    """The pairs grouped by metric: each metric's tests are one family for the correction."""
    families: dict[str, list[PairOutcome]] = {}
    for p in pairs:
        families.setdefault(p.metric, []).append(p)
    return families
