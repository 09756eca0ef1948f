"""Error analysis by slice on a million predictions, measured on this machine.

    python benchmarks/error_analysis.py [--examples 1000000] [--classes 10] [--repeat 3]

Random class probabilities over ``--classes`` classes (the prediction is their argmax,
the truth agrees with it 70 % of the time) and five feature columns: three categorical
(pandas categoricals of 4, 12 and 50 values) and two numeric (one integer, one float).
Timed (best of ``--repeat``, in seconds): ``slice_metrics`` by one categorical column,
by one numeric column, by two columns, and ``find_weak_slices`` with ``max_features=2``.

Then through a store (a fresh SQLite store in a temporary folder): ``run.log_predictions``
of the whole table with its probabilities and features (a new run each round), and
``ll.errors(run, by=["region"])``, which reads the stored table back and slices it.

Targets: logging the predictions ≤ 2 s; the per-slice analysis ≤ 1 s.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import pandas as pd

from labledger.analysis.slice_search import find_weak_slices
from labledger.analysis.slices import slice_metrics


def make_data(n: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    proba = rng.random((n, classes))
    proba /= proba.sum(axis=1, keepdims=True)
    y_pred = proba.argmax(axis=1)
    y_true = np.where(rng.random(n) < 0.7, y_pred, rng.integers(0, classes, n))
    features = pd.DataFrame(
        {
            "region": pd.Categorical.from_codes(rng.integers(0, 4, n), ["north", "south", "east", "west"]),
            "device": pd.Categorical.from_codes(rng.integers(0, 12, n), [f"device-{i}" for i in range(12)]),
            "site": pd.Categorical.from_codes(rng.integers(0, 50, n), [f"site-{i}" for i in range(50)]),
            "age": rng.integers(18, 90, n),
            "score": rng.normal(size=n),
        }
    )
    return y_true, y_pred, proba, features


def best_of(repeat: int, call) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    y_true, y_pred, proba, features = make_data(args.examples, args.classes)
    text = features.astype({"region": str})
    cases = {
        "slice_metrics by region (categorical)": lambda: slice_metrics(
            y_true, y_pred, features, ["region"], proba=proba
        ),
        "slice_metrics by region (text column)": lambda: slice_metrics(
            y_true, y_pred, text, ["region"], proba=proba
        ),
        "slice_metrics by age (numeric, binned)": lambda: slice_metrics(
            y_true, y_pred, features, ["age"], proba=proba
        ),
        "slice_metrics by site × score": lambda: slice_metrics(
            y_true, y_pred, features, ["site", "score"], proba=proba
        ),
        "find_weak_slices (max_features=2)": lambda: find_weak_slices(
            y_true, y_pred, features, max_features=2
        ),
    }
    print(f"{args.examples:,} examples × {args.classes} classes, 5 feature columns (best of {args.repeat})")
    for name, call in cases.items():
        print(f"  {name:<46} {best_of(args.repeat, call):7.3f} s")
    through_store(y_true, y_pred, proba, features, args.repeat)


def through_store(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, features: pd.DataFrame, repeat: int
) -> None:
    import labledger as ll

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.update(LABLEDGER_STORE=os.path.join(tmp, "store"), LABLEDGER_COMPLETENESS="off")
        os.environ["LABLEDGER_CAPTURE_CODE"] = "0"
        runs: list[str] = []

        def log() -> None:
            with ll.start_run("predictions-benchmark") as run:
                run.log_predictions(y_true, y_pred, proba=proba, features=features)
            runs.append(run.id)

        print(f"  {'run.log_predictions (Parquet, into the store)':<46} {best_of(repeat, log):7.3f} s")
        analyse = lambda: ll.errors(runs[-1], by=["region"])  # noqa: E731
        print(f"  {'ll.errors(run, by=[region]) from the store':<46} {best_of(repeat, analyse):7.3f} s")


if __name__ == "__main__":
    main()
