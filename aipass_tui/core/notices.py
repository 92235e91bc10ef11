"""Messages the orchestrator publishes to its subscribers (the cockpit, `work`, tests).

Subscribers receive a list of notices per orchestrator tick, on the orchestrator's thread, so
they must only store or forward them (for example into a queue that the UI drains per frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aipass_tui.core.models import AgentState, Event, Request, RunRecord


@dataclass(slots=True)
class RequestChanged:
    request: Request


@dataclass(slots=True)
class RunStarted:
    run: RunRecord


@dataclass(slots=True)
class RunOutput:
    agent: str
    run_id: str
    events: list[Event]


@dataclass(slots=True)
class RunFinished:
    run: RunRecord


@dataclass(slots=True)
class AgentChanged:
    state: AgentState


@dataclass(slots=True)
class HoldChanged:
    """Admission control started or stopped holding new starts; ``reason`` is None when it stopped."""

    reason: str | None


@dataclass(slots=True)
class PullChanged:
    """A pull request was recorded or changed; ``pull`` is its JSON record."""

    pull: dict[str, Any]


@dataclass(slots=True)
class UserNotice:
    """Something a person should see: a finished or failed run, a fault, a takeover."""

    level: Literal["info", "warning", "error"]
    title: str
    message: str
    agent: str | None = None
    run_id: str | None = None


Notice = RequestChanged | RunStarted | RunOutput | RunFinished | AgentChanged | HoldChanged | PullChanged | UserNotice
