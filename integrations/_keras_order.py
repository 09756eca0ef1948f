"""Where the Keras callback stands among the others, and where a run stands among its fits.

Keras calls callbacks in list order, so what ``LedgerCallback`` sees at its own
``on_epoch_end`` / ``on_train_end`` depends on where the user put it: an
``EarlyStopping(restore_best_weights=True)`` listed after it restores the best
weights only afterwards. :func:`attach` lets the callback act once *every*
callback of the :class:`keras.callbacks.CallbackList` calling it is done — it
replaces that one list object's ``on_epoch_end`` and ``on_train_end`` with
wrappers that call the originals first, and puts the originals back at the end
of training (or on :func:`detach`). The user's exceptions pass through unchanged.

:class:`Progress` keeps, per run, how many fits were recorded into it and the
next free step, so a second ``fit`` into one run continues the step count.
"""

from __future__ import annotations

import sys
import types
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

import labledger as ll

_ATTRIBUTE = "_labledger_tail"
_METHODS = ("on_epoch_end", "on_train_end")


def calling_list(callback: Any) -> Any:
    """The ``CallbackList`` whose ``on_train_begin`` is calling ``callback`` now, else ``None``."""
    frame: types.FrameType | None = sys._getframe(2)  # 0: here, 1: the callback's on_train_begin
    for _ in range(4):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList) and any(c is callback for c in owner.callbacks):
            return owner
        frame = frame.f_back
    return None


def early_stopping(owner: Any, monitor: str | None) -> Any:
    """The ``EarlyStopping`` in ``owner`` whose judgement of the best epoch to follow, else ``None``.

    One watching ``monitor`` (any, when ``monitor`` is ``None``); among several,
    the first that restores the best weights (it decides the final model), else the first.
    """
    if owner is None:
        return None
    found = [
        c
        for c in owner.callbacks
        if isinstance(c, keras.callbacks.EarlyStopping) and monitor in (None, c.monitor)
    ]
    restoring = [c for c in found if c.restore_best_weights]
    return (restoring or found or [None])[0]


class _Tail:
    """Runs registered functions after a ``CallbackList``'s own ``on_epoch_end`` / ``on_train_end``."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner
        self.original = {name: getattr(owner, name) for name in _METHODS}
        self.shadowed = {name: owner.__dict__[name] for name in _METHODS if name in owner.__dict__}
        self.after_epoch: dict[int, Callable[[int], None]] = {}
        self.after_train: dict[int, Callable[[], None]] = {}

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.original["on_epoch_end"](epoch, logs)
        for after in list(self.after_epoch.values()):
            after(epoch)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.restore()
        self.original["on_train_end"](logs)  # every callback's on_train_end; an exception skips the rest
        for after in list(self.after_train.values()):
            after()

    def restore(self) -> None:
        for name in _METHODS:
            if name in self.shadowed:
                setattr(self.owner, name, self.shadowed[name])
            else:
                self.owner.__dict__.pop(name, None)
        self.owner.__dict__.pop(_ATTRIBUTE, None)


def attach(
    owner: Any, key: object, after_epoch: Callable[[int], None], after_train: Callable[[], None]
) -> None:
    """Call ``after_epoch(epoch)`` / ``after_train()`` once every callback in ``owner`` has had the event."""
    tail = owner.__dict__.get(_ATTRIBUTE)
    if tail is None:
        tail = _Tail(owner)
        owner.__dict__[_ATTRIBUTE] = tail
        owner.on_epoch_end = tail.on_epoch_end
        owner.on_train_end = tail.on_train_end
    tail.after_epoch[id(key)] = after_epoch
    tail.after_train[id(key)] = after_train


def detach(owner: Any, key: object) -> None:
    """Forget ``key``'s functions; put ``owner``'s own methods back when no one else needs them."""
    tail = owner.__dict__.get(_ATTRIBUTE)
    if tail is None:
        return
    tail.after_epoch.pop(id(key), None)
    tail.after_train.pop(id(key), None)
    if not tail.after_train:
        tail.restore()


@dataclass
class Progress:
    """How far a run got: fits recorded into it, the next free epoch step, batches, the last test step."""

    fits: int = 0
    next_step: int = 0
    batches: int = 0
    test_step: int = -1


_PROGRESS: weakref.WeakKeyDictionary[ll.Run, Progress] = weakref.WeakKeyDictionary()


def progress(run: ll.Run) -> Progress:
    """The Keras progress recorded into ``run`` (shared by every ``LedgerCallback`` logging to it)."""
    found = _PROGRESS.get(run)
    if found is None:
        found = _PROGRESS[run] = Progress()
    return found
