"""Plugins run outside labledger's locks: a hook may call back into the run, a slow sink blocks nobody."""

from __future__ import annotations

import threading
import time

import pytest

import labledger as ll


@pytest.mark.timeout(60)
def test_a_hook_that_flushes_and_logs_to_its_run_does_not_deadlock(run_script, store_path):
    """Run in a subprocess: a deadlock would otherwise hang the test process."""
    done = run_script(
        """
        import labledger as ll

        class Reentrant:
            calls = 0

            @ll.hookimpl
            def labledger_metrics_logged(self, run, batch):
                self.calls += 1
                run.flush()                                  # returns at once inside a hook
                if self.calls == 1:
                    run.log_params({"seen_by_hook": len(batch)})  # queued, written after the hook
                    run.set_tag("hooked", "yes")

        ll.plugins.register(Reentrant(), name="reentrant")
        with ll.start_run("reentry") as run:
            for i in range(5000):
                run.log_metric("x", float(i), step=i)
            run.flush()
            for i in range(5000, 6000):
                run.log_metric("x", float(i), step=i)
        view = ll.get_run(run.id)
        print(len(view.metric("x")), view.params, view.tags)
        """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "6000 {'seen_by_hook': 5000} {'hooked': 'yes'}"


@pytest.mark.timeout(60)
def test_a_hook_that_logs_to_another_run_does_not_deadlock(run_script):
    done = run_script(
        """
        import threading
        import labledger as ll

        class Mirror:
            def __init__(self, target):
                self.target = target

            @ll.hookimpl
            def labledger_metrics_logged(self, run, batch):
                if run is not self.target:
                    for key, step, epoch, ts, value in batch.points():
                        self.target.log_metric("mirror/" + key, value, step=step)
                    self.target.flush()

        mirror = ll.start_run("reentry", name="mirror", activate=False)
        ll.plugins.register(Mirror(mirror), name="mirror")
        runs = [ll.start_run("reentry", name=f"w{i}", activate=False) for i in range(3)]

        def work(run):
            for i in range(3000):
                run.log_metric("x", float(i), step=i)
                if i % 500 == 0:
                    run.flush()
            run.end()

        threads = [threading.Thread(target=work, args=(r,)) for r in runs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
            assert not t.is_alive(), "a logging thread hangs"
        mirror.end()
        print(len(ll.get_run(mirror.id).metric("mirror/x")))
        """,
        timeout=40,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "9000"


class SlowFor:
    """A sink that blocks, in the background writer, for one run until released."""

    def __init__(self, slow_run_id: str) -> None:
        self.slow_run_id = slow_run_id
        self.entered = threading.Event()
        self.release = threading.Event()

    @ll.hookimpl
    def labledger_metrics_logged(self, run, batch):
        if run.id == self.slow_run_id and threading.current_thread().name == "labledger-writer":
            self.entered.set()
            self.release.wait(20)


@pytest.mark.timeout(60)
def test_a_slow_sink_for_one_run_delays_no_other_work(monkeypatch):
    monkeypatch.setenv("LABLEDGER_FLUSH_INTERVAL", "0.05")
    slow = ll.start_run("slow", name="slow", activate=False)
    sink = SlowFor(slow.id)
    ll.plugins.register(sink, name="slow-sink")
    try:
        slow.log_metric("x", 1.0)
        assert sink.entered.wait(10), "the writer delivers the slow run's batch"
        started = time.monotonic()
        with ll.start_run("slow", name="other") as other:  # starting, logging, flushing another run
            for i in range(1000):
                other.log_metric("y", float(i), step=i)
            other.log_params({"a": 1})
            other.flush()
        store = ll.open_store()
        # a bulk transaction (as a search records its candidates)
        with store.transaction(), ll.start_run("slow", name="bulk") as bulk:
            bulk.log_params({"b": 2})
        slow.log_metric("x", 2.0)  # the hot path never waits
        assert time.monotonic() - started < 5, "work on other runs waited for the slow sink"
        assert len(ll.get_run(other.id).metric("y")) == 1000
        assert ll.get_run("slow/bulk").params == {"b": 2}
    finally:
        sink.release.set()
    slow.end()
    assert len(ll.get_run(slow.id).metric("x")) == 2
