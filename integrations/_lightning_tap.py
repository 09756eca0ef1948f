"""A method of a framework object replaced by one that also tells labledger (Lightning's logger calls).

Private to :mod:`labledger.integrations.lightning`.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


class Tap:
    """Replaces ``owner.<attr>``: calls it, then ``sink`` with the same arguments (until :meth:`remove`).

    For a framework method that has no hook of its own (a logger's ``log_metrics`` seen from a
    callback). A copy of the owner (pickling) gets the method it had before.
    """

    def __init__(self, owner: Any, attr: str, sink: Any) -> None:
        self.owner, self.attr, self.sink = owner, attr, sink
        self.previous = vars(owner).get(attr, _MISSING)
        self.target = getattr(owner, attr)
        setattr(owner, attr, self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        result = self.target(*args, **kwargs)
        self.sink(*args, **kwargs)
        return result

    def remove(self) -> None:
        if vars(self.owner).get(self.attr) is self:
            if self.previous is _MISSING:
                delattr(self.owner, self.attr)
            else:
                setattr(self.owner, self.attr, self.previous)

    def __reduce__(self) -> Any:  # a copy of the owner gets the method it had before
        return (_bound, (self.owner, self.attr)) if self.previous is _MISSING else (_same, (self.previous,))


def _bound(owner: Any, attr: str) -> Any:
    return getattr(type(owner), attr).__get__(owner)


def _same(value: Any) -> Any:
    return value
