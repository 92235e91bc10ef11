"""Wall clock and id generation, replaceable in tests so snapshots stay stable."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from datetime import datetime, timezone
from typing import Callable

_now: Callable[[], float] = time.time
_random_hex: Callable[[int], str] = secrets.token_hex
_issued: set[str] = set()
_issued_second = ""
_issued_lock = threading.Lock()


def now() -> float:
    """Return the current time as Unix seconds."""
    return _now()


def iso(ts: float | None = None) -> str:
    """Format Unix seconds as an ISO 8601 UTC timestamp with second precision."""
    value = now() if ts is None else ts
    return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str) -> str:
    """Return a new id such as ``r-20261204-212736-3fa9c1``: sortable by time, unique by suffix.

    Ids made by this process in the same second never repeat. With 24 random bits, 1,000 ids in
    one second would share a suffix about 3% of the time (birthday estimate), and a request with
    a repeated id would be taken for one already accepted.
    """
    global _issued_second
    stamp = datetime.fromtimestamp(now(), timezone.utc).strftime("%Y%m%d-%H%M%S")
    with _issued_lock:
        if _issued_second != stamp:
            _issued_second = stamp
            _issued.clear()
        while True:
            candidate = f"{prefix}-{stamp}-{_random_hex(3)}"
            if candidate not in _issued:
                _issued.add(candidate)
                return candidate


def freeze(at: float, step: float = 0.0) -> None:
    """Freeze the clock at ``at`` (advancing ``step`` seconds per call) and make ids deterministic."""
    global _now, _random_hex
    ticks = itertools.count()
    counter = itertools.count(1)
    _now = lambda: at + step * next(ticks)  # noqa: E731
    _random_hex = lambda n: format(next(counter), f"0{2 * n}x")  # noqa: E731


def unfreeze() -> None:
    """Restore the real clock and random ids."""
    global _now, _random_hex
    _now = time.time
    _random_hex = secrets.token_hex


def frozen_from_env() -> None:
    """Freeze the clock when AIPASS_FROZEN_TIME is set (used by screenshot and snapshot runs)."""
    value = os.environ.get("AIPASS_FROZEN_TIME")
    if value:
        freeze(float(value))
