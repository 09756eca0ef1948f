"""Errors of a labledger server as a store, and the server's error answers as labledger errors.

An answer ``{"error": message, "kind": "ParamConflictError", ...fields}`` is raised as the
labledger error of that name, with the server's message and fields (:func:`error_from_answer`);
an answer naming no known error is a :class:`RemoteError`.

>>> e = error_from_answer("https://ledger.example.com", 409, b'{"error": "no", "kind": "RunFinishedError"}')
>>> type(e).__name__, str(e)
('RunFinishedError', 'no')
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from labledger.errors import LabledgerError, StoreError

__all__ = [
    "RemoteError",
    "ServerUnreachableError",
    "SpoolFullError",
    "TokenRefusedError",
    "WriteRefusedError",
    "error_from_answer",
]

#: Modules whose exception classes an answer's ``kind`` may name.
_ERROR_MODULES = (
    "labledger.errors",
    "labledger.store.backend",
    "labledger.store.objects.errors",
    "labledger.store.objects.cached",
    "labledger.store.remote.wire",
    "labledger.store.remote.errors",
    "labledger.query.filters",
)


class RemoteError(StoreError):
    """A labledger server answered a call with an error; ``status`` is the HTTP status."""

    def __init__(self, url: str, problem: str, status: int = 0) -> None:
        self.status = status
        super().__init__(url, problem)


class ServerUnreachableError(RemoteError):
    """The server did not answer (refused, timed out, dropped) or answered 5xx, retries included."""

    def __init__(self, url: str, detail: str, status: int = 0) -> None:
        self.detail = detail
        super().__init__(
            url,
            f"the labledger server cannot be reached ({detail}). Check that `labledger server` runs "
            "there and that LABLEDGER_STORE names it",
            status,
        )


class TokenRefusedError(RemoteError):
    """The server refused the API token (401)."""

    def __init__(self, url: str, message: str, token_set: bool) -> None:
        if token_set:
            hint = "LABLEDGER_TOKEN holds a token the server does not accept (unknown, revoked or expired)"
        else:
            hint = "LABLEDGER_TOKEN is not set"
        super().__init__(
            url,
            f"the server refused the request: {message}. {hint}: set LABLEDGER_TOKEN to a valid API "
            "token (an administrator creates one with `labledger token create`)",
            401,
        )


class WriteRefusedError(LabledgerError):
    """The server refused a run's record for a reason that will not change on retry (4xx);
    it is not sent again. ``error`` is the server's error."""

    def __init__(self, url: str, method: str, error: BaseException) -> None:
        self.url = url
        self.method = method
        self.error = error
        super().__init__(f"labledger server {url} refused {method}: {error}")


class SpoolFullError(StoreError):
    """The on-disk spool of records for an unreachable server holds its maximum (``LABLEDGER_SPOOL_MAX``)."""

    def __init__(self, folder: str, limit: int) -> None:
        self.limit = limit
        super().__init__(
            folder,
            f"the spool of records for the unreachable server is full ({limit:,} bytes, "
            "LABLEDGER_SPOOL_MAX): new records wait in memory until the server is back. "
            "Bring the server back, or raise LABLEDGER_SPOOL_MAX",
        )


def _error_class(kind: object) -> type[Exception] | None:
    if not isinstance(kind, str) or not kind.isidentifier():
        return None
    for name in _ERROR_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - optional parts
            continue
        cls = getattr(module, kind, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls
    return None


def error_from_answer(url: str, status: int, body: bytes, token_set: bool = True) -> Exception:
    """The labledger error a 4xx answer stands for (a 401: :class:`TokenRefusedError`).

    :param url: the server, as errors name it.
    :param body: the answer's JSON ``{"error": ..., "kind": ..., fields...}`` (anything else is kept
        as the message).
    """
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {"error": body[:500].decode("utf-8", "replace").strip() or f"HTTP {status}"}
    message = str(data.get("error") or f"HTTP {status}")
    if status == 401:
        return TokenRefusedError(url, message, token_set)
    cls = _error_class(data.get("kind"))
    if cls is None:
        if status == 413:
            message += " (the request is larger than the server takes: its --max-body)"
        return RemoteError(url, f"{message} (HTTP {status})", status)
    error: Any = cls.__new__(cls)
    Exception.__init__(error, message)
    for field, value in data.items():
        if field not in ("error", "kind") and isinstance(field, str) and not field.startswith("_"):
            try:
                setattr(error, field, value)
            except (AttributeError, TypeError):
                continue
    if isinstance(error, StoreError):
        error.path = getattr(error, "path", None) or url
        error.problem = getattr(error, "problem", None) or message
    if cls.__name__ == "FilterTooLargeError":  # the query layer reads these
        error.column = getattr(error, "column", 0)
        error.problem = getattr(error, "problem", message)
    error.status = status
    return error
