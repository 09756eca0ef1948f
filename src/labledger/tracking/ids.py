"""Run ids (time-ordered, UUIDv7 layout, 32 hex digits) and readable run names.

Both draw from the operating system's generator, never from the module-level
``random`` (nor NumPy's or torch's global state): tracking a seeded program must
not change what it draws.
"""

from __future__ import annotations

import os
import random
import threading
import time

_lock = threading.Lock()
#: labledger's own generator: ``os.urandom`` underneath, so no state to seed, share or copy on fork.
_rng = random.SystemRandom()
_last_ms = 0
_counter = 0

_ADJECTIVES = (
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "cosmic",
    "crisp",
    "dapper",
    "eager",
    "fancy",
    "gentle",
    "glad",
    "golden",
    "happy",
    "humble",
    "jolly",
    "keen",
    "lively",
    "lucid",
    "merry",
    "mighty",
    "nimble",
    "noble",
    "quick",
    "quiet",
    "rapid",
    "rosy",
    "shiny",
    "silent",
    "sleek",
    "smart",
    "snowy",
    "solar",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
)
_NOUNS = (
    "badger",
    "bee",
    "cedar",
    "comet",
    "crane",
    "delta",
    "dolphin",
    "falcon",
    "fern",
    "finch",
    "fox",
    "gecko",
    "heron",
    "ibis",
    "koala",
    "lark",
    "lemur",
    "lynx",
    "maple",
    "meadow",
    "moon",
    "newt",
    "oak",
    "orca",
    "otter",
    "owl",
    "panda",
    "pine",
    "quail",
    "raven",
    "river",
    "robin",
    "sparrow",
    "spruce",
    "star",
    "tiger",
    "trout",
    "violet",
    "wave",
    "wren",
)


def new_run_id() -> str:
    """A 128-bit UUIDv7 as 32 lowercase hex digits; ids sort by creation time."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
        else:
            _counter = _rng.getrandbits(8)
        _last_ms = ms
        seq = _counter & 0xFFF
        if _counter > 0xFFF:  # more than 4096 ids in one millisecond: borrow the next one
            _last_ms += 1
            ms = _last_ms
            _counter = 0
            seq = 0
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    return f"{value:032x}"


def new_run_name() -> str:
    """A readable name such as ``swift-otter-42``."""
    return f"{_rng.choice(_ADJECTIVES)}-{_rng.choice(_NOUNS)}-{_rng.randint(1, 99)}"
