"""A PostgreSQL store in the training process leaves the global random streams alone."""

from __future__ import annotations

import random

import numpy as np

import labledger as ll
from labledger.store import open_store


def test_logging_to_postgresql_draws_nothing_from_the_global_generators(pg_dsn, tmp_path, monkeypatch):
    monkeypatch.setenv("LABLEDGER_ARTIFACTS", (tmp_path / "objects").as_uri())
    monkeypatch.setenv("LABLEDGER_CACHE", str(tmp_path / "cache"))
    (tmp_path / "model.bin").write_bytes(b"weights" * 100)
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random_sample())
    random.seed(7)
    np.random.seed(7)
    store = open_store(pg_dsn)
    with ll.start_run("rng", store=store) as run:  # the pool opens and grows its connections
        run.log_params({"lr": 0.1})
        for step in range(200):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_artifact(str(tmp_path / "model.bin"), kind="model")
        run.note("done")
    assert ll.get_run(run.id, store=store).status == "finished"
    assert (random.random(), np.random.random_sample()) == expected
