"""Damaged rows give a marked field and one line naming the run and field, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import labledger as ll
from labledger.errors import ArtifactCorruptError
from labledger.query import damage as _damage
from labledger.query.damage import DamagedRecordWarning, DamagedValue
from labledger.store.sqlite import DB_FILENAME


@pytest.fixture
def damaged(store_path: Path, tmp_path: Path) -> str:
    """A finished run whose params, source, environment, lineage, artifact metadata, dataset
    summary and artifact digest were damaged outside labledger, and one of whose blobs is gone."""
    (tmp_path / "model.bin").write_bytes(b"weights")
    (tmp_path / "notes.txt").write_text("notes")
    with ll.start_run("damaged", name="hurt") as run:
        run.log_params({"lr": 0.1, "C": 2.0})
        run.log_metric("loss", 0.5)
        run.log_artifact(tmp_path / "model.bin", kind="model")
        run.log_artifact(tmp_path / "notes.txt", kind="other")
        run.log_artifact(tmp_path / "model.bin", kind="model", name="copy.bin")
        run.log_dataset("train", fingerprint="abc", role="train", rows=3)
        run.flush()  # the start-up lineage capture is stored before the damage is done
    conn = sqlite3.connect(store_path / DB_FILENAME)
    conn.execute("DROP TRIGGER params_immutable")
    conn.execute("UPDATE params SET value = '{broken' WHERE run_id = ? AND key = 'lr'", (run.id,))
    conn.execute(
        "UPDATE runs SET source = 'not json', environment = '[1,', lineage = '{' WHERE id = ?", (run.id,)
    )
    conn.execute("UPDATE artifacts SET metadata = 'x' WHERE run_id = ? AND name = 'model.bin'", (run.id,))
    conn.execute(
        "UPDATE artifacts SET sha256 = 'zz-not-hex' WHERE run_id = ? AND name = 'copy.bin'", (run.id,)
    )
    conn.execute("UPDATE datasets SET summary = '{{' WHERE run_id = ?", (run.id,))
    (sha,) = conn.execute(
        "SELECT sha256 FROM artifacts WHERE run_id = ? AND name = 'notes.txt'", (run.id,)
    ).fetchone()
    conn.commit()
    conn.close()
    (store_path / "artifacts" / sha[:2] / sha[2:]).unlink()
    _damage.forget()
    return run.id


@pytest.mark.timeout(30)
def test_the_python_api_reads_what_is_intact_and_marks_what_is_not(damaged):
    view = ll.get_run(damaged)
    with pytest.warns(DamagedRecordWarning, match=rf"run {damaged}: params\['lr'\] is damaged"):
        params = view.params
    assert params["C"] == 2.0 and isinstance(params["lr"], DamagedValue) and str(params["lr"]) == "<damaged>"
    with pytest.warns(DamagedRecordWarning, match="source is damaged"):
        assert view.source == {}
    with pytest.warns(DamagedRecordWarning):
        assert view.environment == {} and view.lineage == {}
    with pytest.warns(DamagedRecordWarning) as caught:
        arts = {a.name: a for a in view.artifacts}
    fields = sorted(w.message.field for w in caught)  # type: ignore[union-attr]
    assert fields == ["artifacts['copy.bin'].sha256", "artifacts['model.bin'].metadata"]
    assert arts["model.bin"].metadata == {}
    with arts["model.bin"].open() as f:
        assert f.read() == b"weights"
    with pytest.raises(ArtifactCorruptError, match=r"copy\.bin"):
        arts["copy.bin"].open()
    with pytest.raises(ArtifactCorruptError, match="missing"):
        arts["notes.txt"].open()
    with pytest.warns(DamagedRecordWarning, match="summary"):
        assert view.datasets[0]["summary"] == {} and view.datasets[0]["fingerprint"] == "abc"
    data = view.to_dict()
    json.dumps(data)  # every field is JSON, the damaged ones marked
    assert data["params"]["lr"] == "<damaged>" and data["summary"]["loss"]["last"] == 0.5
    assert {"params['lr']", "source", "environment", "lineage", "artifacts['copy.bin'].sha256"} <= set(
        data["damaged"]
    )
    _damage.forget()
    with pytest.warns(DamagedRecordWarning):
        frame = ll.runs("damaged")
    assert frame["params.C"].tolist() == [2.0] and str(frame["params.lr"].iloc[0]) == "<damaged>"


def _cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from labledger.cli import main; main()", *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.timeout(60)
def test_the_cli_shows_the_run_with_the_damage_marked_and_one_line_per_field(damaged, store_path):
    listed = _cli("runs", store=store_path)
    assert listed.returncode == 0, listed.stderr
    assert "hurt" in listed.stdout and "<damaged>" in listed.stdout
    assert "Traceback" not in listed.stderr
    errors = listed.stderr.strip().splitlines()
    assert errors == [line for line in errors if line.startswith("Error: run ")]
    assert any(f"run {damaged}: params['lr'] is damaged" in line for line in errors), errors

    shown = _cli("show", "damaged/hurt", store=store_path)
    assert shown.returncode == 0, shown.stderr
    assert "Traceback" not in shown.stderr
    out = shown.stdout
    assert "<damaged>" in out and "damaged     " in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert lines["notes.txt"].rstrip().endswith("missing") and lines["copy.bin"].rstrip().endswith("damaged")
    assert lines["model.bin"].rstrip().endswith("ok")
    errors = shown.stderr.strip().splitlines()
    assert all(line.startswith(f"Error: run {damaged}: ") for line in errors), errors
    for field in ("params['lr']", "source", "environment", "lineage", "artifacts['notes.txt']"):
        assert any(f": {field} is damaged" in line for line in errors), (field, errors)

    as_json = _cli("show", "damaged/hurt", "--json", store=store_path)
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["params"]["lr"] == "<damaged>"
