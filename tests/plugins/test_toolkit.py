"""The integration toolkit, ``labledger.integrations.base``: run binding, safe tracking, plain values."""

from __future__ import annotations

import enum
import functools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import labledger as ll
from labledger import settings
from labledger.integrations import base
from labledger.integrations.base import IntegrationWarning, RunBinding, final_status, plain, safe


@pytest.fixture
def warning_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """What users get: tracking errors become warnings (the test suite raises them otherwise)."""
    monkeypatch.setenv("LABLEDGER_TESTING", "0")


def _fail(error: Exception) -> None:
    raise error


# -- safe -------------------------------------------------------------------------------------------


def test_a_tracking_error_is_one_warning_per_integration(warning_mode):
    with pytest.warns(IntegrationWarning) as seen:
        for what in ("the params", "the model"):
            with safe("mytrainer", what):
                _fail(OSError("disk full"))
        with safe("other", "the metrics"):
            _fail(ValueError("bad"))
    assert [(w.message.integration, w.message.what) for w in seen] == [
        ("mytrainer", "the params"),
        ("other", "the metrics"),
    ]
    message = str(seen[0].message)
    assert "'mytrainer' could not record the params (OSError: disk full)" in message
    assert "training went on" in message and "LABLEDGER_TESTING=1" in message
    assert isinstance(seen[0].message, ll.plugins.LabledgerWarning)
    assert isinstance(seen[0].message.error, OSError)


def test_reset_warnings_lets_an_integration_warn_again(warning_mode):
    with pytest.warns(IntegrationWarning), safe("mytrainer", "the params"):
        _fail(OSError("one"))
    base.reset_warnings("mytrainer")
    with pytest.warns(IntegrationWarning, match="two"), safe("mytrainer", "the params"):
        _fail(OSError("two"))


def test_safe_as_a_decorator_gives_none_on_failure(warning_mode):
    @safe("mytrainer", "the model")
    def store(ok: bool) -> str:
        """Store it."""
        if not ok:
            raise OSError("no room")
        return "stored"

    assert store(True) == "stored" and store.__doc__ == "Store it."
    with pytest.warns(IntegrationWarning, match="could not record the model"):
        assert store(False) is None


def test_an_interruption_passes_through_safe(warning_mode):
    with pytest.raises(KeyboardInterrupt), safe("mytrainer", "the params"):
        raise KeyboardInterrupt
    with pytest.raises(SystemExit), safe("mytrainer", "the params"):
        raise SystemExit(1)


def test_in_testing_mode_the_error_itself_raises_with_a_note():
    assert settings.testing()  # tests/conftest.py turns it on for the whole suite
    error = OSError("disk full")
    with pytest.raises(OSError) as caught, safe("mytrainer", "the params"):
        raise error
    assert caught.value is error
    assert "LABLEDGER_TESTING" in caught.value.__notes__[0] and "the params" in caught.value.__notes__[0]
    with pytest.raises(OSError):
        base.report_failure("mytrainer", "the model", OSError("caught by the caller"))


def test_when_warnings_are_errors_the_report_goes_to_standard_error(warning_mode, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with safe("mytrainer", "the params"):
            _fail(OSError("disk full"))
    assert "labledger integration 'mytrainer' could not record the params" in capsys.readouterr().err


def test_the_testing_setting_is_a_validated_flag(monkeypatch):
    monkeypatch.setenv("LABLEDGER_TESTING", "yes")
    assert settings.testing()
    monkeypatch.setenv("LABLEDGER_TESTING", "0")
    assert not settings.testing()
    monkeypatch.setenv("LABLEDGER_TESTING", "maybe")
    assert not settings.testing()  # lenient where it is read ...
    with pytest.raises(ll.errors.SettingsError, match="LABLEDGER_TESTING"):
        settings.check()  # ... and reported by the check every run start makes
    assert settings.SETTINGS["LABLEDGER_TESTING"].doc


# -- the run binding --------------------------------------------------------------------------------


def test_a_binding_starts_a_run_of_its_own_that_is_never_active_and_ends_it():
    binding = RunBinding(integration="mytrainer", origin="mytrainer.track", experiment="own", hypothesis="h")
    assert binding.resolved is None and binding.start_run_kwargs == {"experiment": "own", "hypothesis": "h"}
    assert binding.call(lambda run: run.log_params({"lr": 0.1}) or run.id, "the params") is not None
    run = binding.resolved
    assert run is not None and binding.owned and ll.active_run() is None
    binding.end()
    view = ll.get_run(run.id)
    assert view.status == "finished" and view.source["origin"] == "mytrainer.track"
    assert view.params == {"lr": 0.1} and view.hypothesis == "h"
    again = binding.renewed()
    assert again.resolved is None and again.start_run_kwargs == binding.start_run_kwargs


def test_a_binding_uses_the_given_or_active_run_and_never_ends_it():
    with ll.start_run("mine") as active:
        inside = RunBinding(integration="mytrainer", origin="mytrainer.track")
        assert inside.get() is active and not inside.owned
        inside.end(ValueError("stopped"))
        assert not active.ended
    given = ll.start_run("given")
    binding = RunBinding(given, integration="mytrainer", origin="mytrainer.track")
    assert binding.get() is given and not binding.owned
    binding.end()
    assert not given.ended


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (None, "finished"),
        (KeyboardInterrupt(), "killed"),
        (SystemExit(1), "killed"),
        (ValueError("x"), "failed"),
    ],
)
def test_the_status_a_run_of_its_own_ends_with(error, status):
    assert final_status(error) == status
    binding = RunBinding(integration="mytrainer", origin="mytrainer.track", experiment="statuses")
    run = binding.get()
    try:
        raise error if error is not None else RuntimeError
    except BaseException as raised:
        binding.end(raised if error is not None else None)
    view = ll.get_run(run.id)
    assert view.status == status
    assert (view.error is None) == (error is None)
    if error is not None:
        assert type(error).__name__ in view.error  # the traceback


def test_a_binding_checks_its_arguments_when_made():
    with pytest.raises(TypeError, match="hypotesis"):
        RunBinding(integration="mytrainer", origin="mytrainer.track", hypotesis="typo")
    with pytest.raises(TypeError, match="activate"):
        RunBinding(integration="mytrainer", origin="mytrainer.track", activate=True)
    with ll.start_run("given") as run, pytest.raises(ll.errors.InvalidValueError, match=r"ll\.start_run"):
        RunBinding(run, integration="mytrainer", origin="mytrainer.track", name="ignored")
    with pytest.raises(ll.errors.InvalidValueError, match="dotted name"):
        RunBinding(integration="mytrainer", origin="not a name")


def test_a_run_that_cannot_start_is_reported(warning_mode):
    binding = RunBinding(integration="mytrainer", origin="mytrainer.track", experiment="Not Valid!")
    with pytest.warns(IntegrationWarning, match="InvalidExperimentNameError"):
        assert binding.call(lambda run: run.id, "the params") is None
    binding.end()  # nothing to end


# -- plain values -----------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = object()


def test_plain_keeps_numbers_and_nan_as_floats():
    assert math.isnan(plain(float("nan")))  # one rule: NaN stays a float NaN
    assert math.isnan(plain(np.float32("nan"))) and type(plain(np.float32("nan"))) is float
    assert plain({"x": [np.inf, np.int64(3), np.bool_(True)]}) == {"x": [math.inf, 3, True]}
    assert type(plain(np.float64(0.5))) is float and type(plain(np.int64(2))) is int


def test_plain_describes_objects_without_addresses():
    assert plain(Color.RED) == "red" and plain(Color.BLUE) == "BLUE"
    assert plain({3, 1, 2}) == [1, 2, 3]
    assert plain(Path("/data/x.csv")) == "/data/x.csv"
    assert plain(np.arange(3)) == [0, 1, 2] and plain(np.array([[7]])) == 7
    assert plain(np.zeros(5000)).startswith("[0. 0. 0.")  # large arrays: their short text
    assert plain(math.floor) == "math.floor" and plain(Path) == "pathlib.Path"
    assert plain(functools.partial(max, 1)) == "functools.partial(builtins.max, 1)"
    assert plain(np.random.RandomState(4)) == "numpy.random.RandomState(4)"
    assert plain(object()) == "builtins.object"
    assert "0x" not in str(plain([lambda: 0, object(), {1: object()}]))


def test_plain_asks_describe_first_at_any_depth():
    def describe(value: object) -> str | None:
        return "known" if isinstance(value, Color) else None

    assert plain({"a": [Color.BLUE]}, describe=describe) == {"a": ["known"]}


def test_qualified_name():
    assert base.qualified_name(Path("x")) in ("pathlib.PosixPath", "pathlib.WindowsPath")
    assert base.qualified_name(Path) == "pathlib.Path"
    assert base.qualified_name(functools.reduce) == "_functools.reduce"
    assert base.qualified_name(Path("x").exists) == "pathlib.Path.exists"

    class Local:
        pass

    Local.__module__ = "__mp_main__"  # as in a spawned worker
    assert base.qualified_name(Local()).startswith("__main__.")


def test_scalars_keeps_one_number_per_key():
    values = base.scalars({"loss": np.float32(0.25), "acc": 1, "ok": True, "name": "x", "v": np.ones(2)})
    assert values == {"loss": 0.25, "acc": 1.0}


# -- versions, environment, folds -------------------------------------------------------------------


def test_check_version_warns_once_outside_the_tested_range(warning_mode):
    assert base.check_version("mytrainer", "torch", "2.13.1", oldest="2.0", latest="2.13")
    assert base.check_version("mytrainer", "torch", None, oldest="2.0", latest="2.13")
    with pytest.warns(
        IntegrationWarning, match=r"tested with torch 2\.0 to 2\.13; 2\.14\.0 is installed"
    ) as seen:
        assert not base.check_version("mytrainer", "torch", "2.14.0", oldest="2.0", latest="2.13")
        assert not base.check_version("mytrainer", "torch", "1.9", oldest="2.0", latest="2.13")
    assert len(seen) == 1 and "pip install 'torch>=2.0,<2.14'" in str(seen[0].message)
    # the version warning does not use up the error warning
    with pytest.warns(IntegrationWarning), safe("mytrainer", "the params"):
        _fail(OSError("disk full"))


def test_imported_versions_never_imports():
    assert base.imported_versions("numpy") == {"numpy": np.__version__}
    assert base.imported_versions("surely_not_imported_module") is None


def test_cv_design_params():
    params = base.cv_design_params(splits=[([0, 1, 2], [3]), ([0, 1, 3], [2])])
    assert params["cv/n_splits"] == 2 and params["cv/n_test"] == 1.0
