"""The hooks labledger calls, and what a plugin may do with them.

A plugin is any object or module with functions named after these hooks,
decorated with :data:`labledger.hookimpl`. Plugins come from the entry-point
group ``labledger`` (installed distributions) and from
:func:`labledger.hooks.manager.register` (user code). labledger's own features
register through the same hooks: the SQLite store is the built-in sink
``labledger.store.sink``.

Event hooks (run lifecycle, logging events) are called once per plugin, each
call isolated: a plugin that raises is reported once (a warning naming the
plugin and the hook) and never stops the other plugins, the store, or the
user's training. Their return values are ignored.

A run's events reach the plugins in order, one delivery at a time, and no
labledger lock is held while a hook runs. A hook may call back into labledger:
calls on the run being delivered (``run.flush()``, ``run.log_params(...)``)
return at once and what they queue is delivered when the hook returns; calls
on another run never wait for a thread delivering that run. A sink that cannot
take an event yet raises :class:`labledger.errors.StoreWriteError`: the event
stays queued and is offered to that sink again later (the built-in store does
this on a full or read-only disk); other plugins get each event once, except
that an interruption (Ctrl-C, SIGTERM) in the middle of a delivery may offer
it again to the plugin that was running.

Example — a sink that mirrors every metric to standard output::

    import labledger as ll

    class PrintSink:
        @ll.hookimpl
        def labledger_metrics_logged(self, run, batch):
            for key, step, epoch, timestamp, value in batch.points():
                print(run.name, key, step, value)

    ll.plugins.register(PrintSink())
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from labledger.records import (
        ArtifactRecord,
        DatasetRecord,
        Fingerprint,
        MetricBatch,
        PipelineRecord,
    )
    from labledger.tracking.run import Run

hookspec = pluggy.HookspecMarker("labledger")

# ---------------------------------------------------------------------------
# Run lifecycle
# ---------------------------------------------------------------------------


@hookspec
def labledger_run_started(run: Run) -> None:
    """A run has started.

    Fires in the process that called :func:`labledger.start_run`, after the
    run's id, name, experiment and source are set and before any param or
    metric is logged. ``run.parent_id`` is set for child runs.

    :param run: the live :class:`labledger.Run`; read its attributes, do not log to it here.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_run_ended(run: Run, status: str, error: str | None) -> None:
    """A run has ended.

    Fires once per run, after every buffered metric has been delivered to
    :func:`labledger_metrics_logged`. ``status`` is one of ``finished``,
    ``failed`` (an exception left the run) or ``killed`` (KeyboardInterrupt
    or SIGTERM). Runs whose process died without ending them never fire this
    hook; readers see them as ``crashed`` once their heartbeat is stale.

    :param run: the run that ended.
    :param status: the final status.
    :param error: the formatted traceback for ``failed``/``killed`` runs, else ``None``.
    :returns: nothing (ignored).
    """


# ---------------------------------------------------------------------------
# Logging events
# ---------------------------------------------------------------------------


@hookspec
def labledger_params_logged(run: Run, params: dict[str, Any]) -> None:
    """New params were logged to a run.

    Fires inside :meth:`Run.log_params` / :meth:`Run.log_param` (later, from
    the background writer, while the store refuses writes or when the call was
    made from inside another hook) with only the keys that are new (re-logging
    an identical value does not fire it again). Nested dicts are already flattened with ``/``; values are
    JSON-compatible (int, float, bool, str, None, list, dict).

    :param run: the run logged to.
    :param params: flat mapping of new keys to values.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_metrics_logged(run: Run, batch: MetricBatch) -> None:
    """A batch of buffered metric points is being delivered.

    Metric logging never calls plugins on the hot path: points are buffered in
    memory and this hook fires from labledger's background writer thread with
    each batch, at least once a second while points arrive, and on
    :meth:`Run.flush`, at the end of the run, at interpreter exit and on
    SIGTERM. Batches of one run are delivered in order, one at a time;
    ``batch.seq`` numbers them (a batch offered again keeps its number).

    :param run: the run the points belong to.
    :param batch: a :class:`labledger.records.MetricBatch`; ``batch.series`` maps
        each key to its columns (steps, epochs, timestamps, values) and
        ``batch.points()`` iterates ``(key, step, epoch, timestamp, value)``.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_folds_logged(
    run: Run, key: str, split: str, values: list[float], stats: dict[str, float | None]
) -> None:
    """Per-fold results of a cross-validated evaluation were logged with :meth:`Run.log_folds`.

    Fires once per ``(key, split)``; fold results are immutable like params.

    :param run: the run.
    :param key: the metric, e.g. ``accuracy``.
    :param split: ``test``, ``train`` or another evaluation split.
    :param values: one float per fold, in fold order (NaN for a failed fold).
    :param stats: ``mean``, ``std`` (population, ddof=0, as scikit-learn reports it),
        ``min`` and ``max``; NaN when any fold is NaN, ``None`` when there are no folds.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_tags_set(run: Run, tags: dict[str, str]) -> None:
    """Tags were set on a run (tags are the one mutable part of a run).

    :param run: the run (it may have ended already).
    :param tags: the keys set and their new string values.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_note_added(run: Run, text: str, timestamp: float) -> None:
    """A note was added to a run with :meth:`Run.note`.

    :param run: the run.
    :param text: the note.
    :param timestamp: seconds since the epoch.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_artifact_logged(run: Run, artifact: ArtifactRecord) -> None:
    """A file or directory was logged as an artifact.

    Fires after the bytes have been copied into the store's content-addressed
    area, so ``artifact.local_path`` stays valid after the user deletes the
    original. A directory artifact's ``files`` lists every file it holds.

    :param run: the run.
    :param artifact: a :class:`labledger.records.ArtifactRecord`.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_dataset_logged(run: Run, dataset: DatasetRecord) -> None:
    """A dataset was recorded with :meth:`Run.log_dataset`.

    :param run: the run.
    :param dataset: a :class:`labledger.records.DatasetRecord` (name, role, fingerprint, summary).
    :returns: nothing (ignored).
    """


# ---------------------------------------------------------------------------
# Lineage
# ---------------------------------------------------------------------------


@hookspec
def labledger_lineage_recorded(run: Run, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
    """Part of a run's lineage was recorded.

    Fires for top-level runs shortly after the start (from a background
    thread: ``code``, ``author``, ``packages_sha256``), when seeds are set
    (``seeds``), and at the end (``seeds.observed``). Sections merge into the
    run's lineage (later values win, dicts merge key by key).

    :param run: the run.
    :param lineage: the sections recorded now (JSON-compatible).
    :param packages: the full ``{distribution: version}`` set when it was captured now
        (its digest is ``lineage["packages_sha256"]``), else ``None``.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_pipeline_logged(run: Run, pipeline: PipelineRecord) -> None:
    """A feature pipeline was recorded with :meth:`Run.log_pipeline`.

    :param run: the run.
    :param pipeline: a :class:`labledger.records.PipelineRecord` (name, structural
        version, structure, text).
    :returns: nothing (ignored).
    """


@hookspec(firstresult=True)
def labledger_fingerprint_dataset(data: Any) -> Fingerprint | None:
    """Compute a stable content fingerprint of a dataset object.

    Called by :meth:`Run.log_dataset` when ``data`` is given. The first plugin
    that recognises the object's type answers; the others are not called.
    Built-in implementations are registered ``trylast`` so a plugin can
    override them.

    :param data: the object passed to ``log_dataset`` (array, DataFrame, path, ...).
    :returns: a :class:`labledger.records.Fingerprint` (hex digest and summary
        dict), or ``None`` when this plugin does not handle the type.
    """


@hookspec
def labledger_collect_environment() -> dict[str, Any] | None:
    """Contribute fields to the environment recorded at run start.

    Called once per run start; the dicts returned by all plugins are merged
    under the plugin's name.

    :returns: a JSON-compatible dict, or ``None`` to contribute nothing.
    """


@hookspec
def labledger_param_roles() -> dict[str, str] | None:
    """Declare how a plugin's params count in the completeness report.

    Called whenever a run's completeness is assessed (at the end of a top-level
    run, by ``run.completeness()``, ``ll.get_run(id).completeness``,
    ``labledger show`` and ``labledger audit``), so keep it cheap and free of
    imports. Every plugin's answer is collected; for each param key the
    longest matching prefix wins over all plugins, and a prefix declared under
    ``[tool.labledger.param_roles]`` in ``pyproject.toml`` wins over plugins.
    Keys no prefix matches fall back to labledger's built-in rules.

    :returns: a mapping from a param-key prefix (``"optimizer/"``, ``"xgb/"``;
        a key matches when it starts with the prefix, so a full key works too)
        to ``"hyperparameter"`` or ``"configuration"``, or ``None`` to declare
        nothing. An invalid mapping is reported once as a
        :class:`labledger.hooks.manager.PluginWarning` and ignored.

    Example::

        @ll.hookimpl
        def labledger_param_roles():
            return {"lgb/": "hyperparameter", "lgb/num_threads": "configuration"}
    """


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


@hookspec
def labledger_register_commands(cli: click.Group) -> None:
    """Add commands to the ``labledger`` command line.

    Fires once when the CLI is loaded, after the core commands exist. Add
    commands with ``cli.add_command(...)`` or the ``@cli.command()`` decorator;
    keep heavy imports inside the command functions so ``labledger --help``
    stays fast.

    :param cli: the ``labledger`` :class:`click.Group`.
    :returns: nothing (ignored).
    """
