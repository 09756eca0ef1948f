"""A labledger server as a store: ``LABLEDGER_STORE=https://ledger.example.com:8443``.

:class:`RemoteStore` implements :class:`~labledger.store.backend.Backend` over the server's
HTTP API (see :mod:`labledger.store.remote.wire`). Training never waits for the server and
loses no record:

- A run's records (metric batches, params, tags, notes, folds, datasets, lineage, pipelines,
  artifacts, its end) go to the server directly while it answers. When it cannot be reached
  (or answers 5xx), they go to an on-disk spool (:mod:`~labledger.store.remote.spool`), and
  so does every later record, so their order is kept; the sender thread sends them once the
  server is back. A full spool (``LABLEDGER_SPOOL_MAX``) refuses records with a
  :class:`~labledger.errors.StoreError`: the run keeps them in memory and retries them.
- Creating an experiment or a run waits for the server ``LABLEDGER_CONNECT_TIMEOUT`` seconds.
- A run's end waits ``LABLEDGER_END_TIMEOUT`` seconds for the spool to be sent; what is left
  is sent by a later process or ``labledger sync --spool``.
- Reads ask the server (bounded retries) and raise :class:`StoreError` when it cannot be reached.

>>> store = RemoteStore("https://ledger.example.com:8443")
>>> store.uri
'https://ledger.example.com:8443'
>>> store.run_ids()  # doctest: +SKIP
['0123abcd', ...]
"""

from __future__ import annotations

import atexit
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labledger import settings
from labledger.errors import LabledgerError, StoreError
from labledger.store.objects.errors import ObjectStoreUnreachableError
from labledger.store.remote import wire
from labledger.store.remote.errors import RemoteError, ServerUnreachableError, WriteRefusedError
from labledger.store.remote.reads import ReadsMixin
from labledger.store.remote.sender import Blocked, Sender, deliver, replay, warn
from labledger.store.remote.spool import SpoolFolder, orphaned_folders, remember_server
from labledger.store.remote.transport import Transport

if TYPE_CHECKING:
    from labledger.records import ArtifactRecord, DatasetRecord, MetricBatch, PipelineRecord
    from labledger.store.backend import Backend
    from labledger.store.blobs import BlobStore
    from labledger.store.objects.base import ObjectStore

__all__ = ["RemoteStore", "cache_folder"]

_JSON = "application/json"


def cache_folder(url: str) -> Path:
    """The local folder of a server's caches and spool (not created here):
    ``$LABLEDGER_CACHE/remote-<digest>``, else ``~/.cache/labledger/remote/<digest>``.

    >>> len(cache_folder("https://ledger.example.com:443").name)
    16
    """
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    base = settings.cache()
    if base:
        return Path(base).expanduser().resolve() / f"remote-{digest}"
    return (Path.home() / ".cache" / "labledger" / "remote").resolve() / digest


class RemoteStore(ReadsMixin):
    """A labledger server as a :class:`~labledger.store.backend.Backend`. Open with
    :func:`labledger.store.open_store` (one per URL in a process).

    :param url: ``https://host[:port][/prefix]`` (``http://`` for a server on this machine).
    """

    def __init__(self, url: str) -> None:
        self.transport = Transport(url)
        self.path = cache_folder(self.transport.url)
        self._info: dict[str, Any] | None = None
        self._objects: ObjectStore | None = None
        self._blobs: BlobStore | None = None
        self._local = threading.local()
        self._own_runs: set[str] = set()
        self._own_artifacts: dict[tuple[str, str], str] = {}
        self._reset_writes()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)
        atexit.register(self._at_exit)

    def _reset_writes(self) -> None:
        self._write_lock = threading.Lock()
        self._spooling = False
        self._spool: SpoolFolder | None = None
        self._adopted: list[SpoolFolder] = []
        self._orphans_checked = False
        self._sender = Sender(self)
        self._end_warned = False
        self._full_warned = False

    def _after_fork(self) -> None:
        if self._spool is not None:
            self._spool.forget_lock()
        for folder in self._adopted:
            folder.forget_lock()
        self._reset_writes()

    def __repr__(self) -> str:
        return f"<labledger RemoteStore {self.url}>"

    @property
    def url(self) -> str:
        return self.transport.url

    @property
    def uri(self) -> str:
        """The server's URL."""
        return self.transport.url

    @property
    def location(self) -> str:
        """What error messages name as the store: the server's URL."""
        return self.transport.url

    # -- lifecycle -------------------------------------------------------------------------

    def info(self, deadline: float | None = None) -> dict[str, Any]:
        """The server's ``/api/v1/info`` (asked once per process)."""
        if self._info is None:
            wait = settings.connect_timeout() if deadline is None else deadline
            answer = self.transport.call("GET", "/api/v1/info", deadline=wait)
            info = answer.json()
            if not isinstance(info, dict) or info.get("api") != wire.API:
                raise StoreError(
                    self.url, f"answers API {info.get('api')!r}; this labledger speaks {wire.API}"
                )
            self._info = info
        return self._info

    def create(self) -> None:
        """Check that the server answers (``LABLEDGER_CONNECT_TIMEOUT`` seconds at most), and send
        what processes that are gone left in the spool."""
        self.info()
        self._check_orphans()

    def _check_orphans(self) -> None:
        if self._orphans_checked:
            return
        self._orphans_checked = True
        if orphaned_folders(self.path / "spool"):
            self._sender.start()
            self._sender.wake()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Each write is its own transaction on the server; the block only marks the thread."""
        self._local.depth = getattr(self._local, "depth", 0) + 1
        try:
            yield
        finally:
            self._local.depth -= 1

    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "depth", 0))

    # -- artifacts -------------------------------------------------------------------------

    @property
    def blobs(self) -> BlobStore:
        """Artifact bytes: cached under :attr:`path`, uploaded once per content."""
        if self._blobs is None:
            from labledger.store.remote.objects import RemoteBlobs

            self._blobs = RemoteBlobs(self.path / "artifacts", self)
        return self._blobs

    @blobs.setter
    def blobs(self, value: BlobStore) -> None:
        self._blobs = value

    def objects(self) -> ObjectStore:
        """Where artifact bytes go: the server's S3 bucket directly when the server keeps them in
        S3 and this machine has AWS credentials, else the server's objects endpoints."""
        if self._objects is None:
            from labledger.store.remote.objects import HttpObjectStore

            where = str(self.info().get("artifacts") or "")
            credentials = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
            if where.startswith("s3://") and credentials:
                from labledger.store.objects import open_objects

                self._objects = open_objects(where)
            else:
                self._objects = HttpObjectStore(self.transport)
        return self._objects

    def upload_object(self, sha: str, cached: Path) -> bool:
        """Upload cached content ``sha`` (unless the server has it), in order with the records:
        spooled while the server cannot be reached. Returns whether it was uploaded now."""
        return self._send({"kind": "object", "sha": sha, "path": str(cached)}, b"")

    # -- writes ----------------------------------------------------------------------------

    def _call(self, method: str, *args: Any) -> Any:
        """A write whose answer is needed now: retried ``LABLEDGER_CONNECT_TIMEOUT`` seconds."""
        path = f"/api/v1/write/{method}"
        body = wire.dumps_args(args)
        answer = self.transport.call(
            "POST", path, body, _JSON, deadline=settings.connect_timeout(), write=True
        )
        return wire.loads_result(answer.body)

    def ensure_experiment(self, name: str, description: str | None = None) -> int:
        return int(self._call("ensure_experiment", name, description))

    def insert_run(self, row: dict[str, Any]) -> str:
        from labledger.store.liveness import process_identity

        if row.get("pid") == os.getpid():
            row = {**process_identity(), **row}
        name = str(self._call("insert_run", row))
        self._own_runs.add(str(row["id"]))
        return name

    def set_setting(self, key: str, value: str) -> None:
        self._call("set_setting", key, value)

    def _record(self, method: str, run_id: str, *args: Any) -> None:
        self._send({"kind": "call", "method": method, "run": run_id}, wire.dumps_args((run_id, *args)))

    def _send(self, meta: dict[str, Any], body: bytes) -> bool:
        """A run's record: to the server while it answers, else (and while anything waits) to the
        spool. Returns whether the server took it now."""
        with self._write_lock:
            if not self._spooling:
                try:
                    self.deliver(meta, body)
                    return True
                except (ServerUnreachableError, ObjectStoreUnreachableError) as e:
                    self._start_spooling(e)
                except StoreError as e:
                    if isinstance(e, RemoteError) and e.status in (401, 403):
                        raise  # kept and retried by the run until the token is fixed
                    # refused for good: reported once by the run, never retried
                    raise WriteRefusedError(self.url, str(meta.get("method", "an upload")), e) from e
            if self._spool is None:
                self._spool = SpoolFolder.create(self.path / "spool", settings.spool_max(lenient=True))
                remember_server(self.path, self.url)
            try:
                self._spool.append(meta, body)
            except StoreError as e:
                if not self._full_warned:
                    self._full_warned = True
                    warn(f"{e}. The run keeps its records in memory meanwhile; nothing is lost.")
                raise
            self._full_warned = False
        self._sender.start()
        self._sender.wake()
        return False

    def _start_spooling(self, error: BaseException) -> None:
        self._spooling = True
        warn(
            f"{error}. Training goes on: records are spooled on disk under {self.path / 'spool'} "
            "and sent in order once the server is back."
        )

    def deliver(self, meta: dict[str, Any], body: bytes) -> None:
        """Send one record to the server now (see :func:`labledger.store.remote.sender.deliver`)."""
        deliver(self, meta, body)

    def end_run(self, run_id: str, status: str, end_time: float, error: str | None) -> None:
        self._record("end_run", run_id, status, end_time, error)
        if self._spooling:
            self.wait_sent(settings.end_timeout(lenient=True))

    def heartbeat(self, run_id: str) -> None:
        """Mark a run alive (skipped while records wait in the spool: they say it more truly)."""
        if self._spooling:
            return
        try:
            self.transport.call(
                "POST", "/api/v1/write/heartbeat", wire.dumps_args([run_id]), _JSON, write=True
            )
        except ServerUnreachableError as e:
            with self._write_lock:
                if not self._spooling:
                    self._start_spooling(e)
            self._sender.start()
        except LabledgerError:
            return

    def insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._record("insert_params", run_id, params)

    def set_tags(self, run_id: str, tags: dict[str, str], when: float) -> None:
        self._record("set_tags", run_id, tags, when)

    def add_note(self, run_id: str, text: str, when: float, author: str | None = None) -> None:
        self._record("add_note", run_id, text, when, author)

    def write_metrics(self, batch: MetricBatch) -> None:
        meta = {"kind": "call", "method": "write_metrics", "run": batch.run_id, "seq": batch.seq}
        self._send(meta, wire.encode_batch(batch))

    def insert_folds(
        self, run_id: str, key: str, split: str, values: list[float], stats: dict[str, float | None]
    ) -> None:
        self._record("insert_folds", run_id, key, split, values, stats)

    def insert_dataset(self, run_id: str, ds: DatasetRecord) -> None:
        self._record("insert_dataset", run_id, ds)

    def record_lineage(self, run_id: str, lineage: dict[str, Any], packages: dict[str, str] | None) -> None:
        self._record("record_lineage", run_id, lineage, packages)

    def insert_pipeline(self, run_id: str, pipe: PipelineRecord) -> None:
        self._record("insert_pipeline", run_id, pipe)

    def insert_artifact(self, run_id: str, art: ArtifactRecord) -> None:
        self._record("insert_artifact", run_id, art)
        self._own_artifacts.setdefault((run_id, art.name), art.sha256)

    def artifact_sha(self, run_id: str, name: str) -> str | None:
        """The SHA-256 of a run's artifact (a run of this process: known here, even while the
        server cannot be reached)."""
        if run_id in self._own_runs:
            return self._own_artifacts.get((run_id, name))
        return self._read("artifact_sha", run_id, name)

    # -- the spool -------------------------------------------------------------------------

    def pending(self) -> int:
        """Records of this process waiting in the spool."""
        return len(self._spool) if self._spool is not None else 0

    def send_round(self) -> bool:
        """The sender's round: send the spools of processes that are gone, then this process's;
        once it is empty, write to the server directly again. Returns whether more is to do soon.

        :raises labledger.store.remote.sender.Blocked: the server cannot take records now.
        """
        for folder in orphaned_folders(self.path / "spool"):
            adopted = SpoolFolder.adopt(folder)
            if adopted is not None:
                self._adopted.append(adopted)
        while self._adopted:
            replay(self, self._adopted[0])
            self._adopted.pop(0).close()
        if self._spool is not None:
            replay(self, self._spool)
        with self._write_lock:
            if self._spooling and (self._spool is None or len(self._spool) == 0):
                if self._spool is None:  # nothing spooled: the server stopped answering a heartbeat
                    try:
                        self.transport.call("GET", "/api/health")
                    except ServerUnreachableError as e:
                        raise Blocked(e) from e
                self._spooling = False
        return False

    def wait_sent(self, timeout: float) -> bool:
        """Wait (``timeout`` seconds at most) until the spool is sent; whether it was. What is
        left stays on disk, with one warning saying how to send it later."""
        deadline = time.monotonic() + timeout
        self._sender.start()
        urged = 0.0
        while self._spooling and time.monotonic() < deadline:
            if time.monotonic() - urged >= 1.0:  # try the server at least every second meanwhile
                self._sender.wake(urgent=True)
                urged = time.monotonic()
            time.sleep(0.05)
        if self._spooling and self.pending() and not self._end_warned:
            self._end_warned = True
            folder = self._spool.folder if self._spool else self.path / "spool"
            warn(
                f"{self.pending()} records for {self.url} are still spooled in {folder}"
                f" (the server cannot be reached: {self._sender.last_error}). They are sent by the next "
                "process that uses this server, or now with `labledger sync --spool` once it is back."
            )
        return not self._spooling

    def close(self) -> None:
        """Send what the spool holds (``LABLEDGER_END_TIMEOUT`` at most) and let go of the spool."""
        atexit.unregister(self._at_exit)
        self._at_exit()

    def _at_exit(self) -> None:
        if self._spooling and self.pending() and not self._end_warned:
            self.wait_sent(settings.end_timeout(lenient=True))
        if self._spool is not None and not self.pending():
            self._spool.close()


if TYPE_CHECKING:

    def _implements_backend(store: RemoteStore) -> Backend:
        return store  # the type checker holds RemoteStore to the Backend protocol
