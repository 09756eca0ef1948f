"""``labledger ui``: a read-only web dashboard over a store, and the JSON API its pages use.

Needs the ``ui`` extra (``pip install "labledger[ui]"``: Starlette, uvicorn, Jinja2).
Nothing here is imported by ``import labledger``.

>>> from labledger.ui import create_app
>>> app = create_app("/tmp/ledger")  # doctest: +SKIP
"""

from __future__ import annotations

from labledger.ui.app import create_app

__all__ = ["create_app"]
