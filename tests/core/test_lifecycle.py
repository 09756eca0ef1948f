"""Run status in real processes: failed, killed by SIGTERM, crashed after SIGKILL, ended at exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import labledger as ll

FLUSH = 0.2


def _only_run(experiment: str) -> ll.RunView:
    df = ll.runs(experiment)
    assert len(df) == 1, df
    return ll.get_run(df["id"].iloc[0])


def test_exception_in_with_block_marks_failed_with_traceback(run_script):
    proc = run_script(
        """
        import labledger as ll
        try:
            with ll.start_run("lifecycle") as run:
                run.log_metric("loss", 0.5)
                raise ValueError("diverged at step 7")
        except ValueError:
            pass
        """
    )
    assert proc.returncode == 0, proc.stderr
    view = _only_run("lifecycle")
    assert view.status == "failed"
    assert "ValueError: diverged at step 7" in view.error and "Traceback" in view.error
    assert view.summary["loss"]["last"] == 0.5


def test_uncaught_exception_outside_with_marks_failed_at_exit(run_script):
    proc = run_script(
        """
        import labledger as ll
        run = ll.start_run("lifecycle")
        run.log_metric("loss", 0.5)
        raise RuntimeError("boom")
        """
    )
    assert proc.returncode == 1 and "RuntimeError: boom" in proc.stderr
    view = _only_run("lifecycle")
    assert view.status == "failed" and "RuntimeError: boom" in view.error
    assert view.summary["loss"]["count"] == 1


def test_run_left_open_is_finished_and_flushed_at_exit(run_script):
    proc = run_script(
        """
        import labledger as ll
        run = ll.start_run("lifecycle")
        for i in range(5000):
            run.log_metric("loss", 1.0 / (i + 1))
        """
    )
    assert proc.returncode == 0, proc.stderr
    view = _only_run("lifecycle")
    assert view.status == "finished" and view.summary["loss"]["count"] == 5000


def test_keyboard_interrupt_marks_killed(run_script):
    proc = run_script(
        """
        import labledger as ll
        with ll.start_run("lifecycle") as run:
            run.log_metric("loss", 0.5)
            raise KeyboardInterrupt
        """
    )
    assert proc.returncode != 0
    view = _only_run("lifecycle")
    assert view.status == "killed" and "KeyboardInterrupt" in view.error


def _spawn(tmp_path, store_path, code: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "LABLEDGER_STORE": str(store_path), "LABLEDGER_FLUSH_INTERVAL": str(FLUSH)}
    return subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


LOGGING_CHILD = """
import sys, time
import labledger as ll
run = ll.start_run("lifecycle")
for i in range(2000):
    run.log_metric("early", float(i), step=i)
time.sleep({wait})                 # more than one flush window
print("ready", flush=True)
i = 0
while True:                        # keep logging until killed
    run.log_metric("late", float(i), step=i)
    i += 1
    if i % 1000 == 0:
        time.sleep(0.001)
"""


def test_sigterm_marks_killed_and_flushes_everything(tmp_path, store_path):
    with _spawn(tmp_path, store_path, LOGGING_CHILD.format(wait=FLUSH * 3)) as proc:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    view = _only_run("lifecycle")
    assert view.status == "killed"
    assert view.summary["early"]["count"] == 2000
    late = view.metric("late")
    # everything logged before the signal was flushed: the late series has no gaps
    assert len(late) > 0 and late["step"].tolist() == list(range(len(late)))


def test_sigkill_leaves_a_crashed_run_with_data_older_than_one_flush_window(tmp_path, store_path):
    with _spawn(tmp_path, store_path, LOGGING_CHILD.format(wait=FLUSH * 5)) as proc:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    store = ll.open_store(store_path)
    if isinstance(store, ll.Store):  # the SQLite file itself is sound
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    view = _only_run("lifecycle")
    assert view.status == "crashed"
    hist = view.metric("early")
    assert hist["step"].tolist() == list(range(2000))


@pytest.mark.sqlite_only
def test_stale_heartbeat_from_another_host_counts_as_crashed(monkeypatch):
    run = ll.start_run("lifecycle")
    run.log_metric("m", 1.0)
    run.flush()
    with run.store.write() as conn:
        conn.execute(
            "UPDATE runs SET host = 'elsewhere', heartbeat = heartbeat - 120 WHERE id = ?", (run.id,)
        )
    monkeypatch.setenv("LABLEDGER_HEARTBEAT_TIMEOUT", "60")
    assert ll.get_run(run.id).status == "crashed"
    # the process was alive after all: its next heartbeat revives the run
    run.store.heartbeat(run.id)
    assert run.store.query("SELECT status FROM runs WHERE id = ?", (run.id,))[0][0] == "running"
    run.end()
    assert ll.get_run(run.id).status == "finished"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_cannot_write_the_parents_run(run):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            run.log_metric("m", 1.0)
            os.write(w, b"wrote")
        except ll.errors.LabledgerError as e:
            os.write(w, b"refused" if "forked" in str(e) else b"other")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(r, 100) == b"refused"
    run.log_metric("m", 1.0)
    run.end()
    assert ll.get_run(run.id).summary["m"]["count"] == 1
