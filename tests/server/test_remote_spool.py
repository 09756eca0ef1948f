"""Training against a labledger server that goes away: nothing is lost, training never waits.

Real training scripts in their own processes (``LABLEDGER_STORE=http://127.0.0.1:<port>``)
against a real server process the test kills (SIGKILL) and restarts on the same port.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from labledger.cli.app import main
from labledger.store import open_store

from .remote_helpers import LedgerServer, start_script, wait_for

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

#: Each phase logs this many steps of two keys, then waits for the test's go-ahead.
STEPS = 2000
SCRIPT = """
    import os, sys, time
    from pathlib import Path
    import labledger as ll

    STEPS = int(os.environ["STEPS"])
    marks = Path(os.environ["MARKS"])
    phases = int(os.environ["PHASES"])
    run = ll.start_run("resilience", params={"phases": phases})
    (marks / "run_id").write_text(run.id)
    step = 0
    for phase in range(phases):
        for _ in range(STEPS):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
            run.log_metric("acc", float(step), step=step)
            step += 1
        run.set_tag("phase", str(phase))
        run.note(f"phase {phase} logged")
        while True:  # flush() raises while records wait in memory (a full spool): they are retried
            try:
                run.flush()
                break
            except ll.errors.StoreWriteError:
                time.sleep(0.1)
        (marks / f"logged.{phase}").write_text(str(step))
        while not (marks / f"go.{phase}").exists():
            time.sleep(0.01)
    run.end()
    print("ENDED", flush=True)
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LedgerServer]:
    with LedgerServer(tmp_path / "server-store") as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, server: LedgerServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    marks = tmp_path / "marks"
    marks.mkdir()
    values = {
        "LABLEDGER_STORE": server.url,
        "LABLEDGER_CACHE": str(tmp_path / "cache"),
        "LABLEDGER_FLUSH_INTERVAL": "0.05",
        "MARKS": str(marks),
        "PHASES": "3",
        "STEPS": str(STEPS),
    }
    monkeypatch.setenv("LABLEDGER_CACHE", values["LABLEDGER_CACHE"])
    return values


def _stored(server: LedgerServer, run_id: str) -> tuple[dict[str, int], str, list[str]]:
    store = open_store(server.store)
    row = store.run_row(run_id)
    assert row is not None
    notes = [n["text"] for n in store.note_rows(run_id)]
    return dict(store.metric_sizes(run_id)), row["status"], notes


def _go(marks: Path, phase: int) -> None:
    (marks / f"go.{phase}").write_text("")


def _spooled(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").rglob("*.rec"))


def test_a_server_killed_mid_run_and_restarted_gets_every_point(tmp_path, server, env):
    marks = Path(env["MARKS"])
    script = start_script(tmp_path, SCRIPT, env)
    wait_for(marks / "logged.0", script)
    server.kill()
    _go(marks, 0)
    wait_for(marks / "logged.1", script)  # logged and flushed while the server is gone: spooled
    assert _spooled(tmp_path), "the records of phase 1 were not spooled"
    server.start()
    _go(marks, 1)
    wait_for(marks / "logged.2", script)
    _go(marks, 2)
    out, err = script.communicate(timeout=60)
    assert script.returncode == 0, err
    assert "ENDED" in out
    assert "spooled on disk" in err  # one warning when the server went away
    run_id = (marks / "run_id").read_text()
    sizes, status, notes = _stored(server, run_id)
    assert sizes == {"loss": 3 * STEPS, "acc": 3 * STEPS}  # every point, none twice
    assert status == "finished"
    assert notes == ["phase 0 logged", "phase 1 logged", "phase 2 logged"]
    assert not _spooled(tmp_path)


def test_a_server_down_at_the_end_leaves_the_spool_for_sync_spool(tmp_path, server, env):
    marks = Path(env["MARKS"])
    script = start_script(tmp_path, SCRIPT, {**env, "PHASES": "2", "LABLEDGER_END_TIMEOUT": "1"})
    wait_for(marks / "logged.0", script)
    server.kill()
    _go(marks, 0)
    wait_for(marks / "logged.1", script)
    _go(marks, 1)
    _, err = script.communicate(timeout=60)
    assert script.returncode == 0, err
    assert "labledger sync --spool" in err
    assert err.count("labledger sync --spool") == 1  # one warning
    left = _spooled(tmp_path)
    assert left, "nothing was left in the spool"
    run_id = (marks / "run_id").read_text()
    assert _stored(server, run_id)[0] == {"loss": STEPS, "acc": STEPS}

    server.start()
    result = CliRunner().invoke(main, ["sync", "--spool"])
    assert result.exit_code == 0, result.output
    assert f"{len(left)} records sent, 0 refused, 0 left" in result.output
    sizes, status, _ = _stored(server, run_id)
    assert sizes == {"loss": 2 * STEPS, "acc": 2 * STEPS}
    assert status == "finished"
    assert not _spooled(tmp_path)
    again = CliRunner().invoke(main, ["sync", "--spool"])
    assert again.exit_code == 0, again.output


def test_a_full_spool_warns_and_loses_nothing_once_the_server_is_back(tmp_path, server, env):
    marks = Path(env["MARKS"])
    script = start_script(tmp_path, SCRIPT, {**env, "LABLEDGER_SPOOL_MAX": "4000"})
    wait_for(marks / "logged.0", script)
    server.kill()
    _go(marks, 0)
    # phase 1 cannot be spooled whole: the run keeps the rest in memory and retries it
    time.sleep(2.0)
    server.start()
    wait_for(marks / "logged.1", script)
    _go(marks, 1)
    wait_for(marks / "logged.2", script)
    _go(marks, 2)
    _, err = script.communicate(timeout=60)
    assert "spool of records for the unreachable server is full" in err
    assert 1 <= err.count("LABLEDGER_SPOOL_MAX): new records wait in memory") <= 2  # ours, the run's
    run_id = (marks / "run_id").read_text()
    sizes, status, notes = _stored(server, run_id)
    assert sizes == {"loss": 3 * STEPS, "acc": 3 * STEPS}
    assert status == "finished"
    assert len(notes) == 3


def test_records_acknowledged_to_the_spool_survive_sigkill(tmp_path, server, env):
    marks = Path(env["MARKS"])
    script = start_script(tmp_path, SCRIPT, env)
    wait_for(marks / "logged.0", script)
    server.kill()
    _go(marks, 0)
    wait_for(marks / "logged.1", script)  # flush() returned: phase 1 is on disk
    script.send_signal(signal.SIGKILL)
    script.communicate(timeout=30)
    spooled = _spooled(tmp_path)
    assert spooled
    server.start()
    result = CliRunner().invoke(main, ["sync", "--spool", "--to", server.url])
    assert result.exit_code == 0, result.output
    run_id = (marks / "run_id").read_text()
    sizes, status, notes = _stored(server, run_id)
    assert sizes == {"loss": 2 * STEPS, "acc": 2 * STEPS}
    assert notes == ["phase 0 logged", "phase 1 logged"]
    assert status in ("running", "crashed")  # its process is gone: it never ended
    assert not _spooled(tmp_path)


def test_a_later_process_sends_what_a_killed_one_spooled(tmp_path, server, env, run_script):
    marks = Path(env["MARKS"])
    script = start_script(tmp_path, SCRIPT, env)
    wait_for(marks / "logged.0", script)
    server.kill()
    _go(marks, 0)
    wait_for(marks / "logged.1", script)
    os.kill(script.pid, signal.SIGKILL)
    script.communicate(timeout=30)
    server.start()
    later = run_script(
        """
        import time
        import labledger as ll
        from labledger.store import open_store
        with ll.start_run("later") as run:
            run.log_metric("x", 1.0)
        store = open_store()
        deadline = time.monotonic() + 30
        while store.pending() or list(store.path.rglob("*.rec")):
            assert time.monotonic() < deadline, "the leftover spool was not sent"
            time.sleep(0.1)
        """,
        env=env,
    )
    assert later.returncode == 0, later.stderr
    run_id = (marks / "run_id").read_text()
    assert _stored(server, run_id)[0] == {"loss": 2 * STEPS, "acc": 2 * STEPS}
