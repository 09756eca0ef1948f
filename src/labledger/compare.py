"""Fair comparison of runs: side-by-side params and metrics, a comparability guard, paired tests.

>>> import labledger as ll
>>> result = ll.compare(["digits/svc-rbf", "digits/logreg"], metric="accuracy")  # doctest: +SKIP
>>> print(result.render())                                                        # doctest: +SKIP
>>> result.pairs[0].verdict                                                      # doctest: +SKIP
'A better than B on accuracy, p=0.012 (Nadeau–Bengio corrected resampled t-test)'

Two runs are compared with a paired test only when they were scored on the
same folds of the same data with the same metric definition. When the
recorded dataset fingerprints, CV splitter or metric definition (the
``scoring/<key>`` param) differ, the comparison says "not comparable: …"
instead of ranking them; so it does for candidates of different
successive-halving iterations (``halving/iter``, ``halving/n_resources``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from labledger.errors import LabledgerError
from labledger.store import Store

if TYPE_CHECKING:
    from labledger.query import RunView
    from labledger.stats import PairedTestResult

__all__ = [
    "Comparison",
    "Issue",
    "MetricNotFoundError",
    "PairOutcome",
    "comparability_issues",
    "compare",
    "compare_pair",
    "fold_size_ratio",
    "fold_values",
    "halving_stage",
]

CV_PARAMS = ("cv/class", "cv/n_splits", "cv/shuffle", "cv/random_state")
_ROLE_WORDS = {"train": "train data", "test": "test data", "validation": "validation data"}


class MetricNotFoundError(LabledgerError, LookupError):
    """None of the compared runs has the requested metric."""

    def __init__(self, metric: str, available: Sequence[str]) -> None:
        self.metric = metric
        self.available = list(available)
        shown = ", ".join(self.available) or "none"
        super().__init__(f"no run has metric {metric!r} (as folds or as a logged metric); available: {shown}")


@dataclass(frozen=True)
class Issue:
    """A reason two runs may not be compared: ``blocking`` issues forbid ranking them."""

    message: str
    blocking: bool = True


@dataclass
class PairOutcome:
    """Run ``a`` against run ``b`` on one metric."""

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

    @property
    def comparable(self) -> bool:
        return not any(i.blocking for i in self.issues)

    @property
    def significant(self) -> bool:
        return self.result is not None and self.result.p_value < self.alpha

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "direction": self.direction,
            "comparable": self.comparable,
            "issues": [{"message": i.message, "blocking": i.blocking} for i in self.issues],
            "test": r.test if r else None,
            "n": r.n if r else None,
            "mean_difference": r.mean_difference if r else None,
            "statistic": r.statistic if r else None,
            "df": r.df if r else None,
            "p_value": r.p_value if r else None,
            "test_train_ratio": r.test_train_ratio if r else None,
            "ratio_source": self.ratio_source,
            "alpha": self.alpha,
            "winner": self.winner,
            "verdict": self.verdict,
        }


def fold_values(run: RunView, key: str, split: str = "test") -> list[float]:
    """The run's per-fold values of ``key`` in fold order (NaN for a failed fold)."""
    rows = run.store.query(
        "SELECT value FROM folds WHERE run_id = ? AND key = ? AND split = ? ORDER BY fold",
        (run.id, key, split),
    )
    return [math.nan if r["value"] is None else float(r["value"]) for r in rows]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:12] + "…" if len(text) > 13 else text


def _fingerprints(run: RunView) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in run.datasets:
        if d["fingerprint"]:
            out.setdefault(d["role"], set()).add(d["fingerprint"])
    return out


def comparability_issues(a: RunView, b: RunView, metric: str | None = None) -> list[Issue]:
    """Why runs ``a`` and ``b`` may not be ranked against each other on ``metric``."""
    issues: list[Issue] = []
    fa, fb = _fingerprints(a), _fingerprints(b)
    for role in sorted(set(fa) | set(fb)):
        what = _ROLE_WORDS.get(role, f"{role} data")
        if role in fa and role in fb and fa[role] != fb[role]:
            left = ", ".join(_short(x) for x in sorted(fa[role]))
            shown = f"{left} vs {', '.join(_short(x) for x in sorted(fb[role]))}"
            issues.append(Issue(f"not comparable: different {what} (fingerprints {shown})"))
        elif role == "train" and (role in fa) != (role in fb):
            missing = b if role in fa else a
            issues.append(
                Issue(f"cannot check the {what}: {missing.name} records no {role} dataset fingerprint", False)
            )
    if "train" not in fa and "train" not in fb:
        issues.append(Issue("cannot check the train data: neither run records a dataset fingerprint", False))
    pa, pb = a.params, b.params
    if "cv/fingerprint" in pa and "cv/fingerprint" in pb:
        if pa["cv/fingerprint"] != pb["cv/fingerprint"]:
            issues.append(
                Issue(
                    "not comparable: different CV folds (cv/fingerprint "
                    f"{_short(pa['cv/fingerprint'])} vs {_short(pb['cv/fingerprint'])})"
                )
            )
    else:
        differing = [k for k in CV_PARAMS if (k in pa or k in pb) and pa.get(k) != pb.get(k)]
        if differing:
            shown = "; ".join(f"{k}: {_short(pa.get(k))} vs {_short(pb.get(k))}" for k in differing)
            issues.append(Issue(f"not comparable: different CV splitter ({shown})"))
        elif not any(k in pa for k in CV_PARAMS):
            issues.append(
                Issue("cannot check the folds are the same: no cv/fingerprint or cv/* params recorded", False)
            )
        elif pa.get("cv/shuffle") and pa.get("cv/random_state") is None:
            issues.append(Issue("not comparable: shuffled CV without a random_state gives different folds"))
    issues.extend(_halving_issues(a, b))
    keys = (
        [metric] if metric else sorted({k[len("scoring/") :] for k in (*pa, *pb) if k.startswith("scoring/")})
    )
    for key in keys:
        sa, sb = pa.get(f"scoring/{key}"), pb.get(f"scoring/{key}")
        if sa is not None and sb is not None and sa != sb:
            issues.append(
                Issue(f"not comparable: different metric definition for {key} ({_short(sa)} vs {_short(sb)})")
            )
    return issues


def halving_stage(run: RunView) -> tuple[Any, Any] | None:
    """``(iteration, resources)`` of a successive-halving candidate, else ``None``."""
    params = run.params
    if "halving/iter" not in params:
        return None
    return params["halving/iter"], params.get("halving/n_resources")


def _halving_issues(a: RunView, b: RunView) -> list[Issue]:
    """Successive-halving iterations score candidates on different amounts of data: candidates
    compare only within one iteration."""
    sa, sb = halving_stage(a), halving_stage(b)
    if sa is None or sb is None:
        return []
    if sa != sb:
        return [
            Issue(
                f"not comparable: different successive-halving iterations (iter {sa[0]} on n_resources "
                f"{sa[1]} vs iter {sb[0]} on n_resources {sb[1]}); candidates compare within one iteration"
            )
        ]
    if a.parent_id != b.parent_id and a.params.get("cv/fingerprint") is None:
        return [Issue("cannot check the folds: each successive-halving search subsamples its own", False)]
    return []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def fold_size_ratio(a: RunView, b: RunView, n_folds: int) -> tuple[float, str]:
    """n_test / n_train for the Nadeau–Bengio correction, and where it came from."""
    sizes = [(_number(r.params.get("cv/n_test")), _number(r.params.get("cv/n_train"))) for r in (a, b)]
    if all(t and tr for t, tr in sizes):
        n_test = sum(t for t, _ in sizes if t) / 2
        n_train = sum(tr for _, tr in sizes if tr) / 2
        return (
            n_test / n_train,
            f"n_test/n_train = {n_test:g}/{n_train:g} from the cv/n_test, cv/n_train params",
        )
    k = _number(a.params.get("cv/n_splits")) or _number(b.params.get("cv/n_splits"))
    if k and k > 1:
        return 1.0 / (k - 1), f"n_test/n_train = 1/(k-1) = 1/{k - 1:g}, derived from cv/n_splits = {k:g}"
    if n_folds < 2:
        return math.nan, "no ratio: fewer than two folds"
    return (
        1.0 / (n_folds - 1),
        f"n_test/n_train = 1/(k-1) = 1/{n_folds - 1}, assuming k-fold with k = {n_folds} folds "
        "(no cv/n_splits or cv/n_train, cv/n_test params recorded)",
    )


def compare_pair(
    a: RunView,
    b: RunView,
    metric: str,
    split: str = "test",
    test: str = "nadeau-bengio",
    alpha: float = 0.05,
    direction: str = "max",
    labels: tuple[str, str] = ("A", "B"),
) -> PairOutcome:
    """Compare two runs on one fold metric: comparability first, then a paired test and a verdict."""
    from labledger.stats import TESTS, NotEnoughFoldsError, UnknownTestError, paired_test

    if test not in TESTS:
        raise UnknownTestError(test)
    out = PairOutcome(metric, a.id, b.id, direction, alpha, comparability_issues(a, b, metric))
    va, vb = fold_values(a, metric, split), fold_values(b, metric, split)
    if not va or not vb:
        missing = ", ".join(lab for lab, v in zip(labels, (va, vb), strict=True) if not v)
        out.issues.append(Issue(f"no paired test: {missing} has no {metric} folds (split {split})"))
    elif len(va) != len(vb):
        out.issues.append(Issue(f"not comparable: different number of folds ({len(va)} vs {len(vb)})"))
    if not out.comparable:
        first = next(i for i in out.issues if i.blocking)
        out.verdict = first.message
        return out
    ratio, out.ratio_source = fold_size_ratio(a, b, len(va)) if test == "nadeau-bengio" else (None, None)
    try:
        out.result = paired_test(va, vb, test, ratio)
    except NotEnoughFoldsError as e:
        out.issues.append(Issue(f"no paired test: {e}"))
        out.verdict = f"no paired test: {e.n} paired folds"
        return out
    r = out.result
    p = f"p={_p(r.p_value)}"
    if out.significant and r.mean_difference != 0:
        a_wins = (r.mean_difference > 0) == (direction == "max")
        out.winner = "a" if a_wins else "b"
        win, lose = labels if a_wins else labels[::-1]
        out.verdict = f"{win} better than {lose} on {metric}, {p} ({r.description})"
    else:
        out.verdict = f"no significant difference on {metric} ({p}, alpha={alpha:g}, {r.description})"
    return out


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


@dataclass
class Comparison:
    """Runs side by side: params, metrics (mean ± std over folds), comparability and paired tests."""

    runs: list[RunView]
    fold_keys: list[str]
    metric_keys: list[str]
    split: str
    test: str
    alpha: float
    pairs: list[PairOutcome] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [_label(i) for i in range(len(self.runs))]

    @property
    def differing_params(self) -> list[str]:
        keys = sorted({k for r in self.runs for k in r.params})
        return [k for k in keys if len({json.dumps(r.params.get(k), sort_keys=True) for r in self.runs}) > 1]

    @property
    def comparable(self) -> bool:
        return all(p.comparable for p in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [
                {"label": lab, "id": r.id, "experiment": r.experiment, "name": r.name, "status": r.status}
                for lab, r in zip(self.labels, self.runs, strict=True)
            ],
            "params": {
                k: [r.params.get(k) for r in self.runs]
                for k in sorted({k for r in self.runs for k in r.params})
            },
            "differing_params": self.differing_params,
            "folds": {k: [r.fold_stats.get((k, self.split)) for r in self.runs] for k in self.fold_keys},
            "metrics": {k: [r.summary.get(k, {}).get("last") for r in self.runs] for k in self.metric_keys},
            "tests": [p.to_dict() for p in self.pairs],
        }

    def render(self, style: Callable[..., str] | None = None) -> str:
        """The text of ``labledger compare`` (``style`` = ``click.style`` to highlight differences)."""
        from labledger.compare_render import render_comparison

        return render_comparison(self, style)


def _label(i: int) -> str:
    return chr(ord("A") + i) if i < 26 else f"R{i + 1}"


def compare(
    runs: Sequence[str | RunView],
    metric: str | None = None,
    split: str = "test",
    test: str = "nadeau-bengio",
    alpha: float = 0.05,
    store: str | os.PathLike[str] | Store | None = None,
) -> Comparison:
    """Compare runs (ids, id prefixes, ``experiment/name`` or views); the first is the reference.

    With ``metric`` (a fold key, e.g. ``accuracy``), each other run is tested
    against the first with a paired test on their folds; without it, every
    fold key the runs share is tested. ``test`` is ``nadeau-bengio`` (default),
    ``paired-t`` or ``wilcoxon``; ``alpha`` the significance level.

    >>> ll.compare(["digits/svc", "digits/logreg"], metric="accuracy", test="wilcoxon")  # doctest: +SKIP
    """
    from labledger.aggregation import direction_resolver
    from labledger.query import RunView, get_run
    from labledger.stats import TESTS, UnknownTestError

    if test not in TESTS:
        raise UnknownTestError(test)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")
    views = [r if isinstance(r, RunView) else get_run(r, store) for r in runs]
    if len(views) < 2:
        raise ValueError("compare needs at least two runs")
    fold_keys = sorted({k for r in views for (k, s) in r.fold_stats if s == split})
    metric_keys = sorted({k for r in views for k in r.summary})
    if metric is not None and metric not in fold_keys and metric not in metric_keys:
        raise MetricNotFoundError(metric, fold_keys + metric_keys)
    tested = [metric] if metric is not None else fold_keys
    comparison = Comparison(views, fold_keys, metric_keys, split, test, alpha)
    direction_of = direction_resolver(views[0].store)
    labels = comparison.labels
    for key in tested:
        if key not in fold_keys:
            continue
        for i in range(1, len(views)):
            comparison.pairs.append(
                compare_pair(
                    views[0], views[i], key, split, test, alpha, direction_of(key), (labels[0], labels[i])
                )
            )
    return comparison
