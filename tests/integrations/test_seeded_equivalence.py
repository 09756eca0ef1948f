"""A seeded training gives bit-identical results with and without a labledger integration.

Each variant runs in a fresh process (same imports, same global state) and
prints the program's results (weights, histories, scores, model bytes as
digests) and the state of, and a few draws from, the global generators of
``random``, NumPy and torch after training. The tracked variant must match the
untracked one exactly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ..seeded import assert_same_randomness, run_variants

# -- scikit-learn -------------------------------------------------------------------

SKLEARN = """
    import contextlib
    import random
    import warnings

    import numpy as np
    from scipy.stats import randint
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import (
        GridSearchCV,
        HalvingRandomSearchCV,
        KFold,
        RandomizedSearchCV,
        StratifiedKFold,
    )
    from sklearn.tree import DecisionTreeClassifier

    warnings.simplefilter("ignore")  # convergence notices from the tiny SGD fit
    TRACK = VARIANT == "ledger"
    if TRACK:
        import labledger as ll
        import labledger.integrations.sklearn as llsk

        llsk.autolog(experiment="rng-sklearn")
    from sklearn.model_selection import cross_val_score  # after autolog(), as the README says


    def summary(search):
        results = {k: v for k, v in search.cv_results_.items() if "time" not in k}
        return {"cv_results": results, "best_params": search.best_params_, "best_score": search.best_score_}


    random.seed(0)
    np.random.seed(0)
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    out = {}
    # random_state=None everywhere: the estimators, splitters and samplers draw from NumPy's global state
    grid = GridSearchCV(
        RandomForestClassifier(n_estimators=5, random_state=None),
        {"max_depth": [2, 4], "max_features": [0.3, 0.6]},
        cv=KFold(3, shuffle=True),
        scoring=["accuracy", "f1_macro"],
        refit="accuracy",
        return_train_score=True,
    )
    out["grid"] = summary(grid.fit(X, y))
    randomized = RandomizedSearchCV(
        DecisionTreeClassifier(random_state=None),
        {"max_depth": randint(2, 10), "min_samples_leaf": [1, 2, 4, 8]},
        n_iter=5,
        cv=StratifiedKFold(3, shuffle=True),
        random_state=None,
    )
    out["randomized"] = summary(randomized.fit(X, y))
    halving = HalvingRandomSearchCV(
        DecisionTreeClassifier(random_state=None),
        {"max_depth": randint(2, 10)},
        n_candidates=4,
        factor=2,
        min_resources=60,
        cv=3,
        random_state=None,
    )
    out["halving"] = summary(halving.fit(X, y))
    sgd = SGDClassifier(random_state=None, max_iter=5, tol=None)
    out["cross_val_score"] = cross_val_score(sgd, X, y, cv=KFold(3, shuffle=True))
    with ll.start_run("rng-sklearn", name="outer") if TRACK else contextlib.nullcontext():
        nested = GridSearchCV(DecisionTreeClassifier(random_state=None), {"max_depth": [2, 3]}, cv=3)
        out["nested"] = summary(nested.fit(X, y))
    tracked = None
    if TRACK:
        tracked = len(ll.runs("rng-sklearn", include_children=True))
    report(out, tracked)
"""


@pytest.mark.timeout(120)
def test_sklearn_autolog_leaves_searches_and_global_draws_unchanged(run_script, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    results = run_variants(run_script, tmp_path, SKLEARN, ["plain", "ledger"])
    assert results["ledger"]["tracked"] > 4 + 5 + 4  # the searches and their candidates were recorded
    assert_same_randomness(results, "plain")


# -- XGBoost --------------------------------------------------------------------------

XGBOOST = """
    import random

    import numpy as np
    import xgboost as xgb

    TRACK = VARIANT == "ledger"
    if TRACK:
        import labledger as ll
        from labledger.integrations.xgboost import LedgerCallback


    def callbacks():
        return [LedgerCallback(experiment="rng-xgb", checkpoint_every=5)] if TRACK else []


    random.seed(0)
    np.random.seed(0)
    X = np.random.rand(300, 6)
    y = (X[:, 0] + 0.3 * np.random.rand(300) > 0.65).astype(int)
    dtrain, dvalid = xgb.DMatrix(X[:200], y[:200]), xgb.DMatrix(X[200:], y[200:])
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "max_depth": 3,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "nthread": 1,
    }
    history = {}
    booster = xgb.train(
        params,
        dtrain,
        30,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=5,
        evals_result=history,
        verbose_eval=False,
        callbacks=callbacks(),
    )
    cv = xgb.cv(params, dtrain, 8, nfold=3, callbacks=callbacks())
    clf = xgb.XGBClassifier(n_estimators=8, max_depth=2, subsample=0.8, n_jobs=1, callbacks=callbacks())
    clf.fit(X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False)
    out = {
        "evals_result": history,
        "best_iteration": booster.best_iteration,
        "predictions": sha(booster.predict(dvalid).tobytes()),
        "model": sha(bytes(booster.save_raw("ubj"))),
        "cv": cv.to_dict("list"),
        "classifier/predictions": sha(clf.predict_proba(X[200:]).tobytes()),
        "classifier/evals_result": clf.evals_result(),
        "classifier/model": sha(bytes(clf.get_booster().save_raw("ubj"))),
    }
    tracked = len(ll.runs("rng-xgb")) if TRACK else None
    report(out, tracked)
"""


@pytest.mark.timeout(120)
def test_xgboost_callback_leaves_training_and_global_draws_unchanged(run_script, tmp_path: Path) -> None:
    pytest.importorskip("xgboost")
    results = run_variants(run_script, tmp_path, XGBOOST, ["plain", "ledger"])
    assert results["ledger"]["tracked"] == 3  # train, cv and the classifier
    assert_same_randomness(results, "plain")


# -- Lightning --------------------------------------------------------------------------

LIGHTNING = """
    import os
    import random

    import lightning as L
    import numpy as np
    import torch
    from lightning.pytorch.loggers import CSVLogger
    from torch import nn
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    if VARIANT != "csv":
        import labledger as ll
        from labledger.integrations.lightning import LedgerCallback, LedgerLogger


    class Augmented(Dataset):
        # a random-based augmentation: Python's random and NumPy's global generator
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.x[i] * random.uniform(0.8, 1.2) + float(np.random.normal(0.0, 0.05)), self.y[i]


    class Net(L.LightningModule):
        def __init__(self, lr=0.05):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.2), nn.Linear(8, 1))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            if random.random() < 0.5:  # augmentation in the step: random, then torch's global generator
                x = x + 0.01 * torch.randn_like(x)
            loss = nn.functional.mse_loss(self(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=True)
            return loss

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", nn.functional.mse_loss(self(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


    L.seed_everything(7)
    x = torch.randn(80, 4)
    y = x.sum(dim=1, keepdim=True) + 0.1 * torch.randn(80, 1)
    train = DataLoader(Augmented(x[:64], y[:64]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)
    ledger = None
    if VARIANT == "logger":
        logger = ledger = LedgerLogger("rng-lightning", save_dir=OUT)
    else:
        logger = CSVLogger(OUT)
    callbacks = []
    if VARIANT == "callback":
        ledger = LedgerCallback("rng-lightning")
        callbacks.append(ledger)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=OUT,
        logger=logger,
        callbacks=callbacks,
    )
    model = Net()
    trainer.fit(model, train, val)
    tracked = None
    if ledger is not None:
        run_id = ledger.run.id
        ledger.end()
        tracked = len(ll.get_run(run_id).metric("val_loss"))
    torch.save(model.state_dict(), os.path.join(OUT, "weights.pt"))
    out = {
        "weights": {name: sha(p.detach().numpy().tobytes()) for name, p in model.state_dict().items()},
        "callback_metrics": {k: float(v) for k, v in sorted(trainer.callback_metrics.items())},
    }
    report(out, tracked)
"""


@pytest.mark.timeout(120)
def test_lightning_logger_and_callback_leave_training_and_global_draws_unchanged(
    run_script, tmp_path: Path
) -> None:
    pytest.importorskip("lightning")
    import torch

    variants = ["csv", "logger", "callback"]
    results = run_variants(run_script, tmp_path, LIGHTNING, variants)
    assert results["logger"]["tracked"] == results["callback"]["tracked"] == 2  # one val_loss per epoch
    weights = {v: torch.load(tmp_path / v / "weights.pt", weights_only=True) for v in variants}
    for variant in ("logger", "callback"):
        assert weights[variant].keys() == weights["csv"].keys()
        for name, tensor in weights["csv"].items():
            assert torch.equal(weights[variant][name], tensor), f"{variant}: {name} differs from CSVLogger's"
    assert_same_randomness(results, "csv")


# -- Keras ------------------------------------------------------------------------------

KERAS = """
    import keras
    import numpy as np

    TRACK = VARIANT == "ledger"
    if TRACK:
        import labledger as ll
        from labledger.integrations.keras import LedgerCallback

    keras.utils.set_random_seed(1)
    x = np.random.rand(96, 8).astype("float32")
    y = (x[:, :4].sum(axis=1) > 2).astype("int64")
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    callbacks = []
    if TRACK:
        callbacks.append(LedgerCallback("rng-keras", checkpoint_monitor="val_loss", log_every_n_batches=2))
    history = model.fit(
        x, y, epochs=3, batch_size=16, shuffle=True, validation_split=0.25, verbose=0, callbacks=callbacks
    )
    out = {
        "weights": [sha(np.asarray(w).tobytes()) for w in model.get_weights()],
        "history": history.history,
        "predictions": sha(np.asarray(model.predict(x[:8], verbose=0)).tobytes()),
    }
    tracked = len(ll.get_run(callbacks[0].run.id).metric("val_loss")) if TRACK else None
    report(out, tracked)
"""


@pytest.mark.timeout(120)
def test_keras_callback_leaves_training_and_global_draws_unchanged(
    run_script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "torch"))  # Keras reads it at import
    pytest.importorskip("keras")
    results = run_variants(run_script, tmp_path, KERAS, ["plain", "ledger"])
    assert results["ledger"]["tracked"] == 3  # one val_loss per epoch
    assert_same_randomness(results, "plain")
