"""A listing pauses the cyclic collector while it builds, and leaves it as it found it."""

from __future__ import annotations

import gc
import threading

import labledger as ll
from labledger.query.bulk import paused_collector


def test_the_collector_is_paused_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with paused_collector():
        assert not gc.isenabled()
        with paused_collector():  # nested (a listing inside a listing's callback)
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_the_user_turned_off_stays_off() -> None:
    gc.disable()
    try:
        with paused_collector():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_an_error_inside_still_restores_it() -> None:
    try:
        with paused_collector():
            raise KeyError("x")
    except KeyError:
        pass
    assert gc.isenabled()


def test_listings_in_threads_leave_the_collector_on(store_path) -> None:
    for i in range(20):
        with ll.start_run("bulk", store=store_path) as run:
            run.log_params({"i": i})
    frames: list[int] = []

    def list_runs() -> None:
        for _ in range(10):
            frames.append(len(ll.runs("bulk", store=store_path)))

    threads = [threading.Thread(target=list_runs) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert frames == [20] * 40 and gc.isenabled()
    assert len(ll.query.runs.run_rows("bulk", store=store_path)) == 20 and gc.isenabled()
