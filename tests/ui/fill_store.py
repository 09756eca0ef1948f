"""A store filled by real training runs, for the dashboard's browser tests and its screenshots.

Everything is small, seeded and CPU-only, on scikit-learn's bundled datasets:

- ``digits``: a ``GridSearchCV`` (a search run, one child run per candidate with its folds) and a
  ``HalvingGridSearchCV`` (candidates by iteration) through scikit-learn autolog; a run that
  fails after logging a metric; two runs whose 5 folds (the same folds) clearly differ
- ``breast-cancer-xgb``: ``xgb.train`` with the XGBoost callback (train/valid logloss per round)
- ``tiny-lightning``: three epochs of a small MLP with the Lightning logger
- ``xss``: two runs whose names, params, tags, hypotheses, metric and fold keys and error hold HTML

``python tests/ui/fill_store.py STORE`` fills a store and prints what :func:`fill` returns (JSON);
``labledger ui --store STORE`` then shows it. ``python tests/ui/fill_store.py --live STORE``
keeps one run logging ``loss`` until its standard input closes (what :class:`LiveRun` starts).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import labledger as ll

DIGITS = "digits"
XGB = "breast-cancer-xgb"
LIGHTNING = "tiny-lightning"
XSS = "xss"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
BOLD = "<b>bold</b>"
FOLDS = 5
CURVE_POINTS = 8

#: Settings for every process writing the store: no git capture of this checkout, no
#: completeness nagging, tracking errors raised, and a short flush interval.
QUIET_ENV = {
    "LABLEDGER_CAPTURE_CODE": "0",
    "LABLEDGER_COMPLETENESS": "off",
    "LABLEDGER_TESTING": "1",
    "LABLEDGER_FLUSH_INTERVAL": "0.1",
    "KERAS_BACKEND": "torch",
}
#: Settings of the caller's that would send runs elsewhere or change what gets recorded.
UNSET = ("LABLEDGER_STORE", "LABLEDGER_EXPERIMENT", "LABLEDGER_DISABLE_PLUGINS", "LABLEDGER_REPRODUCTION_OF")


def quiet_env() -> dict[str, str]:
    """The environment for a process that writes the filled store: this one's, with :data:`QUIET_ENV`."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, **QUIET_ENV}


#: Third-party warnings the fill meets and cannot fix; any other warning is an error.
IGNORED_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),  # Lightning 2.6 on torch 2.13
    (r".*does not have many workers", UserWarning),  # Lightning, on machines with more than 2 CPUs
)


def _strict_warnings() -> None:
    warnings.simplefilter("error")
    for message, category in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def _ids(store: Path, experiment: str, **where: Any) -> list[str]:
    frame = ll.runs(experiment, store=store, include_children=True, order_by="start_time")
    for column, value in where.items():
        frame = frame[frame[column] == value] if value is not None else frame[frame[column].isna()]
    return [str(i) for i in frame["id"]]


def _children(store: Path, parent: str) -> list[str]:
    return [c.id for c in ll.get_run(parent, store).children]


def _sklearn_searches(store: Path) -> dict[str, Any]:
    from sklearn.datasets import load_digits
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    import labledger.integrations.sklearn as llsk

    X, y = load_digits(return_X_y=True)
    X, y = X[:400], y[:400]
    grid = {"svc__C": [0.1, 1.0, 10.0], "svc__kernel": ["linear", "rbf"]}
    with llsk.autolog(
        experiment=DIGITS, name="svc-grid", hypothesis="an RBF SVC beats a linear one", store=store
    ):
        GridSearchCV(make_pipeline(StandardScaler(), SVC()), grid, cv=FOLDS, scoring="accuracy").fit(X, y)
    with llsk.autolog(experiment=DIGITS, name="tree-halving", hypothesis="depth 6 is enough", store=store):
        HalvingGridSearchCV(
            DecisionTreeClassifier(random_state=0),
            {"max_depth": [1, 2, 3, 4, 6, 8]},
            cv=3,
            factor=2,
            min_resources=60,
            random_state=0,
        ).fit(X, y)
    [grid_id] = _ids(store, DIGITS, name="svc-grid")
    [halving_id] = _ids(store, DIGITS, name="tree-halving")
    halving_children = _children(store, halving_id)
    iterations = {ll.get_run(c, store).params["halving/iter"] for c in halving_children}
    return {
        "grid": {"id": grid_id, "name": "svc-grid", "children": _children(store, grid_id)},
        "halving": {
            "id": halving_id,
            "name": "tree-halving",
            "children": halving_children,
            "iterations": len(iterations),
        },
    }


def _plain_fold_runs(store: Path) -> dict[str, Any]:
    """Two models scored on the same 5 folds: k-NN (~0.98, with a validation curve over k) and
    Gaussian naive Bayes (~0.88)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    cv = KFold(FOLDS, shuffle=True, random_state=0)
    out: dict[str, Any] = {}
    knn = {"model": "knn", "n_neighbors": 3}
    for label, model, params, hypothesis in (
        ("knn", KNeighborsClassifier(n_neighbors=3), knn, "3 neighbours suffice"),
        ("nb", GaussianNB(), {"model": "gaussian-nb"}, "naive Bayes is a fair baseline"),
    ):
        scores = cross_val_score(model, X, y, cv=cv, scoring="accuracy")
        with ll.start_run(
            DIGITS, name=f"{label}-5fold", hypothesis=hypothesis, params=params, store=store
        ) as run:
            run.log_dataset("digits-x", X, role="train")
            run.log_dataset("digits-y", y, role="target")
            if label == "knn":  # a validation curve over k, then the chosen k's folds
                for k in range(1, CURVE_POINTS + 1):
                    curve = cross_val_score(KNeighborsClassifier(n_neighbors=k), X, y, cv=cv)
                    run.log_metric("val/accuracy", float(curve.mean()), step=k)
            run.log_folds("accuracy", scores.tolist(), cv=cv, X=X, y=y)
        out[label] = {"id": run.id, "name": run.name, "mean": float(scores.mean()), "folds": FOLDS}
    out["knn"]["curve"] = {"key": "val/accuracy", "points": CURVE_POINTS}
    return out


def _failed_run(store: Path) -> dict[str, Any]:
    error = "loss diverged at step 1"
    try:
        with ll.start_run(
            DIGITS,
            name="diverged",
            hypothesis="a large step size trains faster",
            params={"model": "sgd", "lr": 1e6},
            store=store,
        ) as run:
            run.log_metric("train/loss", 3.5, step=0)
            run.log_metric("train/loss", 1e9, step=1)
            raise FloatingPointError(f"{error}\nthe learning rate is far too large")
    except FloatingPointError:
        pass
    return {"id": run.id, "name": run.name, "error": f"FloatingPointError: {error}"}


def _xgboost_run(store: Path) -> dict[str, Any]:
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    from labledger.integrations.xgboost import LedgerCallback

    X, y = load_breast_cancer(return_X_y=True)
    dtrain, dvalid = xgb.DMatrix(X[:400], y[:400]), xgb.DMatrix(X[400:], y[400:])
    params = {
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "max_depth": 2,
        "nthread": 1,
        "seed": 0,
    }
    callback = LedgerCallback(experiment=XGB, name="depth-2", hypothesis="depth 2 is enough", store=store)
    rounds = 30
    evals = [(dtrain, "train"), (dvalid, "valid")]
    xgb.train(params, dtrain, rounds, evals=evals, verbose_eval=False, callbacks=[callback])
    [run_id] = _ids(store, XGB, name="depth-2")
    return {"id": run_id, "name": "depth-2", "keys": ["train/logloss", "valid/logloss"], "rounds": rounds}


def _lightning_run(store: Path, workdir: Path) -> dict[str, Any]:
    import lightning as L
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from labledger.integrations.lightning import LedgerLogger

    class Regressor(L.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 8) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
            loss = nn.functional.mse_loss(self.net(batch[0]), batch[1])
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
            self.log("val_loss", nn.functional.mse_loss(self.net(batch[0]), batch[1]))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no banner on stdout
    L.seed_everything(0, verbose=False)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 4, generator=generator)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(96, 1, generator=generator)
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=8)
    valid = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
    logger = LedgerLogger(LIGHTNING, name="mlp-sgd", hypothesis="SGD fits a noisy sum", store=store)
    trainer = L.Trainer(
        max_epochs=3,
        logger=logger,
        log_every_n_steps=1,
        default_root_dir=workdir,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    trainer.fit(Regressor(), train, valid)
    logger.finalize("success")
    [run_id] = _ids(store, LIGHTNING, name="mlp-sgd")
    return {"id": run_id, "name": "mlp-sgd", "keys": ["train_loss_step", "val_loss"], "epochs": 3}


def _xss_runs(store: Path) -> dict[str, Any]:
    params = {"payload": SCRIPT, "markup": BOLD, IMG: 1}
    with ll.start_run(XSS, name=SCRIPT, hypothesis=IMG, params=params, tags={IMG: SCRIPT}, store=store) as a:
        for step in range(5):
            a.log_metric(IMG, 1.0 / (step + 1), step=step)
        a.log_folds(SCRIPT, [0.5, 0.6, 0.7])
    try:
        with ll.start_run(XSS, name=IMG, hypothesis=SCRIPT, params={"markup": BOLD}, store=store) as b:
            b.log_metric(SCRIPT, 0.5, step=0)
            raise ValueError(SCRIPT)
    except ValueError:
        pass
    return {"ids": [a.id, b.id], "names": [SCRIPT, IMG], "error": f"ValueError: {SCRIPT}"}


def fill(store_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Fill the store at ``store_path`` with the runs above; returns their ids and names (JSON-able).

    Framework files (Lightning's logs) go next to the store. Set :data:`QUIET_ENV` first (the
    command line does) to keep this checkout's git state out of the runs.
    """
    store = Path(store_path)
    workdir = store.parent / f"{store.name}-work"
    workdir.mkdir(parents=True, exist_ok=True)
    info: dict[str, Any] = {"store": str(store), "experiments": [DIGITS, XGB, LIGHTNING, XSS]}
    info.update(_sklearn_searches(store))
    info["plain"] = _plain_fold_runs(store)
    info["failed"] = _failed_run(store)
    info["xgboost"] = _xgboost_run(store)
    info["lightning"] = _lightning_run(store, workdir)
    info["xss"] = _xss_runs(store)
    info["top_level"] = _ids(store, DIGITS, parent_id=None)
    return info


def _log_until_stdin_closes(store: Path, experiment: str, name: str, interval: float) -> None:
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    params = {"optimizer": "sgd", "lr": 0.1}
    with ll.start_run(
        experiment, name=name, hypothesis="the loss keeps falling", params=params, store=store
    ) as run:
        step = 0
        print(json.dumps({"id": run.id, "name": run.name}), flush=True)
        while True:
            # delivered by the run's writer on its own (every LABLEDGER_FLUSH_INTERVAL, 1 s)
            run.log_metric("loss", 1.0 / (1 + 0.1 * step), step=step)
            print(json.dumps({"step": step, "time": time.time()}), flush=True)
            step += 1
            if stop.wait(interval):
                break


class LiveRun:
    """A run in another process that logs one ``loss`` point every ``interval`` seconds (delivered
    to the store by the run's own writer, as in training) until the ``with`` block ends; then the
    run ends ``finished``. :attr:`logged` holds when each point was logged.

    >>> with LiveRun(store, "digits") as live:  # doctest: +SKIP
    ...     page.goto(f"{url}/runs/{live.id}")
    """

    def __init__(
        self, store: str | os.PathLike[str], experiment: str, name: str = "live", interval: float = 0.2
    ):
        self.store = Path(store)
        self.experiment = experiment
        self.name = name
        self.interval = interval
        self.id = ""
        #: ``(step, time.time())`` of each point as the run logged it
        self.logged: list[tuple[int, float]] = []
        self._reader: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> LiveRun:
        command = [sys.executable, __file__, "--live", str(self.store), self.experiment, self.name]
        command.append(str(self.interval))
        pipe = subprocess.PIPE
        self._proc = subprocess.Popen(command, stdin=pipe, stdout=pipe, text=True, env=quiet_env())
        stdout: IO[str] | None = self._proc.stdout
        assert stdout is not None
        first = stdout.readline()
        if not first:
            self._proc.wait(10)
            raise RuntimeError(f"the live run's process exited with status {self._proc.returncode}")
        started = json.loads(first)
        self.id, self.name = started["id"], started["name"]
        self._reader = threading.Thread(target=self._read_steps, args=(stdout,), daemon=True)
        self._reader.start()
        return self

    def _read_steps(self, stdout: IO[str]) -> None:
        try:
            for line in stdout:
                point = json.loads(line)
                self.logged.append((int(point["step"]), float(point["time"])))
        except (ValueError, OSError):  # the pipe closed under the loop
            return

    def stop(self, timeout: float = 15) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            if self._reader is not None:
                self._reader.join(5)
            if proc.stdout is not None:
                proc.stdout.close()
        if proc.returncode != 0:
            raise RuntimeError(f"the live run's process exited with status {proc.returncode}")

    def __enter__(self) -> LiveRun:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    for key in UNSET:
        os.environ.pop(key, None)
    os.environ.update(QUIET_ENV)
    _strict_warnings()
    if argv[:1] == ["--live"]:
        store, experiment, name, interval = argv[1:5]
        _log_until_stdin_closes(Path(store), experiment, name, float(interval))
        return 0
    if len(argv) != 1:
        print(
            "usage: fill_store.py STORE | fill_store.py --live STORE EXPERIMENT NAME INTERVAL",
            file=sys.stderr,
        )
        return 2
    started = time.perf_counter()
    info = fill(argv[0])
    info["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
