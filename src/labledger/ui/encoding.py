"""JSON for the API: non-finite floats as strings, times as ISO 8601 UTC.

NaN, +inf and -inf become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``
(JavaScript's ``Number(s)`` reads them back); ``null`` always means "no value".
Times are ISO 8601 strings in UTC with a ``Z`` suffix and millisecond precision.

>>> to_json({"loss": float("nan"), "at": iso(0.0)})
'{"loss":"NaN","at":"1970-01-01T00:00:00.000Z"}'
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ApiResponse", "error_response", "iso", "iso_array", "jsonable", "to_json"]

_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def iso(seconds: float | None) -> str | None:
    """Seconds since the epoch as ISO 8601 UTC (``None`` stays ``None``)."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_array(seconds: np.ndarray) -> list[str | None]:
    """A float array of seconds since the epoch as ISO 8601 UTC strings, vectorised."""
    import numpy as np

    finite = np.isfinite(seconds)
    stamps = np.where(finite, seconds, 0.0)
    text = np.datetime_as_string((stamps * 1000).round().astype("datetime64[ms]"), unit="ms", timezone="UTC")
    return [t if ok else None for t, ok in zip(text.tolist(), finite.tolist(), strict=True)]


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as strings, tuples as lists, NumPy values as Python ones
    and anything else JSON cannot hold as its ``str``."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return _NON_FINITE.get(value, value)
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # a NumPy array or scalar
        return jsonable(value.tolist())
    return str(value)


def to_json(content: Any) -> str:
    """Compact JSON of :func:`jsonable` content (never a bare NaN)."""
    return json.dumps(jsonable(content), allow_nan=False, ensure_ascii=False, separators=(",", ":"))


class ApiResponse(JSONResponse):
    """A JSON response encoded with :func:`to_json`."""

    def render(self, content: Any) -> bytes:
        return to_json(content).encode("utf-8")


def error_response(status: int, message: str, **fields: Any) -> ApiResponse:
    """``{"error": message, ...fields}`` with the given HTTP status."""
    return ApiResponse({"error": message, **fields}, status_code=status)
