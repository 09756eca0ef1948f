"""Notes on any run, ended ones included: what an analysis found after the run, kept with its time
and author. The one record an ended run still takes.

>>> add_note("digits-demo/svc-rbf-c1", "digit 6 is its weakest slice: 0.956 vs 0.982")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from labledger.errors import InvalidValueError

if TYPE_CHECKING:
    from labledger.query.run_view import RunView
    from labledger.store.backend import Backend

__all__ = ["add_note"]


def add_note(
    run: str | RunView,
    text: str,
    *,
    author: str | None = None,
    store: str | os.PathLike[str] | Backend | None = None,
) -> dict[str, Any]:
    """Add a note to a run (an id, a unique prefix, ``experiment/name`` or a ``RunView``); returns
    the note as stored (``created_at``, ``text``, ``author``: default the current user).

    >>> ll.add_note(run.id, "errors concentrate on large tumours; next: class weights")  # doctest: +SKIP
    """
    from labledger.lineage.capture import os_user
    from labledger.query.runs import get_run
    from labledger.tracking import validate

    if not isinstance(text, str) or not text.strip():
        raise InvalidValueError("note", text, "a note is a non-empty str")
    validate.text_value("note", text, "note")
    view = get_run(run, store) if isinstance(run, str) else run
    when, who = time.time(), author or os_user()
    view.store.add_note(view.id, text, when, who)
    return {"created_at": when, "text": text, "author": who}
