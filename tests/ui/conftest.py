"""Fixtures for the cockpit tests: a frozen clock and waiting on the app without sleeps."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
from textual.pilot import Pilot

from aipass_tui.config import Settings, load_settings
from aipass_tui.core import clock
from aipass_tui.core.models import Request
from aipass_tui.core.orchestrator import Orchestrator
from tests.conftest import write_config
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


WORK_AGENT = Path(__file__).parent / "agents" / "work.py"
FAKE_BIN = Path(__file__).parent.parent / "fakes" / "bin"


def cockpit_config(repo: Path, extra: str = "", agents: tuple[str, ...] = ("alpha", "beta")) -> Settings:
    """Write a config with scripted ``command`` agents (shared isolation) and return the settings."""
    command = json.dumps([sys.executable, str(WORK_AGENT), "{subject}"])
    blocks = [
        f"[agents.{name}]\nkind = \"command\"\ncommand = {command}\nisolation = \"shared\"\n"
        for name in agents
    ]
    write_config(repo, "\n".join(blocks) + "\n[limits]\nstop_grace = \"1s\"\n" + textwrap.dedent(extra))
    return load_settings(repo)


def start_orchestrator(repo: Path, settings: Settings, orchestrators: list) -> Orchestrator:
    orchestrator = Orchestrator(repo, settings, role="cockpit test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    return orchestrator


def request_of(orchestrator: Orchestrator, request_id: str) -> Request:
    return next(r for r in orchestrator.snapshot().requests if r.id == request_id)
