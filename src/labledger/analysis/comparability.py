"""Whether two runs may be ranked against each other: same data, same folds, same metric definition.

Two runs are compared with a paired test only when they were scored on the
same folds of the same data with the same metric definition. When the
recorded dataset fingerprints, CV splitter or metric definition (the
``scoring/<key>`` param) differ, the comparison says "not comparable: …"
instead of ranking them; so it does for candidates of different
successive-halving iterations (``halving/iter``, ``halving/n_resources``).

>>> from labledger.analysis.comparability import comparability_issues
>>> [i.message for i in comparability_issues(view_a, view_b, "accuracy")]  # doctest: +SKIP
['not comparable: different CV folds (cv/fingerprint 1f2e… vs 9ab0…)']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.query.runs import RunView

__all__ = ["CV_PARAMS", "Issue", "comparability_issues", "halving_stage", "recorded_direction"]

#: the splitter settings compared when the runs record no ``cv/fingerprint`` of their folds
CV_PARAMS = (
    "cv/class",
    "cv/n_splits",
    "cv/n_repeats",
    "cv/test_size",
    "cv/train_size",
    "cv/gap",
    "cv/max_train_size",
    "cv/shuffle",
    "cv/random_state",
    "cv/groups",
)
_ROLE_WORDS = {"train": "train data", "test": "test data", "validation": "validation data"}


@dataclass(frozen=True)
class Issue:
    """A reason two runs may not be compared: ``blocking`` issues forbid ranking them."""

    message: str
    blocking: bool = True


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
    fa_cv, fb_cv = pa.get("cv/fingerprint"), pb.get("cv/fingerprint")
    if fa_cv is not None and fb_cv is not None:
        if fa_cv != fb_cv:
            issues.append(
                Issue(
                    f"not comparable: different CV folds (cv/fingerprint {_short(fa_cv)} vs {_short(fb_cv)})"
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
        elif _unseeded_random_splits(pa) and not _same_search(a, b):
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
        da, db = pa.get(f"direction/{key}"), pb.get(f"direction/{key}")
        if da is not None and db is not None and da != db:
            issues.append(Issue(f"not comparable: {key} is recorded as {da} is better vs {db} is better"))
    return issues


#: splitters that draw their folds at random (with ``shuffle`` or always)
_RANDOM_SPLITTERS = (
    "RepeatedKFold",
    "RepeatedStratifiedKFold",
    "ShuffleSplit",
    "StratifiedShuffleSplit",
    "GroupShuffleSplit",
)


def _unseeded_random_splits(params: dict[str, Any]) -> bool:
    splitter = str(params.get("cv/class") or "").rsplit(".", 1)[-1]
    random = bool(params.get("cv/shuffle")) or splitter in _RANDOM_SPLITTERS
    return random and params.get("cv/random_state") is None


def _same_search(a: RunView, b: RunView) -> bool:
    """Candidates of one search were all scored on the folds that search drew."""
    return (
        a.parent_id is not None
        and a.parent_id == b.parent_id
        and "candidate/index" in a.params
        and "candidate/index" in b.params
    )


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


def recorded_direction(runs: Sequence[RunView], key: str) -> str | None:
    """The direction (``max``/``min``) the runs recorded for ``key`` as ``direction/<key>``, if any.

    An integration records it from what it knows of the values (a scikit-learn
    scorer is always greater-is-better: ``neg_log_loss`` is a negated loss), so it
    comes before a declared or name-based direction.

    >>> recorded_direction([view], "LogLoss")  # doctest: +SKIP
    'max'
    """
    found = {r.params.get(f"direction/{key}") for r in runs} - {None}
    if len(found) == 1:
        value = found.pop()
        return value if value in ("max", "min") else None
    return None
