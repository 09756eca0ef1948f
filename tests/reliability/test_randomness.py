"""Tracking never touches the user's randomness: a seeded program draws the same with and without labledger.

Each side runs in a fresh process (same imports, same global state) and prints
the digests of the global generators of ``random``, NumPy and torch, a few
draws from each, and the program's own results; the two sides must be equal.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

import labledger as ll
from labledger.store import sqlite as sqlite_store

from ..seeded import assert_same_randomness, run_variants

pytest.importorskip("torch")
pytest.importorskip("pandas")
pytest.importorskip("sklearn")

CORE = """
    import os
    import random
    from pathlib import Path

    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    TRACK = VARIANT == "ledger"
    if TRACK:
        import labledger as ll

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    X = np.random.rand(40, 3)
    y = np.random.randint(0, 3, size=40)
    frame = pd.DataFrame(
        {"a": X[:, 0], "b": pd.Categorical(np.where(y > 0, "pos", "neg")), "c": ["x", None] * 20}
    )
    tensor = torch.rand(8, 2)
    pipe = make_pipeline(StandardScaler(), LogisticRegression())
    results, names = [], []
    run = None
    for i in range(3):
        value = random.random()
        if TRACK:
            run = ll.start_run("rng-core")  # a generated name
            names.append(run.name)
            run.log_params({"i": i, "value": value, "optimizer": {"lr": 0.1}})
            run.log_config({"epochs": 2})
            run.log_dataset("X", X)
            run.log_dataset("y", y, role="target")
            run.log_dataset("frame", frame)
            run.log_dataset("series", frame["b"])
            run.log_dataset("tensor", tensor)
            run.log_dataset("list", y[:10].tolist())
            run.log_pipeline(pipe)
            run.set_tags({"round": str(i)})
        scores = np.random.rand(5)
        for step in range(20):
            loss = float(torch.rand(1)) + random.gauss(0, 1)
            if TRACK:
                run.log_metrics({"loss": loss}, step=step, epoch=step // 10)
        if TRACK:
            run.log_folds("accuracy", scores.tolist())
            path = Path(f"table-{i}.csv")
            frame.to_csv(path)
            run.log_artifact(path, kind="table")
            run.log_model({"coef": X[:2]}, name="model.joblib")
            run.note("val loss is noisy")
            for _ in range(2):
                with ll.start_run("rng-core", parent=run) as child:  # generated names too
                    child.log_folds("accuracy", scores.tolist())
            run.flush()
            run.end()
        results.append(
            {
                "value": value,
                "scores": scores.tolist(),
                "pick": random.choice("abcdefgh"),
                "perm": np.random.permutation(6).tolist(),
                "torch": torch.randperm(5).tolist(),
            }
        )
    tracked = None
    if TRACK:
        try:
            with ll.start_run("rng-core"):
                raise RuntimeError("fails on purpose")
        except RuntimeError:
            pass
        with ll.start_run("rng-core", tags={"module": "level"}):
            ll.log_metrics({"m": 1.0})
            ll.log_params({"p": 1})
        view = ll.get_run(run.id)
        _ = view.metrics, view.params, view.folds, view.summary, view.children
        assert view.artifacts[0].open().read()
        table = ll.runs("rng-core", include_children=True)
        ll.fingerprint(X)
        tracked = {"names": names, "runs": len(table)}
    shuffled = list(range(10))
    random.shuffle(shuffled)
    results.append(shuffled)
    report(results, tracked)
"""


def test_tracked_program_draws_exactly_what_the_untracked_one_draws(run_script, tmp_path: Path) -> None:
    # lineage capture and completeness checks on, as a user has them
    env = {"LABLEDGER_CAPTURE_CODE": "1", "LABLEDGER_COMPLETENESS": "warn"}
    results = run_variants(run_script, tmp_path, CORE, ["plain", "ledger"], env=env)
    tracked = results["ledger"]["tracked"]
    assert tracked["runs"] == 3 + 3 * 2 + 2 and len(tracked["names"]) == 3  # the runs were recorded
    assert_same_randomness(results, "plain")


SEEDED = """
    import random

    import numpy as np
    import torch

    import labledger as ll

    if VARIANT == "ledger":
        run = ll.start_run("rng-seeded", seed=3)
    else:
        ll.seed_everything(3)
    first = [random.random(), float(np.random.rand()), float(torch.rand(1))]
    if VARIANT == "ledger":
        run.log_metrics({"first": first[0]})
        with ll.start_run("rng-seeded", parent=run) as child:
            child.log_params({"x": 1})
        run.end()
    second = [random.random(), float(np.random.rand()), float(torch.rand(1))]
    report([first, second])
"""


def test_start_run_seed_draws_exactly_what_seed_everything_draws(run_script, tmp_path: Path) -> None:
    results = run_variants(run_script, tmp_path, SEEDED, ["seed_everything", "ledger"])
    assert_same_randomness(results, "seed_everything")


HASHED = """
    import json

    import numpy as np
    import pandas as pd
    from sklearn.feature_extraction.text import CountVectorizer

    import labledger as ll
    from labledger.lineage.pipeline import pipeline_version

    words = frozenset(f"word{i}" for i in range(40))
    digests = {
        "list": ll.fingerprint([set(words), {"nested": words}, "x"]).digest,
        "object array": ll.fingerprint(np.array([set(words), "x"], dtype=object)).digest,
        "series": ll.fingerprint(pd.Series([set(words), "x"])).digest,
        "pipeline": pipeline_version(CountVectorizer(vocabulary=words)),
    }
    report(digests)
"""


def test_fingerprints_and_pipeline_versions_do_not_depend_on_the_hash_seed(
    run_script, tmp_path: Path
) -> None:
    seeds = {f"hashseed-{seed}": {"PYTHONHASHSEED": seed} for seed in ("1", "2", "3")}
    results = run_variants(run_script, tmp_path, HASHED, list(seeds), variant_env=seeds)
    digests = {variant: result["results"] for variant, result in results.items()}
    assert len({json.dumps(d, sort_keys=True) for d in digests.values()}) == 1, digests


@pytest.mark.timeout(60)
def test_waiting_for_the_write_lock_draws_nothing_from_random(store_path: Path, monkeypatch) -> None:
    # reach the lock-retry back-off at once (the store's connections are opened after this)
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 10)
    connections = sys.modules.get("labledger.store.connections")
    if connections is not None and hasattr(connections, "BUSY_TIMEOUT_MS"):
        monkeypatch.setattr(connections, "BUSY_TIMEOUT_MS", 10)
    run = ll.start_run("rng-lock")
    run.flush()
    db = store_path / sqlite_store.DB_FILENAME
    blocker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for a moment
    release = threading.Timer(0.3, blocker.rollback)
    random.seed(0)
    before = random.getstate()
    release.start()
    try:  # these writes wait for the lock
        run.log_params({"lr": 0.1})
        run.log_metrics({"loss": 0.5}, step=0)
        run.set_tags({"phase": "locked"})
        run.end()
    finally:
        release.join()
        blocker.close()
    assert random.getstate() == before, "waiting for the store's lock drew from the module-level random"
