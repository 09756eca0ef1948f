"""Each integration warns once, through the toolkit, when the installed framework is outside the
versions whose internals it was checked with (README "Supported versions")."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable

import pytest

from labledger.integrations.base import IntegrationWarning


def _sklearn() -> tuple[str, object, Callable[[], object]]:
    sklearn = pytest.importorskip("sklearn")
    llsk = importlib.import_module("labledger.integrations.sklearn")

    def use() -> object:
        return llsk.autolog(disable=False).__exit__(None, None, None)  # on, then off again

    return "sklearn", sklearn, use


def _xgboost() -> tuple[str, object, Callable[[], object]]:
    xgb = pytest.importorskip("xgboost")
    return "xgboost", xgb, importlib.import_module("labledger.integrations.xgboost").LedgerCallback


def _keras() -> tuple[str, object, Callable[[], object]]:
    keras = pytest.importorskip("keras")
    return "keras", keras, importlib.import_module("labledger.integrations.keras").LedgerCallback


def _lightning() -> tuple[str, object, Callable[[], object]]:
    pytest.importorskip("lightning")
    pl = importlib.import_module("lightning.pytorch")
    return "lightning", pl, importlib.import_module("labledger.integrations.lightning").LedgerLogger


FRAMEWORKS = {"sklearn": _sklearn, "xgboost": _xgboost, "keras": _keras, "lightning": _lightning}
#: A version below and one above the tested range of each framework.
OUTSIDE = {
    "sklearn": ("1.2.2", "1.10.0"),
    "xgboost": ("1.7.6", "3.3.0"),
    "keras": ("2.15.0", "3.16.0"),
    "lightning": ("2.0.9", "2.7.0"),
}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_the_installed_version_is_in_the_tested_range(framework: str):
    _, _, use = FRAMEWORKS[framework]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", IntegrationWarning)
        use()


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize("side", [0, 1], ids=["older", "newer"])
def test_a_version_outside_the_tested_range_is_warned_about_once(framework: str, side: int, monkeypatch):
    integration, module, use = FRAMEWORKS[framework]()
    version = OUTSIDE[framework][side]
    monkeypatch.setattr(module, "__version__", version)
    with pytest.warns(IntegrationWarning) as seen:
        use()
        use()
    assert len(seen) == 1
    warning = seen[0].message
    assert warning.integration == integration and warning.error is None
    assert f"{version} is installed" in str(warning) and "internals" in str(warning)
