"""Which trainer is asking: Lightning gives a logger no trainer before setup, so the frames of
Lightning's own code that ask for ``save_dir`` are read for it."""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["asking_trainer"]


def asking_trainer(logger: Any, pl: types.ModuleType) -> Any:
    """The trainer reading ``logger.save_dir`` now (Lightning gives a logger no trainer before setup).

    Only Lightning's own frames are looked into (reading a frame's locals keeps them alive
    until the frame ends): ``Trainer.log_dir`` and ``ModelCheckpoint`` ask with the trainer at hand.
    """
    frame: types.FrameType | None = sys._getframe(2)
    for _ in range(3):
        if frame is None or not str(frame.f_globals.get("__name__", "")).startswith(pl.__name__):
            break
        for name in ("trainer", "self"):
            candidate = frame.f_locals.get(name)
            if isinstance(candidate, pl.Trainer) and any(x is logger for x in candidate.loggers):
                return candidate
        frame = frame.f_back
    return None
