"""Seeding every random number generator in reach, and recording what was seeded.

This is the only place labledger touches the global generators of ``random``,
NumPy, torch, TensorFlow or Keras, and only when asked (``seed_everything``,
``start_run(seed=...)``); everything else it does leaves them as they were.

>>> import labledger as ll
>>> ll.seed_everything(42)  # doctest: +SKIP
{'seed': 42, 'reached': ['random', 'numpy', 'torch', 'PYTHONHASHSEED']}
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from typing import Any

__all__ = ["observed_seeds", "seed_everything"]


def _seed_libraries(seed: int) -> list[str]:
    reached = ["random"]
    random.seed(seed)
    np = sys.modules.get("numpy")
    if np is not None:
        np.random.seed(seed % 2**32)
        reached.append("numpy")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        reached.append("torch")
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        tf.random.set_seed(seed)
        reached.append("tensorflow")
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(getattr(keras, "utils", None), "set_random_seed"):
        keras.utils.set_random_seed(seed)
        reached.append("keras")
    if "jax" in sys.modules:
        # JAX has no global generator: record that keys must come from this seed
        reached.append("jax (no global state: use jax.random.PRNGKey(seed))")
    os.environ["PYTHONHASHSEED"] = str(seed)
    reached.append("PYTHONHASHSEED")
    return reached


def seed_everything(seed: int) -> dict[str, Any]:
    """Seed Python's ``random``, NumPy, and torch/TensorFlow/Keras when already imported.

    Also sets ``PYTHONHASHSEED`` for child processes (this interpreter's own
    hash seed is fixed at start-up). The seed and the libraries it reached are
    recorded on the active run, and on runs started later in this process.

    :param seed: a non-negative integer.
    :returns: ``{"seed": seed, "reached": [...]}``.

    >>> import labledger as ll
    >>> info = ll.seed_everything(0)  # doctest: +SKIP
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        from labledger.errors import InvalidValueError

        raise InvalidValueError("seed", seed, "a seed is a non-negative int")
    info = {"seed": seed, "reached": _seed_libraries(seed)}
    global _last
    _last = info
    from labledger.tracking.lifecycle import active_run

    run = active_run()
    if run is not None and not run.ended:
        run._record_lineage({"seeds": info})
    return info


_last: dict[str, Any] | None = None


def seed_everything_quietly(seed: int) -> dict[str, Any]:
    """Seed like :func:`seed_everything` without recording on the active run (for ``start_run``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        from labledger.errors import InvalidValueError

        raise InvalidValueError("seed", seed, "a seed is a non-negative int")
    return {"seed": seed, "reached": _seed_libraries(seed)}


def last_seed() -> dict[str, Any] | None:
    """What the latest :func:`seed_everything` call in this process did, if any."""
    return _last


def observed_seeds() -> dict[str, Any]:
    """Seeds that can be read back without having set them (e.g. ``torch.initial_seed()``)."""
    seen: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None:
        with contextlib.suppress(Exception):
            seen["torch.initial_seed"] = int(torch.initial_seed())
    for var in ("PL_GLOBAL_SEED", "PYTHONHASHSEED"):
        if var in os.environ:
            seen[var] = os.environ[var]
    return seen
