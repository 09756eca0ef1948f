"""Sending what processes that are gone left in their spools: ``labledger sync --spool``.

Every server's cache folder names its server (``server.json``); each spool folder under it
whose owner process is gone is sent in order, then removed. A folder whose owner still runs is
left to it.

>>> for outcome in replay_spools():  # doctest: +SKIP
...     print(outcome.url, outcome.sent, outcome.left)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from labledger import settings
from labledger.store.remote.sender import Blocked, replay
from labledger.store.remote.spool import SERVER_FILE, SpoolFolder, orphaned_folders

__all__ = ["SpoolOutcome", "cache_folders", "replay_spools"]


@dataclass
class SpoolOutcome:
    """What :func:`replay_spools` did for one server: records sent, refused, left (still spooled),
    folders left to a live owner, and why it stopped (``None``: it did not)."""

    url: str
    sent: int = 0
    rejected: int = 0
    left: int = 0
    busy_folders: int = 0
    error: str | None = None


def cache_folders() -> dict[str, Path]:
    """Server URL -> its local cache folder, for every server this machine spooled records for."""
    base = settings.cache()
    if base:
        candidates = list(Path(base).expanduser().glob("remote-*"))
    else:
        candidates = list((Path.home() / ".cache" / "labledger" / "remote").glob("*"))
    found: dict[str, Path] = {}
    for folder in candidates:
        try:
            url = json.loads((folder / SERVER_FILE).read_text())["url"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found[str(url)] = folder
    return found


def replay_spools(url: str | None = None) -> list[SpoolOutcome]:
    """Send the spool folders whose owner is gone, for server ``url`` (default: every server).

    :raises StoreError: ``url`` is not a server URL.
    """
    from labledger.store.remote.plugin import open_remote
    from labledger.store.remote.transport import Transport

    folders = cache_folders()
    if url is not None:
        key = Transport(url).url
        folders = {key: folders[key]} if key in folders else {}
    outcomes = []
    for server, cache in sorted(folders.items()):
        outcome = SpoolOutcome(server)
        outcomes.append(outcome)
        store = open_remote(server)
        for folder in orphaned_folders(cache / "spool"):
            adopted = SpoolFolder.adopt(folder)
            if adopted is None:
                outcome.busy_folders += 1
                continue
            try:
                if outcome.error is None:
                    sent, rejected = replay(store, adopted)
                    outcome.sent += sent
                    outcome.rejected += rejected
            except Blocked as e:
                outcome.error = str(e.error)
            outcome.left += len(adopted)
            adopted.close()
    return outcomes
