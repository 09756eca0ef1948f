"""How the server's API answers what went wrong, and how it reads a bounded request body.

Every error answers JSON ``{"error": <message>, "kind": <error class name>, ...fields}`` with
the status :func:`status_of` gives; an unexpected one is logged with its traceback and answers
500 without it.

>>> status_of(RunFinishedError("0123abcd", "finished", "log params"))
409
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from labledger.errors import (
    ArtifactConflictError,
    FoldsConflictError,
    InvalidExperimentNameError,
    InvalidKeyError,
    InvalidValueError,
    LabledgerError,
    ParamConflictError,
    RunFinishedError,
    RunNotFoundError,
    StoreBusyError,
    StoreError,
)
from labledger.server.api_access import AccessError, RunIdTakenError

__all__ = ["BadRequestError", "BodyTooLargeError", "error_response", "read_body", "status_of"]

log = logging.getLogger("labledger.server")

_CONFLICTS = (
    RunFinishedError, ParamConflictError, FoldsConflictError, ArtifactConflictError, RunIdTakenError,
)  # fmt: skip
_BAD = (InvalidKeyError, InvalidValueError, InvalidExperimentNameError)


class BadRequestError(LabledgerError, ValueError):
    """A request the API cannot take (an unknown argument, a value of the wrong kind)."""

    status = 400


class BodyTooLargeError(LabledgerError):
    """A request body over the server's bound: ``limit`` bytes."""

    def __init__(self, limit: int, what: str = "request body") -> None:
        self.limit = limit
        super().__init__(
            f"the {what} is larger than this server takes ({limit:,} bytes): send less at once, "
            "or start the server with a larger bound (labledger server --max-body / --max-object)"
        )


def _unavailable(error: BaseException) -> bool:
    from labledger.store.objects.errors import ObjectStoreUnreachableError

    if isinstance(error, ObjectStoreUnreachableError | StoreBusyError):
        return True
    try:
        from labledger.store.postgres.errors import DatabaseConnectionError
    except ImportError:  # pragma: no cover - the module imports nothing heavy
        return False
    return isinstance(error, DatabaseConnectionError)


def _constraint(error: BaseException | None) -> bool:
    """Whether ``error`` is the embedded store's database refusing a write by its own rules."""
    kind = type(error)
    return kind.__name__ == "IntegrityError" and kind.__module__ == "sqlite3"


def status_of(error: BaseException) -> int:
    """The HTTP status an exception answers (see the server's API documentation)."""
    from labledger.query.filters import FilterSyntaxError
    from labledger.store.backend import FilterTooLargeError
    from labledger.store.objects.errors import InvalidDigestError, ObjectMissingError
    from labledger.store.remote.wire import WireFormatError

    if isinstance(error, BodyTooLargeError):
        return 413
    status = getattr(type(error), "status", None)
    if isinstance(error, AccessError | BadRequestError) and isinstance(status, int):
        return status
    if isinstance(error, RunNotFoundError | ObjectMissingError):
        return 404
    if isinstance(error, _CONFLICTS) or _constraint(error) or _constraint(error.__cause__):
        return 409  # refused by the store's own rules (an ended run, a changed param): retrying cannot help
    if isinstance(error, WireFormatError | BadRequestError | FilterSyntaxError | FilterTooLargeError):
        return 400
    if isinstance(error, (*_BAD, InvalidDigestError)):
        return 400
    if _unavailable(error):
        return 503
    return 500


def _jsonable(value: Any) -> bool:
    if isinstance(value, float) and not math.isfinite(value):
        return False
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _fields(error: BaseException) -> dict[str, Any]:
    """The error's public attributes that JSON can hold (``ParamConflictError.key``...)."""
    found = {}
    for name, value in vars(error).items():
        if not name.startswith("_") and name not in ("error", "kind", "args", "status") and _jsonable(value):
            found[name] = value
    return found


def error_response(error: BaseException) -> Response:
    """The answer to ``error``: its message and fields, or for an unexpected one, a reference to the log."""
    status = status_of(error)
    if status == 500 and not isinstance(error, StoreError):
        ref = uuid.uuid4().hex[:12]
        log.error("unexpected error (ref %s)", ref, exc_info=error)
        body = {"error": f"internal server error (logged as {ref})", "kind": "InternalError"}
        return JSONResponse(body, status_code=500)
    if status >= 500:
        log.warning("%s: %s", type(error).__name__, error, exc_info=status == 500)
    body = {**_fields(error), "error": str(error), "kind": type(error).__name__}
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused with :class:`BodyTooLargeError` past ``limit`` bytes: at once
    when ``Content-Length`` says so (nothing is read), else as soon as more has arrived.

    :raises BadRequestError: ``Content-Length`` is not a number, or the client went away.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequestError(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise BodyTooLargeError(limit)
    parts: list[bytes] = []
    received = 0
    try:
        async for part in request.stream():
            received += len(part)
            if received > limit:
                raise BodyTooLargeError(limit)
            parts.append(part)
    except ClientDisconnect:
        raise BadRequestError("the client went away before the body arrived") from None
    return b"".join(parts)
