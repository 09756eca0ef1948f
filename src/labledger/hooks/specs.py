"""The hooks labledger calls, and what a plugin may do with them.

A plugin is any object or module with functions named after these hooks,
decorated with :data:`labledger.hookimpl`. Plugins come from the entry-point
group ``labledger`` (installed distributions) and from
:func:`labledger.hooks.manager.register` (user code). labledger's own features
register through the same hooks (:data:`labledger.hooks.manager.DEFAULT_PLUGINS`):
the SQLite store ``labledger.store.sink`` answers :func:`labledger_open_store` and
:func:`labledger_artifact_store` and writes every event, and
``labledger.analysis.export_formats`` offers csv, json and parquet.

Event hooks (run lifecycle, logging events) are called once per plugin, each
call isolated: a plugin that raises is reported once (a warning naming the
plugin and the hook) and never stops the other plugins, the store, or the
user's training. Their return values are ignored. ``firstresult`` hooks ask
who serves something: the first plugin answering other than ``None`` wins.

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

    from labledger.analysis.export import ExportWriter
    from labledger.records import (
        ArtifactRecord,
        DatasetRecord,
        Fingerprint,
        MetricBatch,
        PipelineRecord,
        RunInfo,
    )
    from labledger.store.backend import Backend
    from labledger.store.blobs import BlobStore
    from labledger.tracking.run import Run

hookspec = pluggy.HookspecMarker("labledger")

# ---------------------------------------------------------------------------
# Stores
# ---------------------------------------------------------------------------


@hookspec(firstresult=True)
def labledger_open_store(uri: str) -> Backend | None:
    """Serve the store at ``uri``: the first plugin answering opens it.

    Called by :func:`labledger.store.open_store` for every path or URI it is given
    (``store=``, ``--store``, ``$LABLEDGER_STORE``), so return the same object for the
    same store. The built-in SQLite store answers for folders and ``file:`` URIs
    (``trylast``); a URI no plugin serves raises :class:`labledger.errors.StoreURIError`.
    The built-in sink writes every event through the returned object; a plugin that
    replaces the built-in store (blocking ``labledger.store.sink``) writes them itself.

    :param uri: the location as given: a path, or a URI such as ``postgresql://host/db``.
    :returns: a :class:`labledger.store.backend.Backend` (the SQLite ``Store`` is one), or ``None``
        when this plugin does not serve ``uri``. What it raises reaches the caller.

    Example::

        @ll.hookimpl
        def labledger_open_store(uri):
            return PostgresStore(uri) if uri.startswith("postgresql://") else None
    """


@hookspec(firstresult=True)
def labledger_artifact_store(uri: str) -> BlobStore | None:
    """Keep the artifact bytes of the store at ``uri``: the first plugin answering stores them.

    Called once when the built-in SQLite store opens a folder, given as a ``file:`` URI.
    The built-in answer (``trylast``) keeps them by SHA-256 under ``<store>/artifacts``.

    :param uri: the store's location, e.g. ``file:///home/me/project/.labledger``.
    :returns: an object with the interface of :class:`labledger.store.blobs.BlobStore`
        (``put_file``, ``put_bytes``, ``put_directory``, ``path_for``...), or ``None``.
    """


# ---------------------------------------------------------------------------
# Run lifecycle
# ---------------------------------------------------------------------------


@hookspec
def labledger_run_starting(info: RunInfo) -> dict[str, dict[str, Any]] | None:
    """A run is about to start: add tags and params to it.

    Fires in :func:`labledger.start_run` before the run is written, once per plugin.

    :param info: a plain :class:`labledger.records.RunInfo` (id, experiment, name, kind,
        hypothesis, parent id, origin, store, the tags and params given to ``start_run``).
    :returns: ``{"tags": {...}, "params": {...}}`` (either key may be left out) to add, or
        ``None``. What ``start_run`` was given wins over plugins, and the first plugin
        called wins over later ones; an invalid answer is reported once as a
        :class:`labledger.hooks.manager.PluginWarning` and ignored.

    Example::

        @ll.hookimpl
        def labledger_run_starting(info):
            return {"tags": {"cluster": os.environ.get("CLUSTER", "local")}}
    """


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

    Fires inside :meth:`Run.log_params` / :meth:`Run.log_param` (later, from the
    background writer, while the store refuses writes or when the call was made
    from inside another hook) with only the new keys (re-logging an identical value
    does not fire it), flattened with ``/``; values are JSON-compatible.

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

    Called by :meth:`Run.log_dataset` when ``data`` is given. The first plugin that
    recognises the object's type answers; the built-ins are ``trylast``.

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
# Command line, export, exit
# ---------------------------------------------------------------------------


@hookspec(historic=True)
def labledger_register_commands(cli: click.Group) -> None:
    """Add commands to the ``labledger`` command line.

    Fires when the CLI is built, after the core commands exist, and again for each
    plugin registered later (``historic``), so a plugin registered after the CLI
    loaded still adds its commands. Add them with ``cli.add_command(...)`` or
    ``@cli.command()``; keep heavy imports inside the command functions so
    ``labledger --help`` stays fast. A plugin that raises while the CLI is built is
    reported and skipped; one registered later is refused with
    :class:`labledger.errors.PluginRegistrationError`.

    :param cli: the ``labledger`` :class:`click.Group`.
    :returns: nothing (ignored).
    """


@hookspec
def labledger_export_formats() -> dict[str, ExportWriter] | None:
    """Offer file formats to ``labledger export`` and :func:`labledger.analysis.export.export_runs`.

    Called at every export (keep it cheap). For a name several plugins offer, the first
    called wins; the built-in csv, json and parquet are ``trylast``.

    :returns: a mapping from a lower-case format name (the output file's suffix picks
        it when no format is given) to a writer ``write(runs, path)``, where ``runs``
        is a :class:`labledger.analysis.export.ExportSelection` (``runs.frame()``: one
        flat row per run; ``runs.records()``: one nested dict per run) and ``path`` a
        :class:`pathlib.Path`; or ``None``.

    Example::

        @ll.hookimpl
        def labledger_export_formats():
            return {"tsv": lambda runs, path: runs.frame().to_csv(path, sep="\\t", index=False)}
    """


@hookspec
def labledger_shutdown() -> None:
    """The process is exiting: release what the plugin holds (connections, files, threads).

    Fires once at interpreter exit, after every run left open was ended and what runs
    logged was written (or reported unwritten), in any process that loaded its plugins.

    :returns: nothing (ignored).
    """
