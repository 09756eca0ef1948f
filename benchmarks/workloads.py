"""The workloads' sizes and inputs, shared by ``run.py`` (every tool) and ``hot_path.py`` (labledger).

Nothing here imports a tracker: a peer's worker process loads only its own tool.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

TOOLS = ("labledger", "mlflow", "dvclive")

#: Keys per step in W2.
W2_WIDTH = 20
#: ``start_run`` calls into an existing store in W8, of which the median is kept.
W8_CALLS = 20

#: Per workload: its size at ``--scale 1`` for each tool, and the floor at small scales.
#: The peers run smaller where they are slow (a synchronous MLflow call costs milliseconds;
#: DVCLive re-reads every TSV at each ``next_step``), so a round stays within seconds.
_SIZES: dict[str, tuple[dict[str, int], int]] = {
    "W1": ({"labledger": 100_000, "mlflow": 1_000, "dvclive": 20_000}, 10),  # log_metric calls
    "W2": ({"labledger": 10_000, "mlflow": 500, "dvclive": 500}, 10),  # steps of W2_WIDTH keys
    "W3": ({"labledger": 100_000, "mlflow": 100_000, "dvclive": 100_000}, 100),  # history points
    "W4": ({"labledger": 1_000, "mlflow": 1_000, "dvclive": 1_000}, 5),  # runs
    "W5": ({"labledger": 100, "mlflow": 100, "dvclive": 100}, 2),  # GridSearchCV candidates
    "W7": ({"labledger": 1_000_000, "mlflow": 20_000, "dvclive": 100_000}, 100),  # points per curve
}


def size(workload: str, tool: str, scale: float) -> int:
    """How many calls, steps, points or runs ``tool`` does in ``workload`` at ``scale``."""
    base, floor = _SIZES[workload]
    return max(floor, round(base[tool] * scale))


def sizes(scale: float) -> dict[str, dict[str, int]]:
    return {w: {t: size(w, t, scale) for t in TOOLS} for w in _SIZES}


def w2_rows(steps: int, width: int = W2_WIDTH) -> list[dict[str, float]]:
    """W2's inputs, built before the timer starts: one dict of ``width`` keys per step."""
    names = [f"metric_{j}" for j in range(width)]
    return [{k: math.sin(i * 0.01 + j) for j, k in enumerate(names)} for i in range(steps)]


def w3_value(i: int) -> float:
    return 1.0 / (i + 1)


def w4_params(r: int) -> dict[str, int]:
    return {f"p{j}": r * j for j in range(10)}


def w4_metrics(r: int) -> dict[str, float]:
    return {f"m{j}": r / (j + 1) for j in range(5)}


def training_curve(n: int) -> list[float]:
    """W7a: a loss curve as frameworks log it: computed in float32 with NumPy, passed as Python floats."""
    import numpy as np

    t = np.arange(n, dtype=np.float32)
    noise = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    decay = np.float32(0.2 * n)  # 2e5 at a million points
    loss = (np.float32(2.0) * np.exp(-t / decay) + np.float32(0.05) * noise).astype(np.float32)
    values: list[float] = loss.tolist()
    return values


def float64_curve(n: int) -> list[float]:
    """W7b: full float64 values (W2's first key)."""
    return [math.sin(i * 0.01) for i in range(n)]


#: W7's two curves: (id, inputs)
CURVES = (("f32", training_curve), ("f64", float64_curve))


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def ms(seconds: float) -> float:
    return seconds * 1e3


def median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def summary(repeats: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median, min and max of every numeric figure over the repeats that have it."""
    keys = {
        k for r in repeats for k, v in r.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    out: dict[str, dict[str, float]] = {"median": {}, "min": {}, "max": {}, "n": {}}
    for k in sorted(keys):
        values = [float(r[k]) for r in repeats if _number(r.get(k))]
        out["median"][k] = median(values)
        out["min"][k] = min(values)
        out["max"][k] = max(values)
        out["n"][k] = len(values)
    return out
