"""Re-running a recorded run: how to reproduce it, what differs now, and whether a re-run matches.

>>> import labledger as ll
>>> plan = ll.reproduction_plan("digits-demo/svc-rbf-c10")   # doctest: +SKIP
>>> ll.diff_runs("exp/run-a", "exp/run-b")["params"]          # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
import platform
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labledger.query.runs import RunView, get_run

__all__ = [
    "DEFAULT_IGNORE",
    "Verification",
    "compare_reproduction",
    "diff_packages",
    "diff_runs",
    "reproduction_plan",
    "requirements_text",
    "verify",
]

#: Metrics that differ between identical runs by nature (timings); ``verify`` ignores them.
DEFAULT_IGNORE = ("*time*", "*seconds*", "*duration*", "*_sec", "*throughput*")


def _view(run: RunView | str, store: Any = None) -> RunView:
    return run if isinstance(run, RunView) else get_run(run, store)


def requirements_text(packages: dict[str, str]) -> str:
    """A pip requirements file pinning every recorded distribution."""
    return "".join(f"{name}=={version}\n" for name, version in sorted(packages.items()))


def diff_packages(old: dict[str, str], new: dict[str, str]) -> dict[str, Any]:
    """Packages added, removed and changed between two ``{name: version}`` sets."""
    return {
        "added": {k: new[k] for k in sorted(new.keys() - old.keys())},
        "removed": {k: old[k] for k in sorted(old.keys() - new.keys())},
        "changed": {k: [old[k], new[k]] for k in sorted(old.keys() & new.keys()) if old[k] != new[k]},
    }


def _diff_applies(diff: bytes, cwd: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".diff") as f:
        f.write(diff)
        f.flush()
        try:
            out = subprocess.run(
                ["git", "apply", "--check", f.name], cwd=cwd, capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError) as e:
            return f"unknown ({e})"
    if out.returncode == 0:
        return "applies cleanly to the current tree"
    return "does not apply to the current tree: " + (out.stderr.strip().splitlines() or ["?"])[0]


def reproduction_plan(run: RunView | str, store: Any = None) -> dict[str, Any]:
    """Everything needed to re-run ``run``, and how the current environment differs.

    :returns: ``code`` (commit, branch, remote, dirty, diff), ``command``, ``cwd``,
        ``env_vars``, ``seed``, ``packages`` and ``differences`` (packages, python, platform).
    """
    from labledger.lineage.capture import (
        environment,
        installed_packages,
        redact_argv,
        redact_url,
        strip_credentials,
    )

    view = _view(run, store)
    lineage = view.lineage
    code = lineage.get("code") or {}
    git = code.get("git") or None
    # runs recorded before secrets were masked still hold them: mask on the way out too
    argv = redact_argv(code.get("argv") or view.source.get("argv") or [])
    script = code.get("script") or view.source.get("script")
    command = ["python", *argv] if script else argv
    plan: dict[str, Any] = {
        "run": view.id,
        "name": f"{view.experiment}/{view.name}",
        "code": None,
        "command": shlex.join(command) if command else None,
        "cwd": code.get("cwd") or view.source.get("cwd"),
        "env_vars": {k: redact_url(str(v)) for k, v in (view.environment.get("env_vars") or {}).items()},
        "seed": lineage.get("seeds") or {},
        "packages": view.packages,
    }
    if git:
        info: dict[str, Any] = {k: git.get(k) for k in ("commit", "branch", "remote", "dirty")}
        if isinstance(info["remote"], str):
            info["remote"] = strip_credentials(info["remote"])
        info["checkout"] = f"git checkout {git.get('commit')}"
        diff = next((a for a in view.artifacts if a.kind == "code" and a.name == "uncommitted.diff"), None)
        if diff is not None:
            info["diff_artifact"] = diff.name
            info["diff_bytes"] = diff.size
            info["diff_applies"] = _diff_applies(diff.path.read_bytes(), os.getcwd())
        if git.get("diff_capped"):
            info["diff_note"] = git.get("diff_note")
        plan["code"] = info
    elif code.get("script_sha256"):
        plan["code"] = {"script": script, "script_sha256": code["script_sha256"]}
    current = environment()
    recorded_env = view.environment
    plan["differences"] = {
        "packages": diff_packages(view.packages, installed_packages()) if view.packages else None,
        "python": None
        if recorded_env.get("python") in (None, current["python"])
        else [recorded_env.get("python"), current["python"]],
        "platform": None
        if recorded_env.get("platform") in (None, current["platform"])
        else [recorded_env.get("platform"), current["platform"]],
    }
    return plan


def _close(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol * 1e-3 if rtol else 0.0)
    return bool(a == b)


def compare_reproduction(
    original: RunView, again: RunView, rtol: float = 1e-6, ignore: tuple[str, ...] = DEFAULT_IGNORE
) -> list[dict[str, Any]]:
    """Differences between a run and its re-run: params, dataset fingerprints, final metrics, folds.

    :returns: one dict per difference (``section``, ``key``, ``original``, ``reproduction``);
        empty when the re-run reproduced the original within ``rtol``.
    """
    out: list[dict[str, Any]] = []

    def add(section: str, key: str, a: Any, b: Any) -> None:
        out.append({"section": section, "key": key, "original": a, "reproduction": b})

    for key in sorted(original.params.keys() | again.params.keys()):
        a, b = original.params.get(key, "<missing>"), again.params.get(key, "<missing>")
        if not _close(a, b, rtol):
            add("params", key, a, b)
    da = {f"{d['name']} ({d['role']})": d["fingerprint"] for d in original.datasets}
    db = {f"{d['name']} ({d['role']})": d["fingerprint"] for d in again.datasets}
    for name in sorted(da.keys() | db.keys()):
        if da.get(name) != db.get(name):
            add("datasets", name, da.get(name), db.get(name))
    for key in sorted(original.summary.keys() | again.summary.keys()):
        if any(fnmatch.fnmatch(key, pattern) for pattern in ignore):
            continue
        a = original.summary.get(key, {}).get("last", "<missing>")
        b = again.summary.get(key, {}).get("last", "<missing>")
        if not _close(a, b, rtol):
            add("metrics", key, a, b)
    fa, fb = original.fold_stats, again.fold_stats
    for fold_key in sorted(fa.keys() | fb.keys()):
        a = fa.get(fold_key, {}).get("mean", "<missing>")
        b = fb.get(fold_key, {}).get("mean", "<missing>")
        if not _close(a, b, rtol):
            add("folds", f"{fold_key[0]} ({fold_key[1]}) mean", a, b)
    return out


def _changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    keys = sorted(a.keys() | b.keys())
    return {
        k: [a.get(k), b.get(k)]
        for k in keys
        if json.dumps(a.get(k), sort_keys=True, default=str)
        != json.dumps(b.get(k), sort_keys=True, default=str)
    }


def _masked_git(git: dict[str, Any]) -> dict[str, Any]:
    from labledger.lineage.capture import strip_credentials

    remote = git.get("remote")
    return {**git, "remote": strip_credentials(remote)} if isinstance(remote, str) else git


def diff_runs(run_a: RunView | str, run_b: RunView | str, store: Any = None) -> dict[str, Any]:
    """What changed between two runs, one section each, only the differences.

    Sections: ``params``, ``datasets``, ``pipeline``, ``model``, ``code``, ``packages``,
    ``seeds``, ``environment``. Each maps a key to ``[value in a, value in b]``
    (``packages`` maps to added/removed/changed).
    """
    a, b = _view(run_a, store), _view(run_b, store)
    la, lb = a.lineage, b.lineage
    code_a = _masked_git((la.get("code") or {}).get("git") or {})
    code_b = _masked_git((lb.get("code") or {}).get("git") or {})
    pick = ("commit", "branch", "remote", "dirty", "diff_sha256")
    env_keys = ("python", "implementation", "platform", "cpu", "cpu_count", "gpu", "env_vars")
    return {
        "params": _changes(a.params, b.params),
        "datasets": _changes(
            {f"{d['name']} ({d['role']})": d["fingerprint"] for d in a.datasets},
            {f"{d['name']} ({d['role']})": d["fingerprint"] for d in b.datasets},
        ),
        "pipeline": _changes(
            {p["name"]: p["version"] for p in a.pipelines}, {p["name"]: p["version"] for p in b.pipelines}
        ),
        "model": _changes({"class": a.model_type}, {"class": b.model_type}),
        "code": _changes({k: code_a.get(k) for k in pick}, {k: code_b.get(k) for k in pick}),
        "packages": {k: v for k, v in diff_packages(a.packages, b.packages).items() if v},
        "seeds": _changes(la.get("seeds") or {}, lb.get("seeds") or {}),
        "environment": _changes(
            {k: a.environment.get(k) for k in env_keys}, {k: b.environment.get(k) for k in env_keys}
        ),
    }


@dataclass
class Verification:
    """The outcome of :func:`verify`."""

    original: RunView
    reproduction: RunView | None
    returncode: int
    differences: list[dict[str, Any]]

    @property
    def reproduced(self) -> bool:
        return self.returncode == 0 and self.reproduction is not None and not self.differences


def verify(
    run: RunView | str,
    command: list[str],
    *,
    rtol: float = 1e-6,
    ignore: tuple[str, ...] = DEFAULT_IGNORE,
    store: Any = None,
) -> Verification:
    """Run ``command`` as a reproduction of ``run`` and compare the new run with it.

    The command runs with ``LABLEDGER_REPRODUCTION_OF`` (its run is linked to the
    original), the original's store and experiment. Params, dataset fingerprints,
    final metrics (except ``ignore`` patterns) and fold means are compared within ``rtol``.

    >>> import labledger as ll
    >>> ll.verify("digits/svc-rbf", ["python", "train.py"]).reproduced  # doctest: +SKIP
    True
    """
    original = _view(run, store)
    env = {
        **os.environ,
        "LABLEDGER_REPRODUCTION_OF": original.id,
        "LABLEDGER_STORE": original.store.uri,
        "LABLEDGER_EXPERIMENT": original.experiment,
    }
    started = time.time()
    proc = subprocess.run(list(command), env=env, check=False)
    again_id = original.store.latest_reproduction(original.id, started - 1)
    again = get_run(again_id, original.store) if again_id is not None else None
    differences = compare_reproduction(original, again, rtol=rtol, ignore=ignore) if again else []
    return Verification(original, again, proc.returncode, differences)


def current_platform() -> str:
    return platform.platform()


def write_requirements(packages: dict[str, str], path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    target.write_text(requirements_text(packages))
    return target
