"""Where a store is: a folder path, a ``file:`` URI, or a URI another plugin serves.

A location is a URI when it starts with ``scheme://`` (``postgresql://host/db``,
``s3://bucket/ledger``) or ``file:``; anything else is a folder path
(``runs:2024`` and ``C:\\ledger`` included).

>>> local_folder("file:///tmp/ledger")
PosixPath('/tmp/ledger')
>>> local_folder("postgresql://db.example.com/ledger") is None
True
>>> scheme("postgresql://db.example.com/ledger")
'postgresql'
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["local_folder", "scheme"]

_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
_LOCAL_HOSTS = ("", "localhost")


def scheme(location: str) -> str | None:
    """The URI scheme of ``location`` (``file`` for ``file:`` URIs), or ``None`` for a path."""
    if location[:5].lower() == "file:":
        return "file"
    match = _URI.match(location)
    return match.group(1).lower() if match else None


def local_folder(location: str) -> Path | None:
    """The folder ``location`` names on this machine (absolute, ``~`` expanded), or ``None``
    when it is a URI of another scheme or a ``file:`` URI of another host."""
    kind = scheme(location)
    if kind is None:
        return Path(location).expanduser().resolve()
    if kind != "file":
        return None
    parts = urlsplit(location)
    if parts.netloc.lower() not in _LOCAL_HOSTS:
        return None
    # (urllib.request.url2pathname costs ~25 ms of imports; on POSIX it is unquote)
    return Path(unquote(parts.path)).expanduser().resolve()
