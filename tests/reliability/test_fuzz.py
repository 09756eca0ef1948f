"""Bad input, fuzzed: every key, value, step and artifact name is stored and read back equal,
or refused with a typed error naming it; the store is never corrupted and nothing is written
outside it."""

from __future__ import annotations

import decimal
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labledger as ll
from labledger.errors import InvalidKeyError, InvalidValueError, LabledgerError, ParamConflictError

from .conftest import integrity

torch = pytest.importorskip("torch")

SETTINGS = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

tricky_keys = st.sampled_from(
    [
        "../x",
        "/abs/key",
        "a/b/c",
        "a\\b",
        "C:\\temp",
        ".",
        "..",
        "x" * 250,
        "x" * 251,
        " lead",
        "trail ",
        "tab\tkey",
        "nul\x00key",
        "line\u2028sep",
        "é/中文/🙂",
        "\u200bzero-width",
        "DROP TABLE runs; --",
        "'quoted\"",
        "lone\ud800surrogate",
        "\udfff",
    ]
)
keys = st.one_of(
    tricky_keys,
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from("/\\.:\x00\x1f\x7f\n\t é中🙂-_"), max_size=12),
)

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.sampled_from([0.0, -0.0, math.nan, -math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]),
)
numpy_scalars = st.one_of(
    st.floats(width=32, allow_nan=True).map(np.float32),
    st.floats(width=16, allow_nan=True).map(np.float16),
    st.floats(allow_nan=True).map(np.float64),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(np.int64),
    st.integers(min_value=0, max_value=2**64 - 1).map(np.uint64),
    st.booleans().map(np.bool_),
    st.floats(allow_nan=True).map(lambda v: np.array([v])),
    st.floats(allow_nan=True).map(lambda v: np.array([[v]])),
    st.lists(st.floats(), min_size=2, max_size=3).map(np.array),
    st.just(np.array([])),
)
tensors = st.one_of(
    st.floats(width=32, allow_nan=True).map(lambda v: torch.tensor(v)),
    st.floats(width=32, allow_nan=True).map(lambda v: torch.tensor([v])),
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(lambda v: torch.tensor([[v]])),
    st.lists(st.floats(width=32), min_size=2, max_size=3).map(torch.tensor),
    st.booleans().map(lambda v: torch.tensor(v)),
)
others = st.one_of(
    st.text(max_size=5),
    st.binary(max_size=5),
    st.none(),
    st.booleans(),
    st.complex_numbers(max_magnitude=10),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.fractions(max_denominator=100),
    st.lists(st.floats(), max_size=2),
    st.just(decimal.Decimal("NaN")),
)
values = st.one_of(numbers, numpy_scalars, tensors, others)
steps = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([-1, 0, 2**62 - 1, 2**62, -(2**62), -(2**62) - 1, 2**63]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(np.int64),
    st.sampled_from([True, 1.0, 1.5, "3", np.float64(2.0)]),
)
artifact_names = st.one_of(
    st.sampled_from(
        [
            "../../etc/passwd",
            "/etc/passwd",
            "..",
            ".",
            "a/../../b",
            "dir/../../../escape.txt",
            "nul\x00byte",
            "C:\\Windows\\evil.txt",
            "..\\..\\evil.txt",
            "\\\\server\\share\\x",
            "~/.bashrc",
            "dir/sub/file.txt",
            "",
            " ",
        ]
    ),
    st.text(max_size=40),
)


def _expected_float(value: object) -> float | None:
    """What the store must hold for ``value``, or None when it must be refused."""
    if isinstance(value, bool | np.bool_ | str | bytes | complex | list) or value is None:
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool:
            return None
        return float(value.item())
    if isinstance(value, np.ndarray):
        return float(value.item()) if value.size == 1 else None
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return struct.pack("<d", a) == struct.pack("<d", b)  # -0.0 keeps its sign


def _outside_snapshot(root: Path, store: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath).resolve() == store.resolve():
            dirnames[:] = []
            continue
        out.update(os.path.join(dirpath, n) for n in dirnames + filenames)
    return out


def _assert_store_intact(store_path: Path, run: ll.Run) -> None:
    run.end()
    assert integrity(store_path / "labledger.db") == "ok"
    view = ll.get_run(run.id)
    assert view.status == "finished"
    view.metrics, view.params, view.artifacts  # noqa: B018 - everything reads back


@pytest.mark.timeout(120)
def test_metric_keys_are_stored_or_refused_by_name(run, store_path):
    @SETTINGS
    @given(key=keys)
    def check(key: str) -> None:
        try:
            run.log_metric(key, 1.5, step=3)
        except InvalidKeyError as e:
            assert repr(key)[:40].rstrip("'") in str(e) or "..." in str(e)
            return
        run.flush()
        summary = ll.get_run(run.id).summary
        assert summary[key]["last"] == 1.5 and summary[key]["last_step"] == 3

    check()
    _assert_store_intact(store_path, run)


@pytest.mark.timeout(120)
def test_metric_values_are_stored_exactly_or_refused_with_a_typed_error(run, store_path):
    counter = iter(range(10**9))

    @SETTINGS
    @given(value=values)
    def check(value: object) -> None:
        key = f"v{next(counter)}"
        expected = _expected_float(value)
        try:
            run.log_metric(key, value, step=0)
        except InvalidValueError as e:
            assert expected is None, f"{value!r} was refused: {e}"
            assert e.key == key and key in str(e)
            return
        assert expected is not None, f"{value!r} ({type(value).__name__}) should have been refused"
        run.flush()
        stored = ll.get_run(run.id).metric(key)["value"].tolist()
        assert len(stored) == 1 and _same(stored[0], expected), (value, stored, expected)

    check()
    _assert_store_intact(store_path, run)


@pytest.mark.timeout(120)
def test_steps_negative_unordered_and_huge_are_stored_or_refused(run, store_path):
    counter = iter(range(10**9))

    @SETTINGS
    @given(step=steps)
    def check(step: object) -> None:
        key = f"s{next(counter)}"
        integral = not isinstance(step, bool | float | str | np.floating)
        fits = integral and -(2**62) <= int(step) < 2**62  # type: ignore[call-overload]
        try:
            run.log_metric(key, 1.0, step=step)  # type: ignore[arg-type]
        except InvalidValueError as e:
            assert not fits, f"step {step!r} was refused: {e}"
            return
        assert fits, f"step {step!r} should have been refused"
        run.flush()
        assert ll.get_run(run.id).metric(key)["step"].tolist() == [int(step)]  # type: ignore[call-overload]

    check()
    for step in (5, 3, -7, 3, 2**61):  # non-monotonic and repeated steps keep their logging order
        run.log_metric("unordered", float(step), step=step)
    run.flush()
    assert ll.get_run(run.id).metric("unordered")["step"].tolist() == [5, 3, -7, 3, 2**61]
    _assert_store_intact(store_path, run)


@pytest.mark.timeout(120)
def test_param_keys_and_values_round_trip_or_are_refused(run, store_path):
    param_values = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=50),
        st.lists(st.one_of(st.integers(), st.text(max_size=5), st.floats()), max_size=4),
        st.floats(width=32).map(np.float32),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(np.int64),
        st.binary(max_size=4),
        st.complex_numbers(max_magnitude=2),
    )

    @SETTINGS
    @given(key=keys, value=param_values)
    def check(key: str, value: object) -> None:
        try:
            run.log_params({key: value})
        except (InvalidKeyError, InvalidValueError, ParamConflictError) as e:
            assert isinstance(e, LabledgerError)
            if isinstance(e, InvalidValueError):
                assert isinstance(value, bytes | complex)
            return
        stored = ll.get_run(run.id).params[key]
        expected = value.item() if isinstance(value, np.generic) else value
        if isinstance(expected, float):
            assert isinstance(stored, float) and _same(stored, expected)
        elif isinstance(expected, list):
            assert len(stored) == len(expected)
            for s, x in zip(stored, expected, strict=True):
                assert _same(s, x) if isinstance(x, float) else s == x and type(s) is type(x)
        else:
            assert stored == expected and type(stored) is type(expected)

    check()
    _assert_store_intact(store_path, run)


@pytest.mark.timeout(120)
def test_artifact_names_never_escape_the_store(run, store_path, tmp_path):
    source = tmp_path / "source" / "model.bin"
    source.parent.mkdir()
    source.write_bytes(b"weights")
    ll.open_store(store_path)
    before = _outside_snapshot(tmp_path, store_path)
    passwd = Path("/etc/passwd")
    passwd_state = passwd.stat().st_mtime_ns if passwd.exists() else None

    @SETTINGS
    @given(name=artifact_names)
    def check(name: str) -> None:
        try:
            record = run.log_artifact(source, kind="model", name=name)
        except InvalidKeyError as e:
            assert "artifact name" in str(e)
            return
        stored = Path(record.local_path).resolve()
        assert stored.is_relative_to(store_path.resolve())
        view = ll.get_run(run.id).artifact(name)
        with view.open() as f:
            assert f.read() == b"weights"

    check()
    assert _outside_snapshot(tmp_path, store_path) == before, "nothing is written outside the store"
    assert (passwd.stat().st_mtime_ns if passwd.exists() else None) == passwd_state
    _assert_store_intact(store_path, run)


@pytest.mark.timeout(30)
def test_dict_api_refuses_the_whole_call_when_one_value_is_bad(run, store_path):
    with pytest.raises(InvalidValueError, match="'bad'"):
        run.log_metrics({"good": 1.0, "bad": "x", "also_good": 2.0}, step=0)
    with pytest.raises(InvalidKeyError):
        run.log_metrics({"good": 1.0, "bad\x00key": 2.0}, step=1)
    run.flush()
    assert ll.get_run(run.id).summary == {}
    _assert_store_intact(store_path, run)


@pytest.mark.timeout(30)
def test_a_key_with_an_unpaired_surrogate_is_refused_and_loses_no_other_point(run, store_path):
    run.log_metric("fine", 1.0, step=0)
    with pytest.raises(InvalidKeyError, match="surrogate"):
        run.log_metric("bad\ud800key", 2.0, step=0)
    run.flush()
    assert ll.get_run(run.id).summary["fine"]["last"] == 1.0
    with pytest.raises(InvalidKeyError):
        run.log_params({"p\udfff": 1})
    with pytest.raises(InvalidValueError):
        run.set_tags({"tag": "value\ud800"})
    _assert_store_intact(store_path, run)
