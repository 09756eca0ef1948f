"""Running one program in fresh processes, tracked and untracked, and comparing what they drew.

Shared by ``tests/reliability/test_randomness.py`` and
``tests/integrations/test_seeded_equivalence.py``: each variant of a program
runs in its own process (same imports, same global state) and prints the
digests of the global generators of ``random``, NumPy and torch, a few draws
from each, and the program's own results.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["PROBE", "assert_same_randomness", "run_variants"]

#: Prepended to every script: ``report(results, tracked)`` prints the line the test reads.
PROBE = '''
import hashlib as _hashlib
import json as _json
import random as _random
import sys as _sys


def sha(data):
    return _hashlib.sha256(data if isinstance(data, bytes) else repr(data).encode()).hexdigest()


def _streams():
    """The global generators' states, then a few draws from each."""
    out = {"random/state": sha(_random.getstate())}
    np = _sys.modules.get("numpy")
    torch = _sys.modules.get("torch")
    if np is not None:
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        out["numpy/state"] = sha(keys.tobytes() + repr((name, pos, has_gauss, gauss)).encode())
    if torch is not None:
        out["torch/state"] = sha(torch.get_rng_state().numpy().tobytes())
        if torch.cuda.is_available():
            states = torch.cuda.get_rng_state_all()
            out["torch.cuda/state"] = sha(b"".join(s.numpy().tobytes() for s in states))
    out["random/draws"] = [_random.getrandbits(64) for _ in range(3)]
    if np is not None:
        out["numpy/draws"] = np.random.randint(0, 2**62, size=3).tolist()
    if torch is not None:
        out["torch/draws"] = torch.randint(0, 2**62, (3,)).tolist()
    return out


def plain(value):
    """JSON-ready: NumPy scalars and arrays as Python values, anything else by repr."""
    return _json.loads(_json.dumps(value, default=lambda o: o.tolist() if hasattr(o, "tolist") else repr(o)))


def report(results, tracked=None):
    record = {"results": plain(results), "streams": _streams(), "tracked": plain(tracked)}
    print("RESULT " + _json.dumps(record, sort_keys=True))
'''


def run_variants(
    run_script: Callable[..., Any],
    tmp_path: Path,
    body: str,
    variants: Sequence[str],
    env: Mapping[str, str] | None = None,
    variant_env: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run ``body`` once per variant, in parallel, each in its own folder and store; their results.

    The script sees ``VARIANT`` (its name) and ``OUT`` (its folder) and ends with ``report(...)``.
    """

    def one(variant: str) -> dict[str, Any]:
        folder = tmp_path / variant
        folder.mkdir()
        code = f"VARIANT = {variant!r}\nOUT = {str(folder)!r}\n{PROBE}\n{textwrap.dedent(body)}"
        full_env = {
            "LABLEDGER_STORE": str(folder / "store"),
            "KERAS_BACKEND": "torch",
            "PYTHONHASHSEED": "0",
            **(env or {}),
            **(variant_env or {}).get(variant, {}),
        }
        proc = run_script(code, env=full_env, cwd=folder, timeout=120)
        assert proc.returncode == 0, f"variant {variant} failed:\n{proc.stderr[-5000:]}"
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert lines, f"variant {variant} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
        return result

    with ThreadPoolExecutor(len(variants)) as pool:
        return dict(zip(variants, pool.map(one, variants), strict=True))


def assert_same_randomness(results: dict[str, dict[str, Any]], reference: str) -> None:
    """Every variant left the global generators and the program's results exactly as ``reference`` did."""
    expected = results[reference]
    for variant, got in results.items():
        changed = sorted(k for k in expected["streams"] if got["streams"].get(k) != expected["streams"][k])
        assert not changed, f"{variant} changed the global streams {changed} (compared with {reference})"
        want, have = expected["results"], got["results"]
        if isinstance(want, dict) and isinstance(have, dict):
            differ = sorted(k for k in want if have.get(k) != want[k])
            assert not differ, f"{variant} changed the program's results {differ} (compared with {reference})"
        assert have == want, f"{variant} changed the program's results (compared with {reference})"
