"""A daemon thread that runs callbacks at deadlines, used for debouncing file events."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from typing import Callable, Hashable

log = logging.getLogger(__name__)


class DeadlineScheduler:
    """Run each callback once its deadline (``time.monotonic()`` seconds) has passed.

    Setting a key that is already pending replaces its deadline and callback, which is what
    a trailing debounce needs. Callbacks run one at a time on the scheduler's own thread; an
    exception in one is logged and does not stop the others.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Hashable]] = []
        self._pending: dict[Hashable, tuple[float, int, Callable[[], None]]] = {}
        self._sequence = itertools.count()
        self._thread: threading.Thread | None = None
        self._running = False

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; pending callbacks are dropped."""
        with self._cond:
            self._running = False
            self._pending.clear()
            self._heap.clear()
            self._cond.notify_all()
            thread = self._thread
            self._thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def call_at(self, key: Hashable, deadline: float, callback: Callable[[], None]) -> None:
        with self._cond:
            sequence = next(self._sequence)
            self._pending[key] = (deadline, sequence, callback)
            heapq.heappush(self._heap, (deadline, sequence, key))
            self._cond.notify_all()

    def call_later(self, key: Hashable, delay: float, callback: Callable[[], None]) -> None:
        self.call_at(key, time.monotonic() + delay, callback)

    def cancel(self, key: Hashable) -> None:
        with self._cond:
            self._pending.pop(key, None)

    def pending(self, key: Hashable) -> bool:
        with self._cond:
            return key in self._pending

    def _next_due(self) -> Callable[[], None] | None:
        """Wait for and return the next due callback; None once stopped. Caller holds the lock."""
        while self._running:
            while self._heap and self._pending.get(self._heap[0][2], (0, -1))[1] != self._heap[0][1]:
                heapq.heappop(self._heap)
            if not self._heap:
                self._cond.wait()
                continue
            deadline, _, key = self._heap[0]
            remaining = deadline - time.monotonic()
            if remaining > 0:
                self._cond.wait(remaining)
                continue
            heapq.heappop(self._heap)
            return self._pending.pop(key)[2]
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                callback = self._next_due()
            if callback is None:
                return
            try:
                callback()
            except Exception:
                log.exception("a scheduled callback on %s failed", self._name)
