"""Writes that fail do not poison later writes: nothing logged during an outage is lost.

A full disk (a tiny tmpfs that is filled, then emptied) or a file-size limit
that is lifted again: what was logged meanwhile is kept, ``flush()`` says so,
and once space returns everything is in the store — metric points, params,
folds, tags, notes and the run's end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import labledger as ll
from labledger import store as store_module

from .conftest import integrity

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE and tmpfs are Linux's")

OUTAGE = """
import json, os, resource, signal, sys
import labledger as ll
from labledger import errors

store, mode = sys.argv[1], sys.argv[2]
try:
    from labledger.tracking import delivery as _delivery

    _delivery.SPILL_POINTS = 5_000  # spill early: the batches kept during the outage go to files
except ImportError:  # a release without an outbox (to show what this test checks)
    pass
StoreWriteError = getattr(errors, "StoreWriteError", errors.StoreError)
run = ll.start_run("outage", name="victim", store=store)
for i in range(1000):
    run.log_metric("loss", float(i), step=i)
run.flush()


def outage_begins():
    if mode == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        size = max(os.path.getsize(os.path.join(store, f)) for f in os.listdir(store) if "." in f)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 4096, resource.RLIM_INFINITY))
    else:
        with open(sys.argv[3], "wb", buffering=0) as f:  # fill the filesystem
            try:
                while True:
                    f.write(b"\\0" * 65536)
                    f.flush()
            except OSError:
                pass


def outage_ends():
    if mode == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    else:
        os.unlink(sys.argv[3])


outage_begins()
refused = []
step = 1000
for epoch in range(20):  # training goes on through the outage
    run.log_metrics({"loss": float(step), f"new/key-{epoch}": float(epoch)}, step=step)
    step += 1
    for _ in range(2000):
        run.log_metric("loss", float(step), step=step)
        step += 1
    if epoch == 3:
        run.log_params({"lr": 0.1, "opt": {"name": "adam"}})
        run.log_folds("acc", [0.9, 0.8, 0.85])
        run.set_tags({"stage": "outage"})
        run.note("logged while the disk was full")
    try:
        run.flush()
    except StoreWriteError as e:
        refused.append(e.pending_points)
run.log_params({"lr": 0.1})  # the same again: a no-op, not a second record
outbox = getattr(run, "_outbox", None)
spilled = [str(e.spilled) for e in (outbox.events if outbox else ()) if e.spilled is not None]
outage_ends()
run.flush()  # space is back: everything goes in, and this returns
run.end()
left = [p for p in spilled if os.path.exists(p)]
print(json.dumps({"steps": step, "refused": refused, "spilled": len(spilled), "left": left}), flush=True)
"""


def _outage(tmp_path, store, mode: str, filler=None) -> tuple[dict, str]:
    script = tmp_path / "outage.py"
    script.write_text(OUTAGE)
    env = {**os.environ, "LABLEDGER_FLUSH_INTERVAL": "0.05", "LABLEDGER_COMPLETENESS": "off"}
    env.pop("PYTHONWARNINGS", None)
    args = [sys.executable, str(script), str(store), mode] + ([str(filler)] if filler else [])
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def _check(result: dict, stderr: str, store) -> None:
    assert result["refused"], "flush() must raise StoreWriteError while the store refuses writes"
    assert result["spilled"] > 0, "batches beyond the memory limit go to spill files"
    db = str(store / "labledger.db")
    warnings = [line for line in stderr.splitlines() if "StoreWriteWarning" in line]
    assert len(warnings) == 1 and db in warnings[0], stderr[-3000:]
    assert integrity(store / "labledger.db") == "ok"
    view = ll.get_run("outage/victim", store=store)
    assert view.status == "finished"
    history = view.metric("loss")
    assert history["step"].tolist() == list(range(result["steps"])), "every point is in the store"
    assert history["value"].tolist() == [float(s) for s in range(result["steps"])]
    for epoch in range(20):
        assert view.metric(f"new/key-{epoch}")["value"].tolist() == [float(epoch)], "keys are not mixed up"
    assert view.params == {"lr": 0.1, "opt/name": "adam"}
    assert view.fold_stats[("acc", "test")]["n"] == 3
    assert view.tags == {"stage": "outage"}
    assert [n["text"] for n in view.notes] == ["logged while the disk was full"]
    assert view.summary["loss"]["count"] == result["steps"]
    assert not result["left"], "spill files are removed once the store took them"


@pytest.mark.timeout(150)
def test_a_file_size_limit_lifted_again_loses_nothing(tmp_path):
    store = tmp_path / "store"
    result, stderr = _outage(tmp_path, store, "fsize")
    _check(result, stderr, store)


@pytest.mark.timeout(150)
def test_a_full_filesystem_that_empties_again_loses_nothing(tmp_path):
    mount = tmp_path / "tiny"
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        store = mount / "store"
        result, stderr = _outage(tmp_path, store, "full", filler=mount / "filler")
        _check(result, stderr, store)
    finally:
        store_module._open.pop(store.resolve(), None)
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.timeout(60)
def test_a_rolled_back_transaction_does_not_give_its_key_ids_to_other_keys(store_path, run_script):
    """A key id made in a transaction that rolled back never names another key (in any process)."""
    run = ll.start_run("keys")
    store = ll.open_store()
    with pytest.raises(RuntimeError), store.transaction():
        run.log_metric("doomed", 1.0, step=0)
        run.flush()
        raise RuntimeError("the bulk recording fails")
    other = run_script(
        """
        import labledger as ll
        with ll.start_run("keys", name="other") as r:
            r.log_metric("theirs", 2.0, step=0)
        """
    )
    assert other.returncode == 0, other.stderr
    run.log_metric("doomed", 3.0, step=1)
    run.log_metric("mine", 4.0, step=0)
    run.end()
    view = ll.get_run(run.id)
    # the rolled-back point is gone with its transaction
    assert view.metric("doomed")["value"].tolist() == [3.0]
    assert view.metric("mine")["value"].tolist() == [4.0]
    assert "theirs" not in view.summary
    assert ll.get_run("keys/other").metric("theirs")["value"].tolist() == [2.0]
    assert ll.get_run("keys/other").summary.keys() == {"theirs"}


EXIT_IN_OUTAGE = """
import resource, signal, sys, time
import labledger as ll
from labledger.tracking import delivery as _delivery

_delivery.SPILL_POINTS = 1_000
store = sys.argv[1]
run = ll.start_run("outage", name="gone", store=store)
for i in range(1000):
    run.log_metric("loss", float(i), step=i)
run.flush()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, resource.RLIM_INFINITY))  # the database cannot grow
for i in range(1000, 31000):
    run.log_metric("loss", float(i), step=i)
    if i % 500 == 0:
        time.sleep(0.06)  # batches of about 500 points: each spill file fits under the limit
    if i == 5000:
        run.log_params({"lr": 0.1, "opt": {"name": "adam"}})
        run.log_folds("acc", [0.9, 0.8, float("nan")])
        run.set_tags({"stage": "outage"})
        run.note("logged while the disk was full")
print(run.id, flush=True)
# the process exits while the store still refuses writes: the run is never ended in the store
"""


@pytest.mark.timeout(120)
def test_metric_points_a_process_could_not_write_before_exit_are_imported_by_fsck_repair(tmp_path):
    """Exiting during an outage keeps every logged record in spill files — metric points, params,
    folds, tags, notes and the run's end — which ``fsck --repair`` writes into the store once it
    takes writes: nothing acknowledged is lost."""
    from labledger.store.fsck import fsck

    store = tmp_path / "store"
    script = tmp_path / "exit_in_outage.py"
    script.write_text(EXIT_IN_OUTAGE)
    env = {**os.environ, "LABLEDGER_FLUSH_INTERVAL": "0.05", "LABLEDGER_COMPLETENESS": "off"}
    env.pop("PYTHONWARNINGS", None)
    done = subprocess.run([sys.executable, str(script), str(store)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    run_id = done.stdout.split()[0]
    assert "fsck --repair" in done.stderr and "spill files" in done.stderr, done.stderr[-3000:]
    before = ll.get_run(run_id, store=store)
    assert before.status == "crashed" and before.summary["loss"]["count"] == 1000

    found = fsck(store)
    spills = [p for p in found.problems if p.kind == "unwritten record"]
    assert spills and not found.ok and all(run_id in p.detail and p.repairable for p in spills)
    assert found.checked["spills"] == len(spills)
    repaired = fsck(store, repair=True)
    assert repaired.ok and all(p.repaired for p in repaired.problems), repaired.render()
    view = ll.get_run(run_id, store=store)
    history = view.metric("loss")
    assert history["step"].tolist() == list(range(31000)), "every logged point is in the store"
    assert history["value"].tolist() == [float(s) for s in range(31000)]
    assert view.summary["loss"]["count"] == 31000 and view.summary["loss"]["last"] == 30999.0
    assert view.params == {"lr": 0.1, "opt/name": "adam"} and view.tags == {"stage": "outage"}
    assert view.fold_stats[("acc", "test")]["n"] == 3
    assert [n["text"] for n in view.notes] == ["logged while the disk was full"]
    assert view.status == "finished", "the run's end, spilled last, is written last"
    assert not list((store / "spool").iterdir()), "imported spill files are removed"
    again = fsck(store, repair=True)
    assert again.ok and again.checked["spills"] == 0
    assert integrity(store / "labledger.db") == "ok"
