"""Starting runs: :func:`start_run` and :func:`active_run`."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from labledger import settings
from labledger.errors import InvalidValueError, LabledgerError, RunNotFoundError
from labledger.hooks import manager as plugins
from labledger.records import RunInfo
from labledger.store import Store, open_store
from labledger.store.sqlite import dumps
from labledger.tracking import lifecycle as _lifecycle
from labledger.tracking import validate as _validate
from labledger.tracking.ids import new_run_name
from labledger.tracking.run import Run

__all__ = ["active_run", "start_run"]

#: What ``start_run(origin=...)`` accepts: a dotted Python name.
_ORIGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,20}")


def _environment() -> dict[str, Any]:
    """Interpreter, platform, CPU/GPU, relevant env vars, plus what plugins add under their names."""
    from labledger.lineage.capture import environment

    env = environment()
    for plugin_name, fields in plugins.call_each("labledger_collect_environment").items():
        try:
            env[plugin_name] = _validate.json_value(plugin_name, fields)
        except InvalidValueError as e:
            plugins.report_error(plugin_name, "labledger_collect_environment", e)
    return env


def _enrichment(info: RunInfo) -> tuple[dict[str, str], dict[str, Any]]:
    """The tags and params plugins add through ``labledger_run_starting``; the first plugin wins a key.

    An answer that is not ``{"tags": {...}, "params": {...}}`` with valid keys and values is
    reported once as a plugin warning and left out whole.
    """
    hook = "labledger_run_starting"
    tags: dict[str, str] = {}
    params: dict[str, Any] = {}
    for plugin_name, answer in plugins.call_each(hook, info=info).items():
        try:
            if not isinstance(answer, Mapping) or set(answer) - {"tags", "params"}:
                raise InvalidValueError(hook, answer, 'return {"tags": {...}, "params": {...}} or None')
            added_tags = _checked_tags(answer.get("tags") or {})
            added_params = _validate.flatten_params(answer.get("params") or {})
        except (LabledgerError, TypeError, ValueError) as e:
            plugins.report_error(plugin_name, hook, e)
            continue
        tags = {**added_tags, **tags}
        params = {**added_params, **params}
    return tags, params


def _checked_tags(tags: Any) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise InvalidValueError("tags", tags, "tags are a mapping of str to str")
    return {
        _validate.check_key(k, "tag key"): _validate.text_value(k, v, "tag value") for k, v in tags.items()
    }


def _capture_lineage(run: Run) -> None:
    """Background part of a top-level run's start: code version, author, packages."""
    from labledger.lineage.capture import author, code_cache, installed_packages, packages_digest

    _lifecycle.mark_background()  # the capture thread never waits for a bulk transaction
    try:
        code, diff = code_cache.get()
        packages = installed_packages()
        sha = packages_digest(packages)
        sections = {
            "code": code,
            "author": author(code.get("git")),
            "packages_sha256": sha,
            "packages_count": len(packages),
        }
        run._record_lineage(sections, packages)
        if diff:
            git = code.get("git") or {}
            run._store_code_bytes(
                diff,
                "uncommitted.diff",
                {"commit": git.get("commit"), "capped": bool(git.get("diff_capped"))},
            )
    except Exception as e:  # lineage must never stop a run
        plugins.report_error("labledger.lineage.capture", "capture", e)


def _followed(follows: Run | str | None, store: Any) -> dict[str, str] | None:
    """``{"run", "experiment", "name"}`` of the run this one follows (checked to exist)."""
    if follows is None:
        return None
    if isinstance(follows, Run):
        return {"run": follows.id, "experiment": follows.experiment, "name": follows.name}
    if not isinstance(follows, str):
        raise InvalidValueError("follows", follows, "a Run, a run id or experiment/name")
    from labledger.query.runs import resolve_run

    view = resolve_run(follows, store)
    return {"run": view.id, "experiment": view.experiment, "name": view.name}


def start_run(
    experiment: str | None = None,
    *,
    name: str | None = None,
    hypothesis: str | None = None,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    parent: Run | str | None = None,
    store: str | os.PathLike[str] | Store | None = None,
    seed: int | None = None,
    kind: str = "offline",
    activate: bool = True,
    origin: str | None = None,
    follows: Run | str | None = None,
) -> Run:
    """Start a run and make it the active one of this thread or asyncio task.

    A top-level run records its lineage automatically: code version (git
    commit, branch, remote, dirty flag and the uncommitted diff as a ``code``
    artifact), environment, installed packages, author and seeds.

    :param experiment: experiment name (created when new); default ``$LABLEDGER_EXPERIMENT``
        or ``default``. Names follow ``^[a-z0-9][a-z0-9._-]{0,99}$`` unless
        ``LABLEDGER_EXPERIMENT_PATTERN`` says otherwise.
    :param name: readable name, unique within the experiment (generated when not given;
        a taken name gets a ``-2``, ``-3``… suffix).
    :param hypothesis: what this run is meant to show.
    :param tags: initial tags.
    :param params: initial params (as :meth:`Run.log_params` takes them). Plugins may add
        tags and params through ``labledger_run_starting``; what is given here wins.
    :param parent: the parent run (or its id) for nested runs; the child uses its store.
    :param store: store folder, or a URI a plugin serves (``labledger_open_store``);
        default ``$LABLEDGER_STORE`` or ``./.labledger``.
    :param seed: seed every random generator in reach (see :func:`labledger.seed_everything`).
    :param kind: ``offline`` (default) or ``online``.
    :param activate: make it the active run (what module-level ``ll.log_*`` calls and
        integrations without a run of their own log to) in the current thread or
        asyncio task. An integration that starts a run for itself passes ``False``:
        that run is bound to the integration object and never captures other calls.
    :param follows: the run (a ``Run``, its id or ``experiment/name``) whose results or error
        analysis motivated this one; ``labledger journal`` chains runs by it.
    :param origin: for integrations: the dotted name of what the user called to get this run
        (``"labledger.integrations.keras.LedgerCallback"``). It is recorded as the run's
        ``source["origin"]``, and completeness warnings tell the user to pass ``hypothesis=``
        there instead of to ``start_run``.

    >>> import labledger as ll
    >>> with ll.start_run("digits-svm", hypothesis="RBF beats linear", seed=0) as run:  # doctest: +SKIP
    ...     run.log_params({"C": 1.0, "kernel": "rbf"})
    """
    settings.check()
    from labledger.lineage import completeness, seeds

    exp = _validate.check_experiment_name(experiment or settings.experiment())
    if kind not in ("offline", "online"):
        raise InvalidValueError("kind", kind, "choose offline or online")
    parent_id: str | None = None
    if isinstance(parent, Run):
        parent_id = parent.id
        if store is None:
            store = parent.store
        elif open_store(store) is not parent.store:
            raise LabledgerError("a child run must live in its parent's store")
    elif parent is not None:
        parent_id = str(parent)
    top_level = parent_id is None
    if origin is not None and not (isinstance(origin, str) and _ORIGIN.fullmatch(origin)):
        raise InvalidValueError(
            "origin",
            origin,
            "give the dotted name the user called, e.g. 'labledger.integrations.keras.LedgerCallback'",
        )
    policy = completeness.policy() if top_level else "off"
    if policy == "strict" and not hypothesis:
        raise completeness.CompletenessError(
            f"the strict completeness policy needs a hypothesis: say what this run should show with "
            f"{completeness.hypothesis_hint(origin)}, or set LABLEDGER_COMPLETENESS=warn"
        )
    st = open_store(store)
    if parent_id is not None and st.run_row(parent_id) is None:
        raise RunNotFoundError(parent_id)
    followed = _followed(follows if follows is not None or not top_level else settings.follows(), st)
    if name is not None:
        _validate.check_key(name, "run name")
    given_tags = _checked_tags(tags or {})
    given_params = _validate.flatten_params(params or {})
    seed_info = seeds.seed_everything_quietly(seed) if seed is not None else seeds.last_seed()
    exp_id = st.ensure_experiment(exp)
    run = Run(
        store=st,
        experiment=exp,
        experiment_id=exp_id,
        name=name or new_run_name(),
        parent_id=parent_id,
        hypothesis=hypothesis,
        kind=kind,
    )
    run.environment = _environment() if top_level else {}
    if origin is not None:
        run.source["origin"] = origin
    info = RunInfo(
        run.id,
        exp,
        run.name,
        kind,
        hypothesis,
        parent_id,
        origin,
        st.uri,
        dict(given_tags),
        dict(given_params),
    )
    added_tags, added_params = _enrichment(info)
    reproduction_of = settings.reproduction_of() if top_level else None
    run.name = st.insert_run(
        {
            "id": run.id,
            "experiment_id": exp_id,
            "name": run.name,
            "parent_id": parent_id,
            "kind": kind,
            "start_time": run.start_time,
            "author": run.author,
            "hypothesis": hypothesis,
            "host": run.host,
            "pid": run.pid,
            "source": dumps(run.source),
            "environment": dumps(run.environment),
            "reproduction_of": reproduction_of or None,
        }
    )
    run.reproduction_of = reproduction_of or None
    _lifecycle.add(run, activate=activate)
    run._notify("labledger_run_started")
    if added_tags or given_tags:
        run.set_tags({**added_tags, **given_tags})
    if added_params or given_params:
        run.log_params({**added_params, **given_params})
    if followed is not None:
        run._record_lineage({"follows": followed})
    if top_level:
        # the parts audited (dataset, pipeline, model, seeds…) describe training, not an online test
        run._check_completeness = policy != "off" and kind == "offline"
        if seed_info is not None:
            run._record_lineage({"seeds": dict(seed_info)})
        from labledger.lineage.capture import capture_worker

        capture_worker.submit(run, lambda: _capture_lineage(run))
        if policy == "warn" and not hypothesis:
            plugins.warn_once(
                ("completeness-start", st.path, exp),
                f"run {exp}/{run.name} has no hypothesis: say what it should show with "
                f"{completeness.hypothesis_hint(origin)}. Further runs of this experiment are not warned "
                "about again in this process (LABLEDGER_COMPLETENESS=off silences this).",
                completeness.CompletenessWarning,
            )
    return run


def active_run() -> Run | None:
    """The innermost run started (and not ended) in this thread or asyncio task, or ``None``.

    Threads and tasks each have their own: a thread started inside a ``with`` block
    sees that run only if it runs in a copy of the context (``contextvars.copy_context()``).

    >>> with ll.start_run("digits-svm") as run:  # doctest: +SKIP
    ...     assert ll.active_run() is run
    """
    return _lifecycle.active_run()
