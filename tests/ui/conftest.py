"""Fixtures for the cockpit tests: a frozen clock and waiting on the app without sleeps."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest
from textual.pilot import Pilot

from aipass_tui.core import clock
from tests.ui.scenes import T0


@pytest.fixture
def frozen_clock() -> Iterator[float]:
    """Freeze the clock at ``T0`` and make new ids deterministic for the test."""
    clock.freeze(T0)
    yield T0
    clock.unfreeze()


async def wait_for(pilot: Pilot, predicate: Callable[[], object], timeout: float = 15.0, message: str = "") -> object:
    """Let the app run until ``predicate`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")
