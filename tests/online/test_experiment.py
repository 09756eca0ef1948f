"""Online experiments as runs: logged aggregates read back, analysed, and linked to offline runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from scipy import stats
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, TimeSeriesSplit, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from statsmodels.stats.proportion import proportions_ztest

import labledger as ll
from labledger.errors import InvalidValueError, RunFinishedError
from labledger.online import Covariate, Moments, credit, preference_test
from labledger.online.bandits import regret, simulate_thompson
from labledger.online.record import NotAnOnlineRunError, read_online
from labledger.online.report import online_report
from labledger.online.sequential import looks_from_counts, msprt, tau2_from_mde


def _offline_models() -> tuple[ll.Run, ll.Run, dict[str, np.ndarray]]:
    """Two real models scored by 5-fold CV and a 4-fold time-ordered backtest."""
    X, y = load_breast_cancer(return_X_y=True)
    scores = {}
    runs = []
    for name, model in (
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
        ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))),
    ):
        with ll.start_run("models", name=name, hypothesis=f"{name} ranks well") as run:
            cv = StratifiedKFold(5, shuffle=True, random_state=0)
            scores[name] = cross_val_score(model, X, y, cv=cv)
            run.log_folds("accuracy", scores[name], split="cv", cv=cv, X=X, y=y)
            back = cross_val_score(model, X, y, cv=TimeSeriesSplit(4))
            scores[f"{name}/backtest"] = back
            run.log_folds("accuracy", back, split="backtest")
        runs.append(run)
    return runs[0], runs[1], scores


def _daily(rng: np.random.Generator, exp, days: int, n: int, rates: tuple[float, float], share: float = 0.5):
    totals = np.zeros((2, 2), dtype=int)
    for day in range(days):
        a = int(rng.binomial(n, share))
        b = n - a
        sa, sb = int(rng.binomial(a, rates[0])), int(rng.binomial(b, rates[1]))
        period = f"2026-11-{day + 1:02d}"
        exp.log_exposures({"control": a, "treatment": b}, period=period)
        exp.log_outcomes("ctr", {"control": (sa, a), "treatment": (sb, b)}, period=period)
        totals += [[sa, a], [sb, b]]
    return totals


def test_an_ab_test_reads_back_exactly_and_links_the_offline_runs():
    tree, logreg, scores = _offline_models()
    rng = np.random.default_rng(1)
    with ll.start_online(
        "ranker-online",
        hypothesis="logreg's CV gain carries over online",
        variants={"control": tree.id, "treatment": f"models/{logreg.name}"},
        primary_metric="ctr",
        mde=0.01,
    ) as exp:
        totals = _daily(rng, exp, days=7, n=20_000, rates=(0.10, 0.115))
        report = exp.report()
    view = ll.get_run(exp.id)
    assert view.kind == "online" and view.status == "finished"
    data = read_online(view)
    assert data.periods == [f"2026-11-{d:02d}" for d in range(1, 8)]
    assert data.models == {"control": tree.id, "treatment": logreg.id}
    (sa, na), (sb, nb) = totals
    assert data.exposures() == {"control": na, "treatment": nb}
    # the lift and its test are statsmodels' on the summed counts
    _, p = proportions_ztest([sb, sa], [nb, na])
    ctr = report.metrics[0]
    assert ctr.lift is not None and ctr.lift.p_value == pytest.approx(p, rel=1e-9)
    assert ctr.lift.difference == pytest.approx(sb / nb - sa / na, rel=1e-12)
    # the sequential status is the mSPRT over the cumulative daily looks
    cum = {k: data.column(k).cumsum() for k in data.series}
    looks = looks_from_counts(
        *(cum[f"online/ctr/{v}/{f}"] for v in ("control", "treatment") for f in ("successes", "trials"))
    )
    assert ctr.sequential is not None
    assert ctr.sequential.p_values == msprt(looks, tau2=tau2_from_mde(0.01)).p_values
    assert report.reached and report.decision == "ship treatment"
    assert ctr.verdict.startswith("treatment better than control on ctr, p=")
    # the offline evidence: the runs' own CV and backtest fold means and stds
    evidence = {e.variant: e for e in report.offline}
    folds = {(split, key): (n, mean, std) for split, key, n, mean, std in evidence["treatment"].folds}
    assert folds[("cv", "accuracy")] == (
        5,
        pytest.approx(scores["logreg"].mean()),
        pytest.approx(scores["logreg"].std()),
    )
    assert folds[("backtest", "accuracy")][1] == pytest.approx(scores["logreg/backtest"].mean())
    text = report.render()
    assert f"models/{logreg.name}" in text and "backtest" in text and "no sample ratio mismatch" in text
    # the summary metrics recorded at the end
    assert view.summary["lift/ctr/treatment"]["last"] == pytest.approx(sb / nb / (sa / na) - 1)


def test_logging_a_period_twice_adds_and_nothing_is_overwritten():
    with ll.start_online("adds", variants=["a", "b"], primary_metric="conv") as exp:
        exp.log_exposures({"a": 100, "b": 90}, period="d1")
        exp.log_exposures({"a": 5, "b": 10}, period="d1")
        exp.log_exposures({"a": 50}, period="d2")
        exp.log_outcomes("conv", {"a": (10, 105), "b": (20, 100)}, period="d1")
    data = read_online(ll.get_run(exp.id))
    assert data.periods == ["d1", "d2"]
    assert data.column("online/exposures/a").tolist() == [105, 50]
    assert data.exposures() == {"a": 155, "b": 100}


def test_an_injected_two_percent_srm_is_flagged_and_blocks_shipping():
    with ll.start_online("srm", variants=["control", "treatment"], primary_metric="ctr", mde=0.01) as exp:
        exp.log_exposures({"control": 51_000, "treatment": 49_000}, period="d1")
        exp.log_outcomes("ctr", {"control": (5_100, 51_000), "treatment": (5_900, 49_000)}, period="d1")
        report = exp.report()
    assert report.srm is not None and report.srm.flagged
    assert report.metrics[0].better is True  # the lift alone would ship
    assert report.decision.startswith("do not ship: sample ratio mismatch")
    assert "!! SAMPLE RATIO MISMATCH" in report.render()
    assert 'class="srm"' in report.to_html()


def test_before_the_planned_sample_the_verdict_uses_the_always_valid_p():
    rng = np.random.default_rng(5)
    with ll.start_online(
        "early", variants=["control", "treatment"], primary_metric="ctr", planned_units=10**6
    ) as exp:
        _daily(rng, exp, days=3, n=4_000, rates=(0.10, 0.10))
        report = exp.report()
    assert not report.reached
    m = report.metrics[0]
    assert not m.fixed_read and "mSPRT always-valid" in m.verdict
    assert report.decision.startswith("keep collecting")
    assert "not at plan" in report.render()


def test_cuped_through_the_run_narrows_the_interval_by_sqrt_one_minus_rho_squared():
    rng = np.random.default_rng(7)
    n, rho = 20_000, 0.8
    moments, covs = {}, {}
    for v, shift in (("control", 0.0), ("treatment", 0.03)):
        x = rng.normal(10, 2, n)
        y = 10 + shift + rho * (x - 10) + math.sqrt(1 - rho**2) * rng.normal(0, 2, n)
        moments[v], covs[v] = Moments.from_values(y), Covariate.from_values(x, y)
    with ll.start_online("cuped", variants=["control", "treatment"], primary_metric="revenue") as exp:
        exp.log_exposures({"control": n, "treatment": n}, period="d1")
        exp.log_outcomes("revenue", moments, period="d1", covariate=covs)
        with_cuped = exp.report().metrics[0].lift
    with ll.start_online("plain", variants=["control", "treatment"], primary_metric="revenue") as exp:
        exp.log_exposures({"control": n, "treatment": n}, period="d1")
        exp.log_outcomes("revenue", moments, period="d1")
        plain = exp.report().metrics[0].lift
    assert with_cuped is not None and plain is not None
    width = lambda lift: lift.difference_ci[1] - lift.difference_ci[0]  # noqa: E731
    assert width(with_cuped) / width(plain) == pytest.approx(math.sqrt(1 - rho**2), rel=0.03)
    assert with_cuped.variance_reduction == pytest.approx(1 - rho**2, rel=0.03)


def test_ingesting_raw_events_equals_aggregating_them_by_hand(tmp_path):
    rng = np.random.default_rng(11)
    units = np.arange(3_000)
    arm = np.where(rng.random(units.size) < 0.5, "control", "treatment")
    first_day = rng.integers(1, 4, units.size)
    rows = []
    for u, v, d in zip(units, arm, first_day, strict=True):
        for k in range(int(rng.integers(1, 4))):  # 1-3 events per unit, on its first day or later
            day = min(3, d + k)
            rows.append(
                (u, v, f"2026-11-0{day}T12:00:00Z", int(rng.random() < 0.1), float(rng.exponential(5)))
            )
    events = pd.DataFrame(rows, columns=["user", "arm", "ts", "clicked", "revenue"])
    events.to_parquet(tmp_path / "events.parquet")
    events.to_csv(tmp_path / "events.csv", index=False)
    per_unit = events.groupby("user").agg(
        arm=("arm", "first"), clicked=("clicked", "max"), revenue=("revenue", "sum"), ts=("ts", "min")
    )
    for source in (events, tmp_path / "events.parquet", str(tmp_path / "events.csv")):
        with ll.start_online("ingest", variants=["control", "treatment"], primary_metric="clicked") as exp:
            got = exp.ingest(
                source, unit="user", variant="arm", metrics=["clicked", "revenue"], timestamp="ts"
            )
        assert got == {"events": len(events), "units": units.size, "periods": 3}
        data = read_online(ll.get_run(exp.id))
        assert data.periods == ["2026-11-01", "2026-11-02", "2026-11-03"]
        assert data.metric_types == {"clicked": "proportion", "revenue": "mean"}
        for v in ("control", "treatment"):
            mine = per_unit[per_unit["arm"] == v]
            assert data.total(f"online/exposures/{v}") == len(mine)
            assert data.total(f"online/clicked/{v}/successes") == mine["clicked"].sum()
            assert data.total(f"online/revenue/{v}/sum") == pytest.approx(mine["revenue"].sum(), rel=1e-12)
            assert data.total(f"online/revenue/{v}/sum_sq") == pytest.approx((mine["revenue"] ** 2).sum())
            days = mine["ts"].str[:10].value_counts().sort_index()
            assert data.column(f"online/exposures/{v}").tolist() == days.tolist()


def test_ingest_names_the_missing_column_and_the_unknown_variant():
    events = pd.DataFrame({"user": [1, 2], "arm": ["control", "other"], "clicked": [0, 1]})
    with ll.start_online("bad-ingest", variants=["control", "treatment"]) as exp:
        with pytest.raises(InvalidValueError, match="revenue"):
            exp.ingest(events, unit="user", variant="arm", metrics=["revenue"])
        with pytest.raises(InvalidValueError, match="other"):
            exp.ingest(events, unit="user", variant="arm", metrics=["clicked"])
        events["arm"] = "control"
        events["ts"] = ["2026-11-01T23:30:00-02:00", None]  # a missing time is not dropped silently
        with pytest.raises(InvalidValueError, match="missing timestamps") as e:
            exp.ingest(events, unit="user", variant="arm", metrics=["clicked"], timestamp="ts")
        assert e.value.value == "ts"
        events["ts"] = ["2026-11-01T23:30:00-02:00", "2026-11-01T23:30:00+00:00"]
        exp.ingest(events, unit="user", variant="arm", metrics=["clicked"], timestamp="ts")
    assert read_online(ll.get_run(exp.id)).periods == ["2026-11-01", "2026-11-02"]  # days in UTC


def test_the_reports_bandit_regret_is_the_simulations_own():
    sim = simulate_thompson([0.05, 0.07, 0.10], rounds=6_000, rng=np.random.default_rng(3))
    arms = ["v5", "v6", "v7"]
    with ll.start_online("bandit", variants=arms, design="bandit") as exp:
        log = sim.log
        for period, start in enumerate(range(0, len(log), 500)):
            chosen = np.array(log.arms[start : start + 500])
            reward = np.array(log.rewards[start : start + 500])
            exp.log_pulls(
                {a: (int((chosen == i).sum()), float(reward[chosen == i].sum())) for i, a in enumerate(arms)},
                period=period,
            )
        truth = exp.report(arm_means=sim.arm_means).bandit
        hindsight = exp.report().bandit
    assert truth is not None and hindsight is not None
    assert truth.regret == pytest.approx(sim.regret, rel=1e-9)
    expected = regret(log)  # the best arm in hindsight, round by round
    assert hindsight.regret == pytest.approx(expected.total, rel=1e-9)
    ends = [min(len(log), s + 500) - 1 for s in range(0, len(log), 500)]
    assert hindsight.cumulative_regret == pytest.approx([expected.cumulative[e] for e in ends], rel=1e-9)
    # sublinear: the second half of the rounds adds less regret than the first
    half = len(truth.cumulative_regret) // 2
    assert truth.cumulative_regret[-1] - truth.cumulative_regret[half - 1] < truth.cumulative_regret[half - 1]
    assert truth.best_arm == "v7" and truth.saved > 0
    assert ll.get_run(exp.id).summary["regret"]["last"] == pytest.approx(hindsight.regret)


def test_team_draft_interleaving_logged_per_query_finds_the_better_ranker():
    rng = np.random.default_rng(9)
    relevant = set(range(0, 40, 3))
    credits = []
    for _ in range(400):
        docs = rng.permutation(40).tolist()
        good = sorted(docs, key=lambda d: (d not in relevant, rng.random()))  # relevant docs first
        shown = ll.interleave(docs[:10], good[:10], rng)
        clicks = [item for item, _ in shown[:10] if item in relevant and rng.random() < 0.6]
        credits.append(credit(shown, clicks))
    with ll.start_online("interleave", variants=["old", "new"], design="interleaving") as exp:
        exp.log_interleaving(credits[:200], period="d1")
        exp.log_interleaving(credits[200:], period="d2")
        report = exp.report()
    assert report.interleaving is not None
    assert report.interleaving == preference_test(credits)
    assert report.interleaving.winner == "b" and report.decision == "users prefer new"


def test_bad_input_gets_a_labledger_error_naming_it():
    with pytest.raises(InvalidValueError, match="variants"):
        ll.start_online("x", variants=["only"])
    with pytest.raises(InvalidValueError, match="allocation"):
        ll.start_online("x", variants=["a", "b"], allocation={"a": 1.0})
    with pytest.raises(InvalidValueError, match="variant"):
        ll.start_online("x", variants=["a/b", "c"])
    with ll.start_online("x", variants=["a", "b"]) as exp:
        with pytest.raises(InvalidValueError, match="unknown variant"):
            exp.log_exposures({"c": 3})
        with pytest.raises(InvalidValueError, match="successes"):
            exp.log_outcomes("conv", {"a": (5, 3)})
        with pytest.raises(InvalidValueError, match="not a mix"):
            exp.log_outcomes("conv", {"a": (1, 3), "b": Moments(2, 1.0, 1.0)})
        exp.log_outcomes("conv", {"a": (1, 3), "b": (1, 3)})
        with pytest.raises(InvalidValueError, match="proportion before"):
            exp.log_outcomes("conv", {"a": Moments(2, 1.0, 1.0)})
        with pytest.raises(InvalidValueError, match="exposures"):
            exp.log_outcomes("exposures", {"a": (1, 3)})
    with pytest.raises(RunFinishedError):
        exp.log_exposures({"a": 1})
    with ll.start_run("offline") as run:
        pass
    with pytest.raises(NotAnOnlineRunError, match="start_online"):
        online_report(ll.get_run(run.id))


def test_an_exception_inside_records_the_run_failed_without_a_summary():
    with pytest.raises(ZeroDivisionError), ll.start_online("boom", variants=["a", "b"]) as exp:
        exp.log_exposures({"a": 10, "b": 10}, period="d1")
        1 / 0  # noqa: B018
    view = ll.get_run(exp.id)
    assert view.status == "failed"
    assert not any(k.startswith("lift/") for k in view.summary)
    assert read_online(view).exposures() == {"a": 10, "b": 10}


def test_a_known_effect_is_detected_at_the_stated_power_through_the_report():
    # 10% → 12% with the size `plan` gives for 80 % power: the fixed-horizon read detects it in
    # about 80 % of 200 simulated experiments (binomial tolerance 3·sqrt(.8·.2/200) = 0.085)
    from labledger.online.power import sample_size

    n = sample_size(0.10, 0.02, power=0.8)
    rng = np.random.default_rng(13)
    hits = 0
    for _ in range(200):
        sa, sb = int(rng.binomial(n, 0.10)), int(rng.binomial(n, 0.12))
        with ll.start_online("power", variants=["a", "b"], primary_metric="conv", planned_units=n) as exp:
            exp.log_exposures({"a": n, "b": n}, period="d1")
            exp.log_outcomes("conv", {"a": (sa, n), "b": (sb, n)}, period="d1")
            hits += exp.report().metrics[0].better is True
    assert abs(hits / 200 - 0.8) <= 3 * math.sqrt(0.8 * 0.2 / 200)
    assert stats.binomtest(hits, 200, 0.8).pvalue > 0.001


def test_numpy_scalars_are_accepted_everywhere():
    counts = np.array([[120, 1_000], [150, 1_000]], dtype=np.int64)
    with ll.start_online("numpy", variants=["a", "b"], primary_metric="conv", alpha=np.float64(0.05)) as exp:
        exp.log_exposures({"a": counts[0, 1], "b": counts[1, 1]}, period="d1")
        exp.log_outcomes("conv", {"a": tuple(counts[0]), "b": tuple(counts[1])}, period="d1")
        lift = exp.report().metrics[0].lift
    assert lift is not None and lift.difference == pytest.approx(0.03)
    with ll.start_online("numpy-bandit", variants=["a", "b"], design="bandit") as exp:
        exp.log_pulls({"a": (np.int64(3), np.float64(1.0)), "b": (np.int64(4), np.float32(2.0))}, period=0)
        bandit = exp.report(arm_means={"a": 0.3, "b": 0.5}).bandit
    assert bandit is not None and bandit.pulls == [3, 4] and bandit.regret == pytest.approx(0.6)


def test_calls_that_do_not_fit_the_design_or_the_metric_are_refused():
    with ll.start_online("design", variants=["a", "b"]) as exp:
        with pytest.raises(InvalidValueError, match="log_pulls is for bandit experiments"):
            exp.log_pulls({"a": (1, 1.0)})
        with pytest.raises(InvalidValueError, match="log_interleaving is for interleaving"):
            exp.log_interleaving([(1, 0)])
        m, c = Moments(3, 6.0, 14.0), Covariate(3, 3.0, 5.0, 7.0)
        exp.log_outcomes("revenue", {"a": m, "b": m}, covariate={"a": c, "b": c}, period="d1")
        with pytest.raises(InvalidValueError, match="with a covariate before"):
            exp.log_outcomes("revenue", {"a": m, "b": m}, period="d2")
        with pytest.raises(InvalidValueError, match="one Covariate per variant"):
            exp.log_outcomes("revenue", {"a": m, "b": m}, covariate={"a": c}, period="d2")
        exp.log_outcomes("orders", {"a": m, "b": m}, period="d1")
        with pytest.raises(InvalidValueError, match="without a covariate before"):
            exp.log_outcomes("orders", {"a": m, "b": m}, covariate={"a": c, "b": c}, period="d2")
    with ll.start_online("bandit-design", variants=["a", "b"], design="bandit") as exp:
        with pytest.raises(InvalidValueError, match="log_exposures is for ab"):
            exp.log_exposures({"a": 1})
        exp.log_pulls({"a": (3, 1.0), "b": (4, 2.0)}, period=0)
        with pytest.raises(InvalidValueError, match="arm_means"):
            exp.report(arm_means=[0.1, 0.2, 0.3])
    assert "1 period (0 … 0)" in exp.report().render()


def test_cuped_also_narrows_the_confidence_sequence():
    rng = np.random.default_rng(17)
    with (
        ll.start_online("cuped-seq", variants=["a", "b"], primary_metric="revenue") as exp,
        ll.start_online("plain-seq", variants=["a", "b"], primary_metric="revenue") as plain,
    ):
        for day in range(5):
            moments, covs = {}, {}
            for v in ("a", "b"):
                x = rng.normal(10, 2, 2_000)
                y = x + rng.normal(0, 1, 2_000)
                moments[v], covs[v] = Moments.from_values(y), Covariate.from_values(x, y)
            exp.log_outcomes("revenue", moments, covariate=covs, period=day)
            plain.log_outcomes("revenue", moments, period=day)
        adjusted, raw = exp.report().metrics[0].sequential, plain.report().metrics[0].sequential
    assert adjusted is not None and raw is not None and len(adjusted.lower) == 5
    width = [hi - lo for lo, hi in zip(adjusted.lower, adjusted.upper, strict=True)]
    raw_width = [hi - lo for lo, hi in zip(raw.lower, raw.upper, strict=True)]
    # y = x + noise with var(x) = 4, var(noise) = 1: 1 − ρ² = 0.2, so the width shrinks by about √0.2
    assert width[-1] / raw_width[-1] == pytest.approx(math.sqrt(0.2), rel=0.1)
