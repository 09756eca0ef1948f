"""The active run belongs to a thread or asyncio task, and only runs the user starts become active."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

import labledger as ll


def test_each_thread_sees_its_own_active_run():
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, list[str | None]] = {}

    def work(name: str) -> None:
        with ll.start_run("threads", name=name) as run:
            barrier.wait()  # both runs are open at once
            for i in range(200):
                ll.log_metric("x", float(i))
            seen[name] = [run.id, ll.active_run().id]
            barrier.wait()

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for name, (run_id, active_id) in seen.items():
        assert run_id == active_id, name
        assert len(ll.get_run(run_id).metric("x")) == 200, name  # module-level calls went to its own run
    assert ll.active_run() is None


def test_a_thread_started_inside_a_run_sees_it_only_when_the_context_is_passed_on():
    with ll.start_run("threads") as run:
        found: list[object] = []
        plain = threading.Thread(target=lambda: found.append(ll.active_run()))
        plain.start()
        plain.join(10)
        ctx = contextvars.copy_context()
        carried = threading.Thread(target=lambda: ctx.run(lambda: found.append(ll.active_run())))
        carried.start()
        carried.join(10)
    assert found == [None, run]


def test_asyncio_tasks_each_see_their_own_active_run():
    async def task(name: str, other_started: asyncio.Event, started: asyncio.Event) -> tuple[str, str]:
        with ll.start_run("tasks", name=name) as run:
            started.set()
            await other_started.wait()  # both are open, interleaved on one thread
            for i in range(50):
                ll.log_metric("x", float(i))
                await asyncio.sleep(0)
            return run.id, ll.active_run().id

    async def main() -> list[tuple[str, str]]:
        a, b = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(task("a", b, a), task("b", a, b)))

    for run_id, active_id in asyncio.run(main()):
        assert run_id == active_id
        assert len(ll.get_run(run_id).metric("x")) == 50


def test_nested_runs_stack_and_unwind():
    with ll.start_run("nest") as outer:
        with ll.start_run("nest", parent=outer) as inner:
            assert ll.active_run() is inner
        assert ll.active_run() is outer
    assert ll.active_run() is None


def test_a_run_started_without_activation_is_never_the_active_run():
    own = ll.start_run("integration", activate=False)
    assert ll.active_run() is None
    with ll.start_run("user") as mine:
        assert ll.active_run() is mine
        ll.log_metric("x", 1.0)
    own.end()
    assert "x" not in ll.get_run(own.id).summary


def test_runs_an_integration_starts_for_itself_stay_bound_to_it():
    """A sweep builds a callback per config: each gets its own run; none leaks into the next."""
    xgb = pytest.importorskip("xgboost")
    import numpy as np

    from labledger.integrations.xgboost import LedgerCallback

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    dtrain = xgb.DMatrix(X, label=y)
    ids = []
    for depth in (2, 3):
        cb = LedgerCallback(experiment="sweep", name=f"depth-{depth}")
        xgb.train(
            {"max_depth": depth}, dtrain, 3, evals=[(dtrain, "train")], callbacks=[cb], verbose_eval=False
        )
        assert ll.active_run() is None, "the callback's own run is not the program's active run"
        ids.append(ll.get_run(f"sweep/depth-{depth}").id)
    assert len(set(ids)) == 2
    for run_id in ids:
        view = ll.get_run(run_id)
        assert view.status == "finished" and len(view.metric("train/rmse")) == 3


def test_searches_in_two_threads_are_recorded_apart():
    """Under autolog, each thread's search is its own run with its own candidates."""
    pytest.importorskip("sklearn")
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import GridSearchCV

    from labledger.integrations import sklearn as llsk

    barrier = threading.Barrier(2, timeout=20)
    first_is_fitting = threading.Event()

    class Meeting(RegressorMixin, BaseEstimator):
        """Waits for the other thread's search on its first fit, so the two searches overlap."""

        def __init__(self, alpha: float = 1.0) -> None:
            self.alpha = alpha

        def fit(self, X, y):
            if not getattr(threading.current_thread(), "met", False):
                threading.current_thread().met = True
                first_is_fitting.set()
                barrier.wait()
            self.mean_ = float(y.mean()) * self.alpha
            return self

        def predict(self, X):
            import numpy as np

            return np.full(len(X), self.mean_)

    X, y = load_diabetes(return_X_y=True)
    llsk.autolog(experiment="threaded-search")
    try:
        errors: list[BaseException] = []

        def search(alphas: list[float]) -> None:
            try:
                if len(alphas) == 3:  # the second search starts while the first one's run is open
                    first_is_fitting.wait(20)
                GridSearchCV(Meeting(), {"alpha": alphas}, cv=3, n_jobs=1).fit(X, y)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=search, args=(a,)) for a in ([0.5, 1.0], [1.5, 2.0, 2.5])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
    finally:
        llsk.autolog(disable=True)
    tops = ll.runs("threaded-search")
    assert len(tops) == 2, "two searches, two top-level runs"
    sizes = sorted(len(ll.get_run(run_id).children) for run_id in tops["id"])
    assert sizes == [2, 3], "each search holds its own candidates"
