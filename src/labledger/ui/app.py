"""The ASGI app: :func:`create_app` serves a store read-only: HTML pages and a JSON API (Starlette).

Pages (see :mod:`labledger.ui.pages`): ``/``, ``/experiments/{name}``,
``/experiments/{name}/journal``, ``/runs/{run_id}``, ``/compare``; static files under
``/static``. API routes (GET only; anything else answers 405):

- ``/api/health``: status and labledger's version
- ``/api/experiments``: experiments with run counts by status
- ``/api/runs``: a page of runs (``experiment``, ``filter``, ``sort``, ``limit``, ``offset``,
  ``columns``, ``children``)
- ``/api/runs/{run_id}`` or ``/api/runs/{experiment}/{name}``: one run (``?brief=1``: without
  the online report and the error analysis)
- ``/api/runs/{run_id}/metrics/{key}``: a metric's history (downsampled past ``max_points``)
- ``/api/runs/{run_id}/artifacts/{name}``: an artifact's bytes (``?inline=1``: shown in the
  page rather than downloaded, for images)
- ``/api/compare?runs=a,b[&metric=m]``: runs side by side with the paired tests' verdicts

Errors answer ``{"error": message, ...}``: 400 for a bad parameter or filter (with
``parameter``, ``column`` and ``problem`` for a filter), 404 for an unknown run,
metric or artifact. See ``docs/ui.md``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import labledger
from labledger.errors import ArtifactCorruptError, LabledgerError, RunNotFoundError
from labledger.query.filters import FilterSyntaxError
from labledger.query.runs import get_run
from labledger.store import open_store
from labledger.ui.compare_view import compare_data
from labledger.ui.encoding import ApiResponse, error_response
from labledger.ui.listing import experiments_list
from labledger.ui.listing import runs_page as api_runs_page
from labledger.ui.metrics import metric_history
from labledger.ui.pages import compare_page, experiments_page, journal_page, run_page, runs_page
from labledger.ui.previews import INLINE_TYPES
from labledger.ui.run_detail import run_detail
from labledger.ui.security import SecurityHeaders

if TYPE_CHECKING:
    from labledger.store.backend import Backend

__all__ = ["BadParameter", "create_app"]

MAX_LIMIT = 1000


class BadParameter(ValueError):
    """A query parameter the API cannot use: answers 400 naming it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"query parameter {name!r}: {problem}")
        self.name = name


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(name, f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise BadParameter(name, f"{value} is outside {low}..{high}")
    return value


def _store(request: Request) -> Backend:
    store: Backend = request.app.state.store
    return store


def health(request: Request) -> Response:
    return ApiResponse({"status": "ok", "version": labledger.__version__})


def list_experiments(request: Request) -> Response:
    return ApiResponse({"experiments": experiments_list(_store(request))})


def list_runs(request: Request) -> Response:
    q = request.query_params
    columns = [c.strip() for c in q.get("columns", "").split(",") if c.strip()]
    children = q.get("children", "true").lower()
    if children not in ("true", "false", "1", "0"):
        raise BadParameter("children", f"{children!r} is not true or false")
    page = api_runs_page(
        _store(request),
        q.get("experiment") or None,
        where=q.get("filter") or None,
        order_by=q.get("sort") or None,
        limit=_int(request, "limit", 50, 0, MAX_LIMIT),
        offset=_int(request, "offset", 0, 0, 2**62),
        columns=columns or None,
        include_children=children in ("true", "1"),
    )
    return ApiResponse(page)


def show_run(request: Request) -> Response:
    """One run by id or unique id prefix; ``/api/runs/{experiment}/{name}`` also names one.
    ``?brief=1`` leaves out the online report and the error analysis (a live page's poll)."""
    p = request.path_params
    ref = f"{p['experiment']}/{p['name']}" if "experiment" in p else p["run_id"]
    brief = request.query_params.get("brief") in ("1", "true")
    return ApiResponse(run_detail(get_run(ref, _store(request)), analyses=not brief))


def show_metric(request: Request) -> Response:
    run = get_run(request.path_params["run_id"], _store(request))
    key = request.path_params["key"]
    if key not in run.summary:
        return error_response(
            404, f"run {run.id} has no metric {key!r}", run_id=run.id, metrics=list(run.summary)
        )
    max_points = _int(request, "max_points", 2000, 4, 1_000_000)
    return ApiResponse({"run_id": run.id, "key": key, **metric_history(run, key, max_points)})


def download_artifact(request: Request) -> Response:
    run = get_run(request.path_params["run_id"], _store(request))
    name = request.path_params["name"]
    found = [a for a in run.artifacts if a.name == name]  # only names the run lists, never a path
    if not found:
        return error_response(
            404,
            f"run {run.id} has no artifact {name!r}",
            run_id=run.id,
            artifacts=[a.name for a in run.artifacts],
        )
    artifact = found[0]
    if artifact.is_dir:
        return error_response(
            400, f"artifact {name!r} is a directory; download its files with the Python API"
        )
    media_type = artifact.media_type or "application/octet-stream"
    if Path(name).suffix.lower() == ".svg":
        media_type = "image/svg+xml"
    inline = request.query_params.get("inline") in ("1", "true") and media_type in INLINE_TYPES
    return FileResponse(
        artifact.path,
        media_type=media_type,
        filename=Path(name).name or "artifact",
        content_disposition_type="inline" if inline else "attachment",
    )


def compare_runs(request: Request) -> Response:
    refs = [r for r in request.query_params.get("runs", "").split(",") if r.strip()]
    if len(refs) < 2:
        raise BadParameter("runs", "give at least two runs, comma-separated")
    metric = request.query_params.get("metric") or None
    return ApiResponse(compare_data(_store(request), refs, metric, request.query_params.get("split", "test")))


def _filter_error(request: Request, e: Exception) -> Response:
    assert isinstance(e, FilterSyntaxError)
    q = request.query_params
    parameter = next((p for p in ("filter", "sort", "columns") if q.get(p) == e.expression), "filter")
    return error_response(
        400, str(e), parameter=parameter, expression=e.expression, column=e.column, problem=e.problem
    )


def _not_found(request: Request, e: Exception) -> Response:
    assert isinstance(e, RunNotFoundError)
    return error_response(404, str(e), ref=e.ref, candidates=e.candidates)


def _bad_request(request: Request, e: Exception) -> Response:
    return error_response(400, str(e))


def _corrupt(request: Request, e: Exception) -> Response:
    return error_response(500, str(e))


def create_app(store: str | os.PathLike[str] | None = None, *, debug: bool = False) -> Starlette:
    """A Starlette app serving the store at ``store`` read-only (never created nor changed).

    :param store: a store folder or URI; default ``$LABLEDGER_STORE`` or ``./.labledger``.
        A missing store reads as empty.
    :param debug: Starlette's debug mode (tracebacks in error pages).

    >>> from starlette.testclient import TestClient
    >>> client = TestClient(create_app("/tmp/ledger"))             # doctest: +SKIP
    >>> client.get("/api/runs", params={"filter": "params.C > 1"}).json()["total"]  # doctest: +SKIP
    3
    """
    routes = [
        Route("/api/health", health, methods=["GET"]),
        Route("/api/experiments", list_experiments, methods=["GET"]),
        Route("/api/runs", list_runs, methods=["GET"]),
        Route("/api/runs/{run_id}", show_run, methods=["GET"]),
        Route("/api/runs/{experiment}/{name}", show_run, methods=["GET"]),
        Route("/api/runs/{run_id}/metrics/{key:path}", show_metric, methods=["GET"]),
        Route("/api/runs/{run_id}/artifacts/{name:path}", download_artifact, methods=["GET"]),
        Route("/api/compare", compare_runs, methods=["GET"]),
        Route("/", experiments_page, methods=["GET"]),
        Route("/experiments/{name:path}/journal", journal_page, methods=["GET"]),
        Route("/experiments/{name:path}", runs_page, methods=["GET"]),
        Route("/runs/{run_id}", run_page, methods=["GET"]),
        Route("/compare", compare_page, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("labledger.ui", "static")]), name="static"),
    ]
    handlers: dict[Any, Any] = {
        FilterSyntaxError: _filter_error,
        RunNotFoundError: _not_found,
        ArtifactCorruptError: _corrupt,
        BadParameter: _bad_request,
        LabledgerError: _bad_request,
    }
    app = Starlette(
        debug=debug, routes=routes, exception_handlers=handlers, middleware=[Middleware(SecurityHeaders)]
    )
    app.state.store = open_store(store, create=False)
    return app
