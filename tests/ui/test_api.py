"""The dashboard's JSON API (``labledger ui``) against a real store written here."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient

import labledger as ll
from labledger.ui import create_app
from labledger.ui.downsample import minmax_indices

POINTS = 600


@pytest.fixture
def filled(tmp_path: Path) -> dict[str, object]:
    """A finished run (params, a long metric, folds, tags, an artifact, a child) and a failed run."""
    store = tmp_path / "ledger"
    artifact = tmp_path / "report.csv"
    artifact.write_bytes(b"a,b\n1,2\n3,\xff\n")
    with ll.start_run("digits", name="good", store=store, params={"C": 1.5, "kernel": "rbf"}) as good:
        good.set_tags({"team": "vision"})
        for i in range(POINTS):
            good.log_metric(
                "train/loss", math.sin(i / 7) + (5.0 if i == 123 else 0.0), step=i, epoch=i // 100
            )
        good.log_metric("val/acc", 0.9, step=0)
        good.log_metric("odd", float("nan"), step=0)
        good.log_folds("accuracy", [0.9, 0.92, 0.88])
        good.log_artifact(artifact, kind="table", metadata={"rows": 2})
        with ll.start_run("digits", name="child", parent=good, store=store) as child:
            child.log_param("C", 0.5)
    with pytest.raises(ValueError), ll.start_run("digits", name="bad", store=store, params={"C": 9.0}) as bad:
        bad.log_metric("train/loss", 3.0)
        raise ValueError("C too large\nsecond line")
    return {"store": store, "good": good.id, "bad": bad.id, "child": child.id, "artifact": artifact}


@pytest.fixture
def client(filled: dict[str, object]) -> TestClient:
    return TestClient(create_app(filled["store"]))  # type: ignore[arg-type]


def test_health(client: TestClient) -> None:
    assert client.get("/api/health").json() == {"status": "ok", "version": ll.__version__}


def test_experiments_count_runs_by_status(client: TestClient) -> None:
    [exp] = client.get("/api/experiments").json()["experiments"]
    assert exp["name"] == "digits"
    assert exp["runs"] == 3
    assert exp["runs_by_status"] == {"finished": 2, "failed": 1}
    assert exp["last_activity"].endswith("Z")


def test_runs_page_round_trips_values(client: TestClient, filled: dict[str, object]) -> None:
    body = client.get("/api/runs", params={"experiment": "digits", "sort": "params.C"}).json()
    assert body["total"] == 3
    assert [r["name"] for r in body["rows"]] == ["child", "good", "bad"]
    good = body["rows"][1]
    assert good["params"] == {"C": 1.5, "kernel": "rbf"}
    assert good["tags"] == {"team": "vision"}
    assert good["metrics"]["val/acc"] == 0.9
    assert good["metrics"]["odd"] == "NaN"  # non-finite floats are strings
    assert good["folds"]["accuracy"]["n"] == 3
    assert good["error"] is None and good["start_time"].endswith("Z")
    bad = body["rows"][2]
    assert bad["status"] == "failed"
    assert bad["error"] == "ValueError: C too large"
    assert "params.kernel" in body["available_columns"]


def test_runs_filter_limit_offset_and_columns(client: TestClient) -> None:
    body = client.get(
        "/api/runs", params={"filter": "params.C > 1", "sort": "-params.C", "limit": 1, "offset": 1}
    ).json()
    assert body["total"] == 2
    assert [r["name"] for r in body["rows"]] == ["good"]
    body = client.get("/api/runs", params={"columns": "params.C,folds.accuracy", "children": "false"}).json()
    assert body["total"] == 2
    values = {r["name"]: r["values"] for r in body["rows"]}
    assert values["good"]["params.C"] == 1.5
    assert values["good"]["folds.accuracy"] == pytest.approx(0.9)
    assert "params" not in body["rows"][0]


def test_bad_filter_answers_400_with_the_position(client: TestClient) -> None:
    response = client.get("/api/runs", params={"filter": "params.C >> 1"})
    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == "filter"
    assert body["expression"] == "params.C >> 1"
    assert body["column"] == 11
    assert "column 11" in body["error"] and "^" in body["error"]
    response = client.get("/api/runs", params={"sort": "params.C desc ("})
    assert response.status_code == 400 and response.json()["parameter"] == "sort"
    assert client.get("/api/runs", params={"limit": "many"}).status_code == 400


def test_run_detail(client: TestClient, filled: dict[str, object]) -> None:
    body = client.get(f"/api/runs/{filled['good']}").json()
    overview = body["overview"]
    assert overview["status"] == "finished" and overview["name"] == "good"
    assert [c["id"] for c in overview["children"]] == [filled["child"]]
    assert body["params"] == {"C": 1.5, "kernel": "rbf"}
    assert body["metrics"]["train/loss"]["count"] == POINTS
    [folds] = body["folds"]
    assert folds["key"] == "accuracy" and folds["values"] == [0.9, 0.92, 0.88]
    assert folds["mean"] == pytest.approx(0.9)
    [art] = body["artifacts"]
    assert (art["name"], art["kind"], art["metadata"]) == ("report.csv", "table", {"rows": 2})
    assert art["size"] == filled["artifact"].stat().st_size  # type: ignore[attr-defined]
    assert "code" in body["lineage"] and "completeness" in body
    # short ids and experiment/name references resolve as ll.get_run resolves them
    assert client.get(f"/api/runs/{str(filled['good'])[:24]}").json()["overview"]["id"] == filled["good"]
    assert client.get("/api/runs/digits/bad").json()["overview"]["id"] == filled["bad"]
    assert client.get("/api/runs/digits/nope").status_code == 404
    failed = client.get(f"/api/runs/{filled['bad']}").json()["overview"]
    assert failed["error_summary"] == "ValueError: C too large"


def test_unknown_run_metric_and_artifact_answer_404(client: TestClient, filled: dict[str, object]) -> None:
    response = client.get("/api/runs/ffffffffffff")
    assert response.status_code == 404
    assert "no run matches 'ffffffffffff'" in response.json()["error"]
    assert client.get(f"/api/runs/{filled['good']}/metrics/nope").status_code == 404
    for name in ("nope.csv", "../../ledger.db", "%2e%2e/%2e%2e/etc/passwd"):
        assert client.get(f"/api/runs/{filled['good']}/artifacts/{name}").status_code == 404


def test_metric_history_equals_get_run(client: TestClient, filled: dict[str, object]) -> None:
    body = client.get(f"/api/runs/{filled['good']}/metrics/train/loss").json()
    expected = ll.get_run(filled["good"], store=filled["store"]).metric("train/loss", as_="numpy")
    assert body["downsampled"] is False and body["points"] == POINTS
    assert body["value"] == expected["value"].tolist()
    assert body["step"] == expected["step"].tolist()
    assert body["epoch"] == expected["epoch"].tolist()
    assert len(body["timestamp"]) == POINTS and body["timestamp"][0].endswith("Z")


def test_metric_downsampling_keeps_extremes_and_ends(client: TestClient, filled: dict[str, object]) -> None:
    body = client.get(f"/api/runs/{filled['good']}/metrics/train/loss", params={"max_points": 50}).json()
    expected = ll.get_run(filled["good"], store=filled["store"]).metric("train/loss", as_="numpy")
    assert body["downsampled"] is True and body["points"] == POINTS
    assert 4 <= len(body["value"]) <= 50
    assert max(body["value"]) == expected["value"].max()  # the spike at step 123 survives
    assert min(body["value"]) == expected["value"].min()
    assert body["step"][0] == 0 and body["step"][-1] == POINTS - 1
    assert body["step"] == sorted(body["step"])
    assert client.get(f"/api/runs/{filled['good']}/metrics/train/loss?max_points=2").status_code == 400


def test_minmax_indices_keeps_each_buckets_min_and_max() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_001)
    values[[17, 5000]] = np.nan
    keep = minmax_indices(values, 100)
    assert len(keep) <= 100 and keep[0] == 0 and keep[-1] == 10_000
    assert np.nanmax(values) in values[keep] and np.nanmin(values) in values[keep]
    assert minmax_indices(values[:50], 100).tolist() == list(range(50))


def test_artifact_download(client: TestClient, filled: dict[str, object]) -> None:
    response = client.get(f"/api/runs/{filled['good']}/artifacts/report.csv")
    assert response.status_code == 200
    assert response.content == filled["artifact"].read_bytes()  # type: ignore[attr-defined]
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["content-type"].startswith("text/csv")


def test_only_get(client: TestClient) -> None:
    assert client.post("/api/runs").status_code == 405
    assert client.delete(f"/api/runs/{'x' * 12}").status_code == 405


def test_serving_does_not_change_the_store(run_script, store_path: Path, tmp_path: Path) -> None:
    """Written by a process that has exited (no writer left), the store's database, its WAL and
    its blobs keep their size and mtime while every endpoint is read. (SQLite's ``-shm`` file is
    the readers' shared lock index: reading touches it by design, it holds no data.)"""
    (tmp_path / "model.bin").write_bytes(b"weights")
    done = run_script(
        """
        import labledger as ll
        with ll.start_run("digits", name="r", params={"C": 1}) as run:
            for i in range(300):
                run.log_metric("loss", 1 / (i + 1))
            run.log_folds("acc", [0.8, 0.9])
            run.log_artifact("model.bin", kind="model")
        print(run.id)
        """
    )
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()

    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in store_path.rglob("*")
            if p.is_file() and not p.name.endswith("-shm")
        }

    before = snapshot()
    assert any(name.endswith("labledger.db") for name in before)
    client = TestClient(create_app(store_path))
    for path in (
        "/api/experiments",
        "/api/runs?filter=params.C%20%3E%200&sort=-metrics.loss",
        f"/api/runs/{run_id}",
        f"/api/runs/{run_id}/metrics/loss?max_points=10",
        f"/api/runs/{run_id}/artifacts/model.bin",
        "/api/runs/nope",
    ):
        client.get(path)
    assert snapshot() == before


def test_a_missing_store_reads_as_empty(tmp_path: Path) -> None:
    client = TestClient(create_app(tmp_path / "nowhere"))
    assert client.get("/api/experiments").json() == {"experiments": []}
    assert client.get("/api/runs").json()["total"] == 0
    assert not (tmp_path / "nowhere").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_ui_command_prints_its_url_and_serves(filled: dict[str, object]) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "labledger.cli",
        "ui",
        "--store",
        str(filled["store"]),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/"
        assert url in first
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(url + "api/health", timeout=2) as response:
                    assert b'"status":"ok"' in response.read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_the_ui_command_without_the_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from labledger.cli import main
    from labledger.cli.commands import ui as ui_command

    real = ui_command.importlib.util.find_spec
    monkeypatch.setattr(
        ui_command.importlib.util, "find_spec", lambda name: None if name == "uvicorn" else real(name)
    )
    result = CliRunner().invoke(main, ["ui"])
    assert result.exit_code == 1
    assert 'pip install "labledger[ui]"' in result.output
