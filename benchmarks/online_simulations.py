"""Online experiments with known truth: does the report keep its promises?

Simulates experiments whose truth is known and reads them the way a team would:

1. A/A tests (no effect) looked at every day: the fixed-horizon z-test read once at the end,
   the same z-test read every day and stopped at the first "significant" day (naive peeking),
   and the mSPRT's always-valid p-value read every day. Vectorised over 1,000 seeds, then again
   through the product: each experiment logged with ``ll.start_online`` day by day into a real
   store and judged by ``online_report``.
2. A true 10 % → 12 % effect at the sample size ``labledger online plan`` gives for 80 % power.
3. A 2 % sample ratio mismatch (51/49 on a 50/50 plan) and a correct split.
4. Thompson sampling on three arms: regret over growing horizons (sublinear: regret per round
   falls) next to an equal split's.

Run: python benchmarks/online_simulations.py [--experiments 1000] [--through-store 300]
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import numpy as np


def _interval(hits: int, n: int) -> str:
    from scipy.stats import binomtest

    ci = binomtest(hits, n).proportion_ci(0.95, method="wilson")
    return f"{hits / n:6.1%}  [{ci.low:.1%}, {ci.high:.1%}]"


def vectorised(experiments: int) -> None:
    from labledger.online.sequential import peeking_simulation, tau2_from_mde

    sim = peeking_simulation(range(experiments), looks=30, users_per_look=500, tau2=tau2_from_mde(0.01))
    n = sim.experiments
    print(f"\n1a. A/A, {n:,} experiments × 30 daily looks × 500 users per arm per day, alpha 0.05")
    print(
        f"   fixed-horizon z-test, read once at the end   {_interval(round(sim.fixed_horizon_rate * n), n)}"
    )
    print(f"   the same z-test read every day (peeking)     {_interval(round(sim.naive_rate * n), n)}")
    print(f"   mSPRT always-valid p, read every day         {_interval(round(sim.msprt_rate * n), n)}")


def through_store(experiments: int, days: int = 30, users: int = 500) -> None:
    import labledger as ll
    from labledger.online.abtest import proportion_lift
    from labledger.online.report import online_report

    fixed = naive = sequential = 0
    started = time.perf_counter()
    for seed in range(experiments):
        rng = np.random.default_rng(seed)  # the same draws as seed `seed` of 1a
        counts = np.zeros((2, 2), dtype=int)
        peeked = False
        with ll.start_online("aa", variants=["a", "b"], primary_metric="conv", mde=0.01) as exp:
            for day in range(days):
                conv = rng.binomial(users, 0.10, 2)
                exp.log_exposures({"a": users, "b": users}, period=f"d{day:02d}")
                exp.log_outcomes(
                    "conv", {"a": (int(conv[0]), users), "b": (int(conv[1]), users)}, period=f"d{day:02d}"
                )
                counts += [[conv[0], users], [conv[1], users]]
                peeked = peeked or proportion_lift(*counts[0], *counts[1]).p_value < 0.05
        report = online_report(ll.get_run(exp.id))
        m = report.metrics[0]
        fixed += m.lift is not None and m.lift.p_value < 0.05
        naive += peeked
        sequential += m.sequential is not None and m.sequential.rejected
    took = time.perf_counter() - started
    print(f"\n1b. A/A through the store: 1a's first {experiments:,} experiments logged day by day with")
    print("    ll.start_online and judged by online_report (same seeds, so 1a's figures when all 1,000 run)")
    print(f"   report's fixed-horizon test at the end        {_interval(fixed, experiments)}")
    print(f"   z-test on the logged counts every day         {_interval(naive, experiments)}")
    print(f"   report's mSPRT, rejected at any daily look    {_interval(sequential, experiments)}")
    print(f"   ({took:.1f} s: {took / experiments * 1000:.0f} ms per 30-day experiment logged and reported)")


def power(experiments: int) -> None:
    import labledger as ll
    from labledger.online.power import sample_size
    from labledger.online.report import online_report

    n = sample_size(0.10, 0.02, power=0.8)
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(experiments):
        sa, sb = (int(x) for x in rng.binomial(n, [0.10, 0.12]))
        with ll.start_online("power", variants=["a", "b"], primary_metric="conv", planned_units=n) as exp:
            exp.log_exposures({"a": n, "b": n}, period="d1")
            exp.log_outcomes("conv", {"a": (sa, n), "b": (sb, n)}, period="d1")
        hits += online_report(ll.get_run(exp.id)).metrics[0].better is True
    found = _interval(hits, experiments)
    print(f"\n2. 10 % → 12 % at the planned {n:,} users per arm (80 % power): detected in {found}")


def srm(experiments: int) -> None:
    from labledger.online.abtest import srm_check

    rng = np.random.default_rng(3)
    total = 100_000
    flagged_bad = sum(
        srm_check({"a": int(x), "b": total - int(x)}, {"a": 0.5, "b": 0.5}).flagged
        for x in rng.binomial(total, 0.51, experiments)
    )
    flagged_ok = sum(
        srm_check({"a": int(x), "b": total - int(x)}, {"a": 0.5, "b": 0.5}).flagged
        for x in rng.binomial(total, 0.50, experiments)
    )
    print(f"\n3. SRM check (chi-square, threshold p < 0.001), {total:,} users per experiment")
    print(f"   51/49 split on a 50/50 plan flagged          {_interval(flagged_bad, experiments)}")
    print(f"   correct 50/50 split flagged                  {_interval(flagged_ok, experiments)}")


def bandit() -> None:
    from labledger.online.bandits import fixed_split_cost, simulate_thompson

    means = [0.05, 0.07, 0.10]
    print(f"\n4. Thompson sampling, arms {means}, mean of 20 seeds")
    print("   rounds    regret   per round   equal split's regret")
    for rounds in (1_000, 4_000, 16_000):
        runs = [simulate_thompson(means, rounds, np.random.default_rng(s)) for s in range(20)]
        regret = float(np.mean([r.regret for r in runs]))
        uniform = fixed_split_cost(runs[0].log, arm_means=means).uniform_regret
        print(f"   {rounds:>6,}   {regret:7.1f}   {regret / rounds:9.4f}   {uniform:10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--through-store", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LABLEDGER_STORE"] = os.path.join(tmp, "store")
        os.environ["LABLEDGER_CAPTURE_CODE"] = "0"
        os.environ["LABLEDGER_COMPLETENESS"] = "off"
        vectorised(args.experiments)
        through_store(args.through_store)
        power(min(args.experiments, 500))
        srm(args.experiments)
        bandit()
    tolerance = 1.96 * math.sqrt(0.05 * 0.95 / args.experiments)
    print(f"\nalpha 0.05 ± binomial tolerance at {args.experiments:,} experiments: ±{tolerance:.1%}")


if __name__ == "__main__":
    main()
