"""Calling hooks one plugin at a time, through pluggy: a plugin that raises never stops the others.

Every call goes through pluggy's own hook execution (a subset caller holding
one plugin), so pluggy's hook-call monitoring sees it: ``LABLEDGER_TRACE_PLUGINS=1``
(:func:`trace_to_stderr`) and any ``pm.add_hookcall_monitoring`` a tool adds. The
calls pluggy cannot make one plugin at a time (the first call of a historic hook,
an unhashable plugin object) are made directly and traced the same way.
The functions take the plugin manager; :mod:`labledger.hooks.manager` calls them
with the process-wide one.

>>> from labledger.hooks import manager
>>> manager.call_each("labledger_collect_environment")  # doctest: +SKIP
{'sklearn': {'sklearn': '1.5.2', 'numpy': '2.1.0'}}
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pluggy

from labledger.errors import PluginError, StoreWriteError
from labledger.hooks.reporting import report_error

__all__ = [
    "call_each",
    "call_first",
    "call_historic",
    "deliver",
    "forget_tracer",
    "implementations",
    "in_hook",
    "trace_to_stderr",
]


class _Tracer:
    """Writes hook calls through pluggy's tag tracer (``pm.trace``), indented by nesting."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.hooktrace = pm.trace.root.get("hook")

    def start(self, hook: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, object]) -> None:
        self.hooktrace.root.indent += 1
        self.hooktrace(hook, "->", ", ".join(i.plugin_name for i in impls) or "(no plugin)", dict(kwargs))

    def end(self, hook: str, result: object, error: BaseException | None) -> None:
        if error is None:
            self.hooktrace("finish", hook, "-->", result)
        else:
            self.hooktrace("raised", hook, "-->", repr(error))
        self.hooktrace.root.indent -= 1


#: The tracer of each plugin manager that traces, for the calls pluggy cannot make itself (call_historic).
_tracers: dict[int, _Tracer] = {}


def trace_to_stderr(pm: pluggy.PluginManager) -> None:
    """Print every hook call, the plugins it reaches, and its result or error, to standard error.

    Uses pluggy's hook-call monitoring (``pm.add_hookcall_monitoring``) and its tag tracer
    (``pm.trace``); each call reads ``labledger_params_logged -> labledger.store.sink [hook]``
    followed by its arguments, then ``finish labledger_params_logged --> [] [hook]``.
    """
    tracer = _tracers[id(pm)] = _Tracer(pm)
    pm.trace.root.setwriter(lambda text: sys.stderr.write(text))

    def after(
        outcome: pluggy.Result[object],
        hook: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, object],
    ) -> None:
        error = outcome.exception
        tracer.end(hook, None if error else outcome.get_result(), error)

    pm.add_hookcall_monitoring(tracer.start, after)


def forget_tracer(pm: pluggy.PluginManager) -> None:
    """Drop what :func:`trace_to_stderr` kept for ``pm`` (the manager is being discarded)."""
    _tracers.pop(id(pm), None)


def implementations(pm: pluggy.PluginManager, hook: str) -> list[pluggy.HookImpl]:
    """The plain (non-wrapper) implementations of ``hook``, in the order pluggy calls them."""
    caller = getattr(pm.hook, hook)
    # pluggy calls the last registered first; tryfirst/trylast are already ordered.
    return [i for i in reversed(caller.get_hookimpls()) if not (i.wrapper or i.hookwrapper)]


def _single(pm: pluggy.PluginManager, hook: str, impl: pluggy.HookImpl) -> pluggy.HookCaller | None:
    """A pluggy caller reaching ``impl``'s plugin only, or ``None`` when pluggy cannot single it
    out (it filters plugins by hash: an unhashable plugin object, e.g. a dataclass instance)."""
    caller = getattr(pm.hook, hook)
    impls = caller.get_hookimpls()
    try:
        for i in impls:
            hash(i.plugin)
    except TypeError:
        return None
    others = [i.plugin for i in impls if i.plugin is not impl.plugin]
    return pm.subset_hook_caller(hook, others) if others else caller


def _call_direct(
    pm: pluggy.PluginManager, hook: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]
) -> Any:
    """Call ``impl`` itself (for calls pluggy cannot make one plugin at a time), traced like pluggy's."""
    tracer = _tracers.get(id(pm))
    if tracer is None:
        return impl.function(*[kwargs[a] for a in impl.argnames])
    tracer.start(hook, [impl], kwargs)
    try:
        result = impl.function(*[kwargs[a] for a in impl.argnames])
    except BaseException as e:
        tracer.end(hook, None, e)
        raise
    tracer.end(hook, result, None)
    return result


def _call_one(pm: pluggy.PluginManager, hook: str, impl: pluggy.HookImpl, kwargs: Mapping[str, Any]) -> Any:
    """Call ``hook`` on ``impl``'s plugin only, through pluggy when it can; returns that plugin's answer."""
    one = _single(pm, hook, impl)
    if one is None:
        return _call_direct(pm, hook, impl, kwargs)
    result = one(**kwargs)
    if one.spec is not None and one.spec.opts.get("firstresult"):
        return result
    return result[0] if result else None


_hook_depth = threading.local()


def in_hook() -> bool:
    """Whether this thread is inside a plugin's event hook (calls made there must not wait)."""
    return bool(getattr(_hook_depth, "n", 0))


def deliver(
    pm: pluggy.PluginManager, hook: str, done: set[str], kwargs: dict[str, Any]
) -> tuple[list[PluginError], StoreWriteError | None]:
    """Call an event hook on every plugin not in ``done``, adding each one that took it.

    A plugin that raises is reported once per hook and counts as done (it is not
    called again with the same event). A sink that raises
    :class:`~labledger.errors.StoreWriteError` has *not* taken the event: it stays
    out of ``done`` so that a later delivery retries it, and the error is returned.

    :returns: the errors plugins raised, and the store write error if there was one.
    """
    errors: list[PluginError] = []
    refused: StoreWriteError | None = None
    _hook_depth.n = getattr(_hook_depth, "n", 0) + 1
    try:
        for impl in implementations(pm, hook):
            name = impl.plugin_name
            if name in done:
                continue
            try:
                _call_one(pm, hook, impl, kwargs)
            except StoreWriteError as e:
                refused = refused or e
                continue
            except Exception as e:  # a plugin must never break logging
                errors.append(report_error(name, hook, e))
            done.add(name)
    finally:
        _hook_depth.n -= 1
    return errors, refused


def _answers(pm: pluggy.PluginManager, hook: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``(plugin name, answer)`` of each plugin in call order, lazily; ``None`` answers and raising
    plugins (reported) are skipped."""
    for impl in implementations(pm, hook):
        try:
            result = _call_one(pm, hook, impl, kwargs)
        except Exception as e:
            report_error(impl.plugin_name, hook, e)
            continue
        if result is not None:
            yield impl.plugin_name, result


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> dict[str, Any]:
    """Call a hook on every plugin and collect the non-``None`` results by plugin name, in call order."""
    return dict(_answers(pm, hook, kwargs))


def call_first(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> Any:
    """Call a ``firstresult`` hook: the first non-``None`` answer wins; raising plugins are skipped."""
    for _, result in _answers(pm, hook, kwargs):
        return result
    return None


def call_historic(pm: pluggy.PluginManager, hook: str, kwargs: dict[str, Any]) -> list[PluginError]:
    """Call a ``historic`` hook on every plugin now, each call isolated, and on every plugin registered later.

    pluggy keeps the call and makes it again for each plugin registered afterwards,
    one plugin at a time. A plugin that raises now is reported once and skipped.

    :returns: the errors plugins raised now.
    """
    caller = getattr(pm.hook, hook)
    impls = caller.get_hookimpls()
    if impls and _single(pm, hook, impls[0]) is None:  # an unhashable plugin: pluggy calls them all at once
        try:
            caller.call_historic(kwargs=kwargs)
        except Exception as e:
            return [report_error(", ".join(i.plugin_name for i in impls), hook, e)]
        return []
    # Record the call for later plugins without making it: a subset caller that holds no plugin.
    pm.subset_hook_caller(hook, [i.plugin for i in impls]).call_historic(kwargs=kwargs)
    errors: list[PluginError] = []
    for impl in implementations(pm, hook):
        # pluggy makes a historic call for all plugins at once: call each one directly, isolated
        try:
            _call_direct(pm, hook, impl, kwargs)
        except Exception as e:
            errors.append(report_error(impl.plugin_name, hook, e))
    return errors
