"""Jinja2 for the dashboard's pages: autoescaped templates from the package, and their filters.

Every stored text reaches a page through autoescaping, or as JSON inside a
``<script type="application/json">`` block (:func:`json_data`) where ``<``, ``>`` and ``&``
are written as ``\\u`` escapes, so a run named ``<script>`` renders as text.

>>> json_data({"name": "</script><b>"})
Markup('{"name":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}')
"""

from __future__ import annotations

import time
from functools import cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from labledger import formatting as fmt
from labledger.ui.encoding import to_json

if TYPE_CHECKING:
    from jinja2 import Environment

__all__ = ["environment", "json_data", "render"]


def json_data(value: Any) -> Markup:
    """JSON safe to place inside a ``<script type="application/json">`` element."""
    text = to_json(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # every character that could end the element is escaped


def _number(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return fmt.value(value)


def _mean_std(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return ""
    return fmt.mean_std(stats.get("mean"), stats.get("std"))


def _ago(ts: float | str | None) -> str:
    if ts is None or isinstance(ts, str):
        return ts or ""
    return fmt.when(ts)


def _duration(seconds: float | None) -> str:
    return fmt.duration(seconds)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


@cache
def environment() -> Environment:
    """The templates of ``labledger/ui/templates`` with autoescaping always on."""
    from jinja2 import Environment, PackageLoader

    env = Environment(
        loader=PackageLoader("labledger.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=_number, mean_std=_mean_std, ago=_ago, duration=_duration, size=_size, json_data=json_data
    )
    env.globals["now"] = time.time
    return env


def render(name: str, **context: Any) -> str:
    """Render template ``name`` with ``context``."""
    import labledger

    return environment().get_template(name).render(version=labledger.__version__, **context)
