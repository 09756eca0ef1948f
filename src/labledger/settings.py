"""Every ``LABLEDGER_*`` environment setting in one place: type, default, allowed values, meaning.

Settings are read when they are used, so a change to the environment takes
effect at the next use. An empty value counts as unset. A value that cannot be
used raises :class:`~labledger.errors.SettingsError` naming the variable, its
value and what is allowed; :func:`check` validates them all at once
(:func:`labledger.start_run` and the ``labledger`` command call it first).

>>> from labledger import settings
>>> settings.flush_interval()          # LABLEDGER_FLUSH_INTERVAL, default 1 second
1.0
>>> settings.SETTINGS["LABLEDGER_DIFF_CAP"].allowed
'a whole number of bytes from 0 to 2**40'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from labledger.errors import SettingsError
from labledger.settings_parsers import (
    byte_count as _bytes,
)
from labledger.settings_parsers import (
    choice as _choice,
)
from labledger.settings_parsers import (
    flag as _flag,
)
from labledger.settings_parsers import (
    path as _path,
)
from labledger.settings_parsers import (
    plugin_names as _plugins,
)
from labledger.settings_parsers import (
    run_id as _run_id,
)
from labledger.settings_parsers import (
    run_ref as _run_ref,
)
from labledger.settings_parsers import (
    seconds as _seconds,
)
from labledger.settings_parsers import (
    token as _token,
)

__all__ = [
    "SETTINGS",
    "Setting",
    "artifacts",
    "cache",
    "capture_code",
    "capture_ttl",
    "check",
    "completeness",
    "connect_timeout",
    "diff_cap",
    "disabled_plugins",
    "end_timeout",
    "experiment",
    "experiment_pattern",
    "flush_interval",
    "get",
    "heartbeat_timeout",
    "reproduction_of",
    "spool_max",
    "store",
    "testing",
    "token",
    "trace_plugins",
]

DEFAULT_EXPERIMENT_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"


class _Invalid(Exception):
    """Raised by a parser whose message replaces the setting's ``allowed`` text."""


class Setting:
    """One environment setting: how to read it and what to say when it is wrong (read-only)."""

    __slots__ = ("allowed", "default", "doc", "kind", "name", "parse", "shown_default")
    name: str
    kind: str  # what the table shows: seconds, bytes, flag, path, ...
    default: Any  # the parsed value when unset
    shown_default: str  # the default as the README shows it
    allowed: str  # what a valid value looks like (used in the error)
    doc: str  # one line: what it changes
    parse: Callable[[str], Any]

    def __init__(
        self,
        name: str,
        kind: str,
        default: Any,
        shown_default: str,
        allowed: str,
        doc: str,
        parse: Callable[[str], Any],
    ) -> None:
        for field, value in (
            ("name", name),
            ("kind", kind),
            ("default", default),
            ("shown_default", shown_default),
            ("allowed", allowed),
            ("doc", doc),
            ("parse", parse),
        ):
            object.__setattr__(self, field, value)

    def __setattr__(self, name: str, value: Any) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __repr__(self) -> str:
        return f"Setting(name={self.name!r}, kind={self.kind!r}, default={self.default!r})"


def _experiment(raw: str) -> str:
    import re

    pattern = experiment_pattern(lenient=True)
    if not re.fullmatch(pattern, raw):
        raise _Invalid(f"an experiment name matching {pattern!r} (LABLEDGER_EXPERIMENT_PATTERN)")
    return raw


def _pattern(raw: str) -> str:
    import re

    try:
        re.compile(raw)
    except re.error as e:
        raise _Invalid(f"a Python regular expression ({e})") from None
    return raw


# fmt: off
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting(
            "LABLEDGER_STORE", "path", "", "./.labledger", "a folder, or a postgresql:// or https:// URI",
            "the store when `store=` / `--store` is not given", _path,
        ),
        Setting(
            "LABLEDGER_EXPERIMENT_PATTERN", "regex", DEFAULT_EXPERIMENT_PATTERN,
            DEFAULT_EXPERIMENT_PATTERN, "a Python regular expression",
            "naming convention every experiment name must match", _pattern,
        ),
        Setting(
            "LABLEDGER_EXPERIMENT", "name", "default", "default", "an experiment name",
            "experiment of runs started without one (and of `autolog()`)", _experiment,
        ),
        Setting(
            "LABLEDGER_FLUSH_INTERVAL", "seconds", 1.0, "1", "a number of seconds from 0.01 to 3600",
            "how often the background writer stores buffered metrics", _seconds(0.01, 3600.0),
        ),
        Setting(
            "LABLEDGER_HEARTBEAT_TIMEOUT", "seconds", 60.0, "60",
            "a number of seconds from 1 to 31536000",
            "silence after which a run of another host counts as crashed", _seconds(1.0, 31_536_000.0),
        ),
        Setting(
            "LABLEDGER_COMPLETENESS", "choice", None, "`completeness` in pyproject.toml, else warn",
            "one of warn, strict, off", "completeness policy (see Lineage)", _choice("warn", "strict", "off"),
        ),
        Setting(
            "LABLEDGER_CAPTURE_CODE", "flag", True, "1", "1, true, yes, on or 0, false, no, off",
            "record git state and the uncommitted diff at run start", _flag,
        ),
        Setting(
            "LABLEDGER_CAPTURE_TTL", "seconds", 2.0, "2", "a number of seconds from 0 to 86400",
            "reuse a code capture this young for the next run of the process", _seconds(0.0, 86_400.0),
        ),
        Setting(
            "LABLEDGER_DIFF_CAP", "bytes", 1 << 20, "1048576", "a whole number of bytes from 0 to 2**40",
            "bytes of the uncommitted diff kept as the `code` artifact", _bytes,
        ),
        Setting(
            "LABLEDGER_REPRODUCTION_OF", "run id", None, "unset",
            "a run id (letters, digits, '-' and '_', at most 64)",
            "links the next top-level run to the run it reproduces (set by `labledger verify`)", _run_id,
        ),
        Setting(
            "LABLEDGER_FOLLOWS", "run", None, "unset", "a run id, unique id prefix or experiment/name",
            "top-level runs started without `follows=` follow this run (see `labledger journal`)", _run_ref,
        ),
        Setting(
            "LABLEDGER_DISABLE_PLUGINS", "names", (), "unset", "comma-separated plugin names",
            "plugins (built-ins included) not to load", _plugins,
        ),
        Setting(
            "LABLEDGER_TRACE_PLUGINS", "flag", False, "0", "1, true, yes, on or 0, false, no, off",
            "print every hook call to standard error", _flag,
        ),
        Setting(
            "LABLEDGER_TESTING", "flag", False, "0", "1, true, yes, on or 0, false, no, off",
            "integrations raise their tracking errors instead of warning (for test suites)", _flag,
        ),
        Setting(
            "LABLEDGER_TOKEN", "token", "", "unset", "an API token (`labledger token create`)",
            "the API token sent to a labledger server (`LABLEDGER_STORE=https://...`)", _token,
        ),
        Setting(
            "LABLEDGER_CONNECT_TIMEOUT", "seconds", 30.0, "30", "a number of seconds from 0 to 86400",
            "how long a run's start waits for an unreachable server", _seconds(0.0, 86_400.0),
        ),
        Setting(
            "LABLEDGER_END_TIMEOUT", "seconds", 30.0, "30", "a number of seconds from 0 to 86400",
            "how long a run's end waits for spooled records to reach the server", _seconds(0.0, 86_400.0),
        ),
        Setting(
            "LABLEDGER_SPOOL_MAX", "bytes", 1 << 30, "1073741824", "a whole number of bytes from 0 to 2**40",
            "bytes of records a process spools on disk while the server is unreachable", _bytes,
        ),
        Setting(
            "LABLEDGER_SERVER_CONFIG", "JSON", "", "unset", "set by `labledger server` only",
            "the settings `labledger server` passes to its worker processes (internal)", _path,
        ),
        Setting(
            "LABLEDGER_ARTIFACTS", "location", "", "unset", "an s3://bucket/prefix URI or a folder",
            "where a PostgreSQL store keeps artifact bytes when its server.artifacts setting is unset", _path,
        ),
        Setting(
            "LABLEDGER_CACHE", "path", "", "`~/.cache/labledger`", "a folder path",
            "folder of the local caches and spools of server and database stores", _path,
        ),
    )
}
# fmt: on


def get(name: str, *, lenient: bool = False) -> Any:
    """The parsed value of setting ``name`` (its default when unset or empty).

    :param lenient: give the default instead of raising for a bad value (for
        background threads, which must not die of a setting changed mid-run).
    :raises SettingsError: the value cannot be used (unless ``lenient``).
    """
    setting = SETTINGS[name]
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return setting.default
    try:
        return setting.parse(raw.strip())
    except _Invalid as e:
        if lenient:
            return setting.default
        raise SettingsError(name, raw, str(e)) from None
    except (ValueError, OverflowError):
        if lenient:
            return setting.default
        raise SettingsError(name, raw, setting.allowed) from None


def check() -> None:
    """Validate every setting; raise :class:`SettingsError` for the first bad one.

    >>> settings.check()  # doctest: +SKIP
    """
    for name in SETTINGS:
        get(name)


def store() -> str:
    """``LABLEDGER_STORE`` (stripped), or ``""`` when unset: then the store is ``./.labledger``."""
    return str(get("LABLEDGER_STORE"))


def experiment() -> str:
    return str(get("LABLEDGER_EXPERIMENT"))


def experiment_pattern(*, lenient: bool = False) -> str:
    return str(get("LABLEDGER_EXPERIMENT_PATTERN", lenient=lenient))


def flush_interval(*, lenient: bool = False) -> float:
    return float(get("LABLEDGER_FLUSH_INTERVAL", lenient=lenient))


def heartbeat_timeout(*, lenient: bool = False) -> float:
    return float(get("LABLEDGER_HEARTBEAT_TIMEOUT", lenient=lenient))


def _text(name: str) -> str | None:
    value = get(name)
    return None if value is None else str(value)


def completeness() -> str | None:
    """``warn``, ``strict``, ``off``, or ``None`` when unset (then ``pyproject.toml`` decides)."""
    return _text("LABLEDGER_COMPLETENESS")


def capture_code(*, lenient: bool = False) -> bool:
    return bool(get("LABLEDGER_CAPTURE_CODE", lenient=lenient))


def capture_ttl(*, lenient: bool = False) -> float:
    return float(get("LABLEDGER_CAPTURE_TTL", lenient=lenient))


def diff_cap(*, lenient: bool = False) -> int:
    return int(get("LABLEDGER_DIFF_CAP", lenient=lenient))


def reproduction_of() -> str | None:
    return _text("LABLEDGER_REPRODUCTION_OF")


def follows() -> str | None:
    return _text("LABLEDGER_FOLLOWS")


def disabled_plugins() -> list[str]:
    return list(get("LABLEDGER_DISABLE_PLUGINS"))


def trace_plugins() -> bool:
    """``LABLEDGER_TRACE_PLUGINS``; a bad value counts as off here (:func:`check` reports it)."""
    return bool(get("LABLEDGER_TRACE_PLUGINS", lenient=True))


def testing() -> bool:
    """``LABLEDGER_TESTING``: an integration's tracking error raises instead of becoming a warning.

    Off by default, so that tracking never breaks training; a test suite turns it on to see
    every error an integration would otherwise report once and go past. A bad value counts
    as off here (:func:`check` reports it).
    """
    return bool(get("LABLEDGER_TESTING", lenient=True))


def token() -> str | None:
    """``LABLEDGER_TOKEN``: the API token sent to a labledger server, or ``None`` when unset."""
    return str(get("LABLEDGER_TOKEN")) or None


def connect_timeout(*, lenient: bool = False) -> float:
    return float(get("LABLEDGER_CONNECT_TIMEOUT", lenient=lenient))


def end_timeout(*, lenient: bool = False) -> float:
    return float(get("LABLEDGER_END_TIMEOUT", lenient=lenient))


def spool_max(*, lenient: bool = False) -> int:
    return int(get("LABLEDGER_SPOOL_MAX", lenient=lenient))


def cache() -> str:
    """``LABLEDGER_CACHE`` (stripped), or ``""`` when unset: then caches go under ``~/.cache/labledger``."""
    return str(get("LABLEDGER_CACHE", lenient=True))


def artifacts() -> str | None:
    """``LABLEDGER_ARTIFACTS``: where a PostgreSQL store keeps artifact bytes, or ``None`` when unset."""
    return str(get("LABLEDGER_ARTIFACTS")).strip() or None
