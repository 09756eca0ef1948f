"""scikit-learn's plugin hooks, loaded through the ``labledger`` entry point (never imports sklearn)."""

from __future__ import annotations

from labledger import hookimpl
from labledger.integrations.base import imported_versions

#: How the scikit-learn integration's params count in the completeness report: the estimator's
#: params (``estimator/...``, ``max_iter`` and ``n_estimators`` included) and the chosen ones
#: (``best/...``) are hyperparameters; how the search, the folds and the evaluation ran is configuration.
PARAM_ROLES: dict[str, str] = {
    "estimator/": "hyperparameter",
    "best/": "hyperparameter",
    **dict.fromkeys(
        ("estimator/n_jobs", "estimator/verbose", "estimator/random_state", "estimator/warm_start"),
        "configuration",
    ),
    **dict.fromkeys(("search/", "cv/", "halving/", "candidate/", "evaluation/"), "configuration"),
}


@hookimpl
def labledger_collect_environment() -> dict[str, str | None] | None:
    return imported_versions("sklearn", "scipy", "numpy", "joblib")


@hookimpl
def labledger_param_roles() -> dict[str, str] | None:
    """``estimator/*`` and ``best/*`` are hyperparameters; ``search/*``, ``cv/*``, ``halving/*``,
    ``candidate/*`` and ``evaluation/*`` are training configuration."""
    return dict(PARAM_ROLES)
