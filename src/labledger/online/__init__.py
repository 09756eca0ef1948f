"""Online experiments — A/B tests, interleaving and bandits — analysed with the same care as
offline runs: sample ratio mismatch first, lifts with intervals, variance reduction (CUPED),
peeking-safe sequential tests, power, interleaving preference tests and bandit regret.

The statistics work on aggregates (counts, or n / sum / sum of squares per variant), so
production traffic is summarised, never stored per event. SciPy and statsmodels
(``pip install "labledger[online]"``) are imported when a function needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labledger.online.abtest import (
        Covariate,
        Lift,
        Moments,
        SRMResult,
        holm,
        mean_lift,
        proportion_lift,
        srm_check,
    )
    from labledger.online.bandits import BanditLog, fixed_split_cost, ips, regret, simulate_thompson, snips
    from labledger.online.experiment import OnlineExperiment
    from labledger.online.interleaving import credit, interleave, preference_test
    from labledger.online.power import power_of, sample_size, sample_size_means
    from labledger.online.record import read_online
    from labledger.online.report import OnlineReport, online_report
    from labledger.online.sequential import looks_from_counts, looks_from_sums, msprt, tau2_from_mde
    from labledger.online.start import start_online

#: public name -> defining module, imported on first use so ``import labledger.online`` stays light
_LAZY = {
    **dict.fromkeys(
        ("Covariate", "Lift", "Moments", "SRMResult", "holm", "mean_lift", "proportion_lift", "srm_check"),
        "abtest",
    ),
    **dict.fromkeys(
        ("BanditLog", "fixed_split_cost", "ips", "regret", "simulate_thompson", "snips"), "bandits"
    ),
    "OnlineExperiment": "experiment",
    "start_online": "start",
    **dict.fromkeys(("credit", "interleave", "preference_test"), "interleaving"),
    **dict.fromkeys(("power_of", "sample_size", "sample_size_means"), "power"),
    "read_online": "record",
    **dict.fromkeys(("OnlineReport", "online_report"), "report"),
    **dict.fromkeys(("looks_from_counts", "looks_from_sums", "msprt", "tau2_from_mde"), "sequential"),
}
__all__ = [
    "BanditLog",
    "Covariate",
    "Lift",
    "Moments",
    "OnlineExperiment",
    "OnlineReport",
    "SRMResult",
    "credit",
    "fixed_split_cost",
    "holm",
    "interleave",
    "ips",
    "looks_from_counts",
    "looks_from_sums",
    "mean_lift",
    "msprt",
    "online_report",
    "power_of",
    "preference_test",
    "proportion_lift",
    "read_online",
    "regret",
    "sample_size",
    "sample_size_means",
    "simulate_thompson",
    "snips",
    "srm_check",
    "start_online",
    "tau2_from_mde",
]


def __getattr__(name: str) -> object:
    from importlib import import_module

    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labledger.online' has no attribute {name!r}")
    value = getattr(import_module(f"labledger.online.{module}"), name)
    globals()[name] = value
    return value
