"""The entry points of one group, found the way :mod:`importlib.metadata` finds them, without importing it.

``importlib.metadata`` costs some 10 ms to import and reads every installed
distribution's entry points; a plugin manager needs only those of the group
``labledger``. For each ``sys.path`` folder this module lists the
``*.dist-info`` / ``*.egg-info`` folders in the order ``importlib.metadata``
yields them, reads each one's ``entry_points.txt`` and parses only the files
that name the group. A ``sys.path`` entry that is not a plain folder (a zip
file, an unpacked ``.egg``), or a finder on ``sys.meta_path`` that knows other
distributions, is read through ``importlib.metadata`` itself, so the result is
the same in every case.

>>> [(ep.name, ep.value) for ep in entry_points("labledger")]  # doctest: +SKIP
[('sklearn', 'labledger.integrations.sklearn_hooks'), ...]
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterator
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import importlib.metadata

__all__ = ["EntryPoint", "distribution", "entry_points"]

#: ``importlib.metadata.EntryPoint.pattern``: ``module[:attr.attr] [extras]``.
_VALUE = r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
_INFO_SUFFIXES = (".dist-info", ".egg-info")


class EntryPoint:
    """One entry point: its name, its value (``module:attr``) and the distribution declaring it.

    ``dist`` is the distribution's metadata folder (a path) when it was found by scanning a
    folder, else the :class:`importlib.metadata.Distribution` that declared it.
    """

    __slots__ = ("dist", "name", "value")

    def __init__(self, name: str, value: str, dist: str | importlib.metadata.Distribution) -> None:
        self.name = name
        self.value = value
        self.dist = dist

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r})"

    def load(self) -> Any:
        """Import the module and return the object the value names (as ``EntryPoint.load`` does)."""
        match = re.match(_VALUE, self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r} = {self.value!r} is not 'module' or 'module:attr'")
        module = import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, attrs, module)


def distribution(dist: str | importlib.metadata.Distribution) -> importlib.metadata.Distribution:
    """The :class:`importlib.metadata.Distribution` of an :attr:`EntryPoint.dist`."""
    if not isinstance(dist, str):
        return dist
    import importlib.metadata
    import pathlib

    return importlib.metadata.PathDistribution(pathlib.Path(dist))


def entry_points(group: str) -> Iterator[EntryPoint]:
    """Every entry point of ``group`` of every distribution on ``sys.path``, in the order
    ``importlib.metadata.distributions()`` gives the distributions (a distribution found
    twice is read twice, as there)."""
    for dist in _distributions():
        if isinstance(dist, str):
            text = _read(os.path.join(dist, "entry_points.txt"))
            if text is None or group not in text:
                continue
        else:
            text = dist.read_text("entry_points.txt")
            if not text:
                continue
        for section, name, value in _entries(text):
            if section == group:
                yield EntryPoint(name, value, dist)


def _distributions() -> list[str | importlib.metadata.Distribution]:
    """The metadata folders (or distributions) on ``sys.path``, in ``importlib.metadata``'s order."""
    if not _only_path_finder():
        import importlib.metadata

        return list(importlib.metadata.distributions())
    found: list[str | importlib.metadata.Distribution] = []
    for entry in list(sys.path):
        folders = _scan(entry)
        if folders is None:
            import importlib.metadata

            found.extend(importlib.metadata.distributions(path=[entry]))
        else:
            found.extend(folders)
    return found


def _only_path_finder() -> bool:
    """Whether the standard path finder is the only finder that knows distributions."""
    from importlib.machinery import PathFinder

    return all(f is PathFinder or not hasattr(f, "find_distributions") for f in sys.meta_path)


def _scan(entry: object) -> list[str] | None:
    """The metadata folders in one ``sys.path`` folder, grouped by normalized project name as
    ``importlib.metadata`` groups them; ``None`` for an entry this scan does not read."""
    if not isinstance(entry, str) or os.path.basename(entry).lower().endswith(".egg"):
        return None
    try:
        children = os.listdir(entry or ".")
    except FileNotFoundError:
        return []
    except OSError:  # a zip file, or unreadable: as importlib.metadata reads it
        return None
    groups: dict[str, list[str]] = {}
    for child in children:
        low = child.lower()
        if low.endswith(_INFO_SUFFIXES):
            groups.setdefault(_normalized(low.rpartition(".")[0].partition("-")[0]), []).append(child)
    return [os.path.join(entry, child) for names in groups.values() for child in names]


def _normalized(name: str) -> str:
    """A project name (no ``-`` left in it) as ``importlib.metadata`` compares names: each run of
    ``_`` and ``.`` as one ``_``."""
    name = name.replace(".", "_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _entries(text: str) -> Iterator[tuple[str, str, str]]:
    """``(section, name, value)`` of every entry in an ``entry_points.txt`` (its ini-like syntax
    as ``importlib.metadata`` reads it: a line without ``=`` in a section raises ``ValueError``)."""
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section is None:
            continue
        name, value = line.split("=", 1)
        yield section, name.strip(), value.strip()
