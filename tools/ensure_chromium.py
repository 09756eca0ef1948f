"""Make sure a Chromium the dashboard's browser tests can drive is installed.

The browser tests (``tests/ui/browser``) launch the system's Chromium through Playwright's
Python package; no browser is ever downloaded by Playwright. Run before the tests::

    python tools/ensure_chromium.py

- ``$LABLEDGER_CHROMIUM`` (when set) or ``/usr/bin/chromium`` exists: nothing to do, exit 0.
- Otherwise, as root on a Debian/Ubuntu machine (``apt-get`` available): ``apt-get update``
  then ``apt-get install -y chromium``, exit 0 once the binary is there.
- Otherwise: says what to install and exits 1.

Standard library only: it runs before the test environment's packages matter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
APT_COMMANDS = (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"])


def chromium_path() -> Path:
    """Where the browser tests look for Chromium: ``$LABLEDGER_CHROMIUM`` or ``/usr/bin/chromium``."""
    return Path(os.environ.get("LABLEDGER_CHROMIUM") or DEFAULT_CHROMIUM)


def _is_root() -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and geteuid() == 0


def _advice(path: Path) -> str:
    return (
        f"ensure_chromium: no Chromium at {path}; the browser tests (tests/ui/browser) need one.\n"
        "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y chromium\n"
        "  Elsewhere: install Chromium or Chrome and set LABLEDGER_CHROMIUM to its executable.\n"
        "  (Never `playwright install`: the tests drive the system's browser.)"
    )


def _install_with_apt(path: Path) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in APT_COMMANDS:
        print(f"ensure_chromium: running {' '.join(command)}", flush=True)
        result = subprocess.run(command, env=env, check=False)
        if result.returncode != 0:
            print(
                f"ensure_chromium: {' '.join(command)} failed with exit status {result.returncode}",
                file=sys.stderr,
            )
            print(_advice(path), file=sys.stderr)
            return 1
    if not path.exists():
        print(f"ensure_chromium: apt-get installed chromium, but {path} is still missing", file=sys.stderr)
        print(_advice(path), file=sys.stderr)
        return 1
    print(f"ensure_chromium: installed {path}")
    return 0


def main() -> int:
    path = chromium_path()
    if path.exists():
        return 0
    if os.environ.get("LABLEDGER_CHROMIUM"):  # a browser named explicitly is never replaced
        print(f"ensure_chromium: LABLEDGER_CHROMIUM names {path}, which does not exist", file=sys.stderr)
        return 1
    if _is_root() and shutil.which("apt-get"):
        return _install_with_apt(path)
    print(_advice(path), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
