"""The toolkit every integration is built with: the built-in four, and yours.

An integration translates a framework's events into calls on one
:class:`labledger.Run`. This module holds what every integration needs besides
the public ``labledger`` API:

- :class:`RunBinding` — which run to record into (the one given, else the
  user's active run, else one of its own that it starts and ends), and
  :func:`final_status`, the one rule for how a run ends after an exception;
- :class:`safe` — tracking errors never break training: each becomes one
  :class:`IntegrationWarning` per integration (with ``LABLEDGER_TESTING=1`` they
  raise, so a test suite sees them); :func:`report_failure` for an error already caught;
- :func:`plain`, :func:`qualified_name`, :func:`scalars` — framework objects as
  param values, class names and metric values;
- :func:`cv_design_params` — the ``cv/*`` params of a cross-validated run;
  :func:`current_fit` — inside a tracked scikit-learn search, the candidate's fit a
  training loop records its curves into (:class:`FitCurves`, :func:`capturing_fit`);
- :func:`from_outputs` — a network's outputs as predictions for ``run.log_predictions``
  (:func:`check_data`, :func:`slicing_features`, :func:`frame_ids`, and
  :func:`unchanged_randomness` so predicting for the record draws nothing the program sees);
- :func:`check_version` — warn once when the installed framework is outside the
  versions an integration was tested with; :func:`imported_versions` for an
  environment hook.

A whole integration for a plain training loop::

    import labledger as ll
    from labledger.integrations.base import RunBinding, plain, qualified_name, safe, scalars


    class Tracker:
        def __init__(self, model, run=None, **start_run_kwargs):
            self.model = model
            self.binding = RunBinding(run, integration="mytrainer", origin="mytrainer.Tracker",
                                      **start_run_kwargs)

        def begin(self, hyperparameters):
            params = {"model/class": qualified_name(self.model), **plain(hyperparameters)}
            self.binding.call(lambda run: run.log_params(params), "the params")

        def step(self, step, **metrics):
            values = scalars(metrics)
            self.binding.call(lambda run: run.log_metrics(values, step=step), "the step's metrics")

        def end(self, error=None):
            self.binding.end(error)  # finished, failed or killed; only a run it started is ended

Register a hook module (no framework imports there) under the ``labledger``
entry-point group to add to each run's environment or to declare how your
params count (see "Plugins").
"""

from __future__ import annotations

from labledger.integrations._binding import RunBinding, error_text, final_status
from labledger.integrations._capture import FitCurves, capturing_fit, current_fit
from labledger.integrations._environment import imported_versions
from labledger.integrations._folds import cv_design_params
from labledger.integrations._predictions import (
    Outputs,
    check_data,
    frame_ids,
    from_outputs,
    slicing_features,
    unchanged_randomness,
)
from labledger.integrations._safety import (
    IntegrationWarning,
    check_version,
    report_failure,
    reset_warnings,
    safe,
)
from labledger.integrations._values import Plain, plain, qualified_name, scalars

__all__ = [
    "FitCurves",
    "IntegrationWarning",
    "Outputs",
    "Plain",
    "RunBinding",
    "capturing_fit",
    "check_data",
    "check_version",
    "current_fit",
    "cv_design_params",
    "error_text",
    "final_status",
    "frame_ids",
    "from_outputs",
    "imported_versions",
    "plain",
    "qualified_name",
    "report_failure",
    "reset_warnings",
    "safe",
    "scalars",
    "slicing_features",
    "unchanged_randomness",
]
