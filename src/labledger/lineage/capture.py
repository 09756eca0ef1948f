"""What a run needs to be re-run: code version, environment, packages, author.

Captured automatically when a top-level run starts (child runs inherit their
parent's). The git state is read with a few ``git`` calls in a background
thread, so starting a run never waits for it; a process that starts many
runs in quick succession reuses a capture younger than
``LABLEDGER_CAPTURE_TTL`` seconds (default 2). Installed packages are read
from the ``*.dist-info`` folder names on ``sys.path`` (fast) and stored once
per distinct set. ``LABLEDGER_CAPTURE_CODE=0`` turns the git capture off.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import platform
import re
import socket
import subprocess
import sys
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from labledger import settings
from labledger.lineage.redact import redact_argv, redact_url

__all__ = [
    "DIFF_CAP_BYTES",
    "capture_code",
    "environment",
    "installed_packages",
    "packages_digest",
    "redact_argv",
    "redact_url",
    "strip_credentials",
]

DIFF_CAP_BYTES = 1 << 20
GIT_TIMEOUT = 10.0
ENV_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "CUBLAS_WORKSPACE_CONFIG",
    "KERAS_BACKEND",
    "PL_GLOBAL_SEED",
    "TF_DETERMINISTIC_OPS",
    "XLA_FLAGS",
    "TOKENIZERS_PARALLELISM",
    "LABLEDGER_EXPERIMENT",
    "SLURM_JOB_ID",
    "WORLD_SIZE",
    "LOCAL_RANK",
    "RANK",
)
_SECRET = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.I)
_DIST = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+?)\.(dist-info|egg-info)$")


def strip_credentials(url: str) -> str:
    """Remove ``user:password@`` from a URL and mask secret query values (a git remote).

    >>> strip_credentials("https://token@host/x?access_token=t")
    'https://host/x?access_token=***'
    """
    return redact_url(re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url.strip(), flags=re.I))


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode("utf-8", "replace")


_scripts: dict[tuple[str, str | None, str], Path | None] = {}


def script_path() -> Path | None:
    """The entry script of this process (``sys.argv[0]``, else ``__main__.__file__``), if any.

    Resolved once per (argv[0], ``__main__.__file__``, working folder): every run start asks.
    """
    argv0 = sys.argv[0] if sys.argv else ""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    key = (argv0, path if isinstance(path, str) else None, os.getcwd())
    if key in _scripts:
        return _scripts[key]
    if argv0 and argv0 not in ("-c", "-m") and os.path.isfile(argv0):
        found: Path | None = Path(argv0).resolve()
    else:
        found = Path(path).resolve() if isinstance(path, str) and os.path.isfile(path) else None
    if len(_scripts) > 64:
        _scripts.clear()
    _scripts[key] = found
    return found


def capture_code() -> tuple[dict[str, Any], bytes | None]:
    """The code version: git state (or the script's hash outside git) and the uncommitted diff.

    :returns: ``(code, diff)`` where ``diff`` is the uncommitted change (capped at
        :data:`DIFF_CAP_BYTES`) or ``None`` when the tree is clean or not in git.
    """
    script = script_path()
    where = script.parent if script else Path.cwd()
    code: dict[str, Any] = {
        "script": str(script) if script else None,
        "argv": redact_argv(sys.argv),
        "cwd": os.getcwd(),
        "executable": sys.executable,
    }
    if script is not None:
        code["script_sha256"] = hashlib.sha256(script.read_bytes()).hexdigest()
    status = _git(where, "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
    if status is None:
        code["git"] = None
        return code, None
    git: dict[str, Any] = {"commit": None, "branch": None}
    changed = untracked = 0
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            git["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            git["branch"] = None if head == "(detached)" else head
        elif line.startswith("? "):
            untracked += 1
        elif line and not line.startswith("#"):
            changed += 1
    config = _git(where, "config", "--get-regexp", r"^(remote\.origin\.url|user\.name|user\.email)$") or ""
    for line in config.splitlines():
        key, _, value = line.partition(" ")
        if key == "remote.origin.url":
            git["remote"] = strip_credentials(value)
        elif key in ("user.name", "user.email"):
            git[key.replace(".", "_")] = value
    git["dirty"] = changed > 0
    git["untracked"] = untracked
    diff: bytes | None = None
    if changed:
        text = _git(where, "diff", "HEAD", "--binary")
        if text:
            data = text.encode()
            cap = _diff_cap()
            git["diff_bytes"] = len(data)
            git["diff_sha256"] = hashlib.sha256(data).hexdigest()
            if len(data) > cap:
                data = data[:cap]
                git["diff_capped"] = True
                git["diff_note"] = (
                    f"the uncommitted diff is {git['diff_bytes']:,} bytes; only the first {cap:,} were stored"
                )
            diff = data
    code["git"] = git
    return code, diff


def _diff_cap() -> int:
    """``LABLEDGER_DIFF_CAP`` bytes of the uncommitted diff are kept (default 1 MiB)."""
    return settings.diff_cap(lenient=True)


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


@lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "system": sys.platform,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "host": socket.gethostname(),
    }


def _gpus() -> dict[str, Any] | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        info: dict[str, Any] = {"cuda": getattr(torch.version, "cuda", None)}
        if torch.cuda.is_available():
            info["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        else:
            info["devices"] = []
        return info
    except Exception:  # a broken CUDA setup must not stop a run
        return None


def environment() -> dict[str, Any]:
    """Interpreter, platform, CPU, GPUs (when torch is imported) and relevant env vars (no secrets)."""
    env = dict(_static_environment())
    gpus = _gpus()
    if gpus is not None:
        env["gpu"] = gpus
    env["env_vars"] = {
        k: redact_url(os.environ[k]) for k in ENV_VARS if k in os.environ and not _SECRET.search(k)
    }
    return env


_packages_lock = threading.Lock()
_packages_cache: tuple[tuple[tuple[str, float], ...], dict[str, str]] | None = None


def _path_state() -> tuple[tuple[str, float], ...]:
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime))
        except OSError:
            continue
    return tuple(state)


def installed_packages() -> dict[str, str]:
    """``{distribution: version}`` of everything importable, read from ``*.dist-info`` names."""
    global _packages_cache
    state = _path_state()
    with _packages_lock:
        if _packages_cache is not None and _packages_cache[0] == state:
            return dict(_packages_cache[1])
        found: dict[str, str] = {}
        for entry, _ in state:
            try:
                names = os.listdir(entry or ".")
            except OSError:
                continue
            for name in names:
                m = _DIST.match(name)
                if m:
                    key = re.sub(r"[-_.]+", "-", m.group("name")).lower()
                    found.setdefault(key, m.group("version"))
        packages = dict(sorted(found.items()))
        _packages_cache = (state, packages)
        return dict(packages)


def packages_digest(packages: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()


def os_user() -> str | None:
    """The operating-system user running this process, when it can be told."""
    try:
        return getpass.getuser()
    except Exception:
        return None


def author(git: dict[str, Any] | None) -> dict[str, Any]:
    """Who ran it: git user when known, else the OS user; and the host."""
    out: dict[str, Any] = {"user": os_user(), "host": socket.gethostname()}
    if git and git.get("user_name"):
        out["name"] = git["user_name"]
        out["email"] = git.get("user_email")
    return out


class _CodeCache:
    """The latest code capture of this process, reused for ``LABLEDGER_CAPTURE_TTL`` seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.when = 0.0
        self.key: tuple[str, str] | None = None
        self.value: tuple[dict[str, Any], bytes | None] | None = None

    def get(self) -> tuple[dict[str, Any], bytes | None]:
        if not settings.capture_code(lenient=True):
            return {"argv": redact_argv(sys.argv), "cwd": os.getcwd(), "disabled": True}, None
        ttl = settings.capture_ttl(lenient=True)
        key = (os.getcwd(), str(script_path()))
        with self.lock:
            if self.value is not None and self.key == key and time.monotonic() - self.when < ttl:
                code, diff = self.value
                return {**code, "argv": redact_argv(sys.argv)}, diff
            value = capture_code()
            self.value, self.key, self.when = value, key, time.monotonic()
            return value


code_cache = _CodeCache()


class CaptureWorker:
    """One background thread that runs the start-up captures of every top-level run, in order.

    Runs never wait for it: a capture may complete after its run has ended. At
    interpreter exit, and on :meth:`labledger.Run.flush`, pending captures are
    waited for (bounded).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[tuple[Any, Any]] = []
        self._pending: dict[int, int] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, key: Any, job: Any) -> None:
        """Run ``job()`` in the worker; ``key`` identifies it for :meth:`wait`."""
        with self._cond:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._queue = []
                self._pending = {}
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="labledger-lineage", daemon=True)
                self._thread.start()
            self._queue.append((key, job))
            self._pending[id(key)] = self._pending.get(id(key), 0) + 1
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                key, job = self._queue.pop(0)
            try:
                job()
            finally:
                with self._cond:
                    left = self._pending.get(id(key), 1) - 1
                    if left:
                        self._pending[id(key)] = left
                    else:
                        self._pending.pop(id(key), None)
                    self._cond.notify_all()

    def wait(self, key: Any = None, timeout: float = 30.0) -> bool:
        """Wait until ``key``'s captures (or all, when ``key`` is None) are done; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._pid != os.getpid():
                return True
            while self._pending if key is None else id(key) in self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


capture_worker = CaptureWorker()
