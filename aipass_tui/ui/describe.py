"""One-line descriptions of agents, requests and runs, shared by panes, cards and tables."""

from __future__ import annotations

from aipass_tui.core.models import AgentState, AgentStatus, Request, RequestStatus, RunRecord
from aipass_tui.ui.text import format_bytes, format_cost, format_count, format_duration, sanitize_line

STATUS_CLASSES = tuple(f"-status-{status.value}" for status in AgentStatus)
ACTIVE_STATUSES = (AgentStatus.RUNNING, AgentStatus.RETRYING, AgentStatus.STALLED)


def status_class(status: AgentStatus | str) -> str:
    return f"-status-{AgentStatus(status).value}"


def identity(state: AgentState) -> str:
    """Return ``kind · model`` (the model only when one is configured)."""
    return f"{state.kind} · {state.model}" if state.model else state.kind


def subject(state: AgentState) -> str:
    """Return what the agent works on, or what its last run ended with."""
    if state.status in ACTIVE_STATUSES and state.subject:
        return sanitize_line(state.subject)
    if state.status == AgentStatus.QUEUED:
        return f"{state.queued} request{'s' if state.queued != 1 else ''} waiting"
    if state.last_run_status is not None:
        message = sanitize_line(state.last_run_message or "")
        last = f"last run {state.last_run_status.value}"
        return f"{last}: {message}" if message else last
    return "no request yet"


def elapsed(state: AgentState, now: float) -> float | None:
    if state.status in ACTIVE_STATUSES and state.started_at:
        return now - state.started_at
    return None


def stats(state: AgentState, now: float, *, compact: bool = False) -> str:
    """Return elapsed time, tokens, cost, CPU and memory as one line."""
    parts: list[str] = []
    seconds = elapsed(state, now)
    if seconds is not None:
        parts.append(format_duration(seconds))
    tokens = state.input_tokens + state.output_tokens
    if tokens or state.cost_usd:
        parts.append(f"{format_count(tokens)} tok")
        parts.append(format_cost(state.cost_usd))
    if state.cpu_percent is not None:
        parts.append(f"cpu {state.cpu_percent:.0f}%")
    if state.rss_bytes is not None and not compact:
        parts.append(f"mem {format_bytes(state.rss_bytes)}")
    if state.queued and state.status != AgentStatus.QUEUED and not compact:
        parts.append(f"{state.queued} queued")
    return " · ".join(parts) if parts else "–"


def request_status(request: Request) -> str:
    """Return the request's status word, with the reason when it is held."""
    if request.status == RequestStatus.HELD and request.held_reason:
        return f"held: {request.held_reason}"
    return request.status.value


def short_id(identifier: str) -> str:
    """Return the random suffix of an id such as ``r-20261204-212736-3fa9c1``."""
    return identifier.rsplit("-", 1)[-1]


def run_duration(record: RunRecord, now: float) -> float | None:
    if record.started_at is None:
        return None
    return (record.ended_at or now) - record.started_at
