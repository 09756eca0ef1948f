"""The dashboard's HTML pages, rendered on the server from the same data as the JSON API.

- ``/``: experiments (``?q=`` searches names and descriptions)
- ``/experiments/{name}``: its runs (``filter``, ``sort``, ``columns``, ``offset``, ``limit``,
  ``selected``, ``flat``: all of the page's state lives in the URL)
- ``/runs/{run_id}``: one run (its charts follow a running run live)
- ``/compare?runs=a,b[&metric=m]``: runs side by side with the paired tests' verdicts

Charts are drawn in the browser (``static/*.js``) from the JSON API.

>>> client.get("/experiments/digits", params={"filter": "params.C > 1"}).status_code  # doctest: +SKIP
200
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

from labledger.errors import LabledgerError, RunNotFoundError
from labledger.query.filters import FilterSyntaxError
from labledger.query.runs import get_run
from labledger.ui.compare_view import compare_data, experiment_points
from labledger.ui.journal_page import journal_data
from labledger.ui.listing import every_run, experiments_list, headlines
from labledger.ui.previews import diff_lines, preview_kind, table_preview
from labledger.ui.run_detail import run_detail
from labledger.ui.runs_table import runs_table
from labledger.ui.templating import render

if TYPE_CHECKING:
    from starlette.requests import Request

    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["compare_page", "experiments_page", "journal_page", "run_page", "runs_page"]

PAGE_SIZES = (25, 50, 100, 200)


def _store(request: Request) -> Backend:
    store: Backend = request.app.state.store
    return store


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status)


def experiments_page(request: Request) -> HTMLResponse:
    st = _store(request)
    q = request.query_params.get("q", "").strip()
    runs = every_run(st)  # one listing for the counts and the headlines
    found = experiments_list(st, runs)
    if q:
        low = q.lower()
        found = [e for e in found if low in e["name"].lower() or low in (e["description"] or "").lower()]
    return _page("experiments.html", experiments=found, headlines=headlines(st, runs), q=q)


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        value = int(text) if text else default
    except ValueError:
        return default
    return min(max(value, low), high)


def runs_page(request: Request) -> HTMLResponse:
    return _runs_page(request, request.path_params["name"])


def _runs_page(request: Request, experiment: str) -> HTMLResponse:
    st = _store(request)
    q = request.query_params
    state: dict[str, Any] = {
        "filter": q.get("filter", "").strip(),
        "sort": q.get("sort", "").strip(),
        "columns": q.get("columns", "").strip(),
        "limit": _int(q.get("limit"), 50, 1, max(PAGE_SIZES)),
        "offset": _int(q.get("offset"), 0, 0, 2**62),
        "selected": [s for s in q.get("selected", "").split(",") if s],
        "flat": q.get("flat", "") in ("1", "true", "on"),
    }
    columns = [c.strip() for c in state["columns"].split(",") if c.strip()] if state["columns"] else None
    error: FilterSyntaxError | None = None
    table: dict[str, Any] | None = None
    try:
        table = runs_table(
            st,
            experiment,
            where=state["filter"] or None,
            order_by=state["sort"] or None,
            columns=columns,
            offset=state["offset"],
            limit=state["limit"],
            flat=state["flat"],
        )
    except FilterSyntaxError as e:
        error = e
    known = table is None or table["total"] or state["filter"]
    if not known and experiment not in {e["name"] for e in experiments_list(st)}:
        return _page("missing.html", 404, what=f"experiment {experiment!r}", hint="See all experiments.")

    def link(**change: Any) -> str:
        merged = {**state, **change}
        query = {
            "filter": merged["filter"],
            "sort": merged["sort"],
            "columns": merged["columns"],
            "offset": merged["offset"] or "",
            "limit": merged["limit"] if merged["limit"] != 50 else "",
            "selected": ",".join(merged["selected"]),
            "flat": "1" if merged["flat"] else "",
        }
        return "?" + urlencode({k: v for k, v in query.items() if v not in ("", None)})

    return _page(
        "runs.html",
        status=400 if error else 200,
        experiment=experiment,
        state=state,
        table=table,
        error=error,
        link=link,
        page_sizes=PAGE_SIZES,
    )


def journal_page(request: Request) -> HTMLResponse:
    st = _store(request)
    experiment = request.path_params["name"]
    q = request.query_params
    try:
        data = journal_data(st, experiment, q.get("metric") or None, q.get("split") or "test")
    except RunNotFoundError:
        named = f"{experiment}/journal"  # an experiment whose own name ends in /journal: its runs
        if named in {e["name"] for e in experiments_list(st)}:
            return _runs_page(request, named)
        return _page("missing.html", 404, what=f"experiment {experiment!r}", hint="See all experiments.")
    return _page("journal.html", journal=data)


def _artifacts(run: RunView, detail: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    by_name = {a.name: a for a in run.artifacts}
    for a in detail["artifacts"]:
        kind = preview_kind(a["name"], a["media_type"], a["is_dir"])
        item: dict[str, Any] = {**a, "preview": kind}
        path = by_name[a["name"]].path
        if kind == "table":
            item["table"] = table_preview(path, a["name"])
        elif kind == "diff":
            item["diff"] = diff_lines(path)
        out.append(item)
    return out


def run_page(request: Request) -> HTMLResponse:
    st = _store(request)
    try:
        run = get_run(request.path_params["run_id"], st)
    except LabledgerError as e:
        return _page("missing.html", 404, what=f"run {request.path_params['run_id']!r}", hint=str(e))
    detail = run_detail(run)
    parent = None
    if run.parent_id:
        row = st.run_row(run.parent_id)
        parent = {"id": run.parent_id, "name": row["name"] if row else run.parent_id}
    return _page(
        "run.html",
        run=detail,
        overview=detail["overview"],
        parent=parent,
        artifacts=_artifacts(run, detail),
        chart_data={
            "run_id": run.id,
            "status": run.status,
            "metrics": list(detail["metrics"]),
            "folds": detail["folds"],
        },
    )


def compare_page(request: Request) -> HTMLResponse:
    st = _store(request)
    refs = [r for r in request.query_params.get("runs", "").split(",") if r.strip()]
    metric = request.query_params.get("metric") or None
    if len(refs) < 2:
        return _page("compare.html", 400, problem="choose at least two runs to compare", data=None, refs=refs)
    try:
        data = compare_data(st, refs, metric)
    except (LabledgerError, ValueError) as e:
        return _page("compare.html", 400, problem=str(e), data=None, refs=refs)
    experiment = data["runs"][0]["experiment"]
    points = experiment_points(st, experiment, [r["id"] for r in data["runs"]])
    return _page(
        "compare.html",
        problem=None,
        data=data,
        refs=refs,
        metric=metric,
        experiment=experiment,
        chart_data={"runs": data["runs"], "points": points, "metric": metric},
    )
