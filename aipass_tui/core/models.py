"""Domain models: normalized agent events, requests, runs and agent state.

Events are plain slotted dataclasses because the orchestrator creates tens of thousands of
them per second. Everything stored on disk is a pydantic model with a schema version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


class EventKind(StrEnum):
    """Kinds of normalized events that adapters produce from an agent's output."""

    INIT = "init"  # session started (session id, model)
    TEXT = "text"  # assistant message text
    THINKING = "thinking"
    TOOL_USE = "tool_use"
    TOOL_RESULT = "tool_result"
    TODO = "todo"  # the agent's whole todo list, replacing the previous one
    SUBAGENT_START = "subagent_start"
    SUBAGENT_END = "subagent_end"
    USAGE = "usage"  # token counts and cost (cumulative when ``data["total"]`` is true)
    RETRY = "retry"  # API retry notice
    RATE_LIMIT = "rate_limit"
    ERROR = "error"
    RESULT = "result"  # final result of the run
    RAW = "raw"  # a stdout line the adapter could not parse
    STDERR = "stderr"  # a line the agent wrote to stderr
    STATUS = "status"  # other progress notices from the CLI


@dataclass(slots=True)
class Event:
    """One normalized event parsed from an agent's output.

    ``parent`` is the tool-use id of the sub-agent that produced the event (Claude's Task tool),
    or None for the top-level agent. ``data`` contains kind-specific fields, for example
    ``tool``/``input`` for tool use, ``items`` for a todo list, ``input_tokens``/``cost_usd`` for usage,
    ``is_error``/``error_kind`` for results and errors.
    """

    kind: EventKind
    text: str = ""
    parent: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict."""
        out: dict[str, Any] = {"kind": self.kind.value}
        if self.text:
            out["text"] = self.text
        if self.parent:
            out["parent"] = self.parent
        if self.data:
            out["data"] = self.data
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "Event":
        """Build an event from ``to_dict`` output; unknown kinds become raw events."""
        try:
            kind = EventKind(raw.get("kind", "raw"))
        except ValueError:
            kind = EventKind.RAW
        return cls(kind, str(raw.get("text", "")), raw.get("parent"), dict(raw.get("data") or {}))


class RequestStatus(StrEnum):
    QUEUED = "queued"
    HELD = "held"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    TIMED_OUT = "timed_out"
    LOST = "lost"


FINAL_RUN_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.STOPPED, RunStatus.TIMED_OUT, RunStatus.LOST}
)
OPEN_REQUEST_STATUSES = frozenset({RequestStatus.QUEUED, RequestStatus.HELD, RequestStatus.RUNNING})


class AgentStatus(StrEnum):
    IDLE = "idle"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    STALLED = "stalled"
    FAILED = "failed"
    DONE = "done"


class StateModel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION


class Request(BaseModel):
    """A unit of work for one agent: what a person, a plan or another agent asked for."""

    model_config = ConfigDict(extra="ignore")

    id: str
    agent: str
    subject: str
    body: str = ""
    sender: str = "user"
    priority: int = 0
    created_at: float
    status: RequestStatus = RequestStatus.QUEUED
    held_reason: str | None = None
    duplicates: int = 0
    duplicate_senders: list[str] = Field(default_factory=list)
    duplicate_ids: list[str] = Field(default_factory=list)
    run: str | None = None
    runs: list[str] = Field(default_factory=list)
    plan_task: str | None = None
    branch: str | None = None
    message: str | None = None
    updated_at: float | None = None
    seq: int = 0

    def detached_copy(self) -> "Request":
        """Return a copy that later changes to this request do not reach (its lists are copied)."""
        return self.model_copy(update={
            "duplicate_senders": list(self.duplicate_senders),
            "duplicate_ids": list(self.duplicate_ids),
            "runs": list(self.runs),
        })

    def same_work(self, agent: str, subject: str, body: str) -> bool:
        """Tell whether another request with these fields would do the same work."""
        return self.agent == agent and self.subject == subject and self.body == body


class SubAgent(BaseModel):
    """A sub-agent started by the agent (Claude's Task tool), keyed by its tool-use id."""

    id: str
    description: str = ""
    kind: str = ""
    status: Literal["running", "done", "failed"] = "running"
    last_message: str = ""
    parent: str | None = None
    events: int = 0


class TodoItem(BaseModel):
    text: str
    status: Literal["pending", "in_progress", "completed"] = "pending"


class RunSummary(BaseModel):
    """Summary of a run's output so far, folded from its events."""

    session_id: str | None = None
    model: str | None = None
    last_message: str = ""
    last_line: str = ""
    result_text: str | None = None
    result_is_error: bool | None = None
    errors: list[str] = Field(default_factory=list)
    error_kinds: list[str] = Field(default_factory=list)
    todo: list[TodoItem] = Field(default_factory=list)
    subagents: dict[str, SubAgent] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    retrying: bool = False
    retry_count: int = 0
    event_count: int = 0
    raw_lines: int = 0

    def detached_copy(self) -> "RunSummary":
        """Return a copy that later events do not reach, cheaper than a deep copy."""
        return self.model_copy(update={
            "errors": list(self.errors),
            "error_kinds": list(self.error_kinds),
            "todo": [item.model_copy() for item in self.todo],
            "subagents": {key: sub.model_copy() for key, sub in self.subagents.items()},
        })

    def apply(self, event: Event) -> None:
        """Fold one event into the summary."""
        self.event_count += 1
        kind = event.kind
        data = event.data
        if event.text and kind in (EventKind.TEXT, EventKind.RAW, EventKind.TOOL_USE, EventKind.ERROR, EventKind.RESULT):
            self.last_line = event.text.splitlines()[-1][:500] if event.text.strip() else self.last_line
        if kind in (EventKind.SUBAGENT_START, EventKind.SUBAGENT_END):
            self._apply_subagent(event)
            return
        if event.parent and event.parent in self.subagents:
            sub = self.subagents[event.parent]
            sub.events += 1
            if kind == EventKind.TEXT and event.text:
                sub.last_message = event.text[-500:]
            return
        if kind == EventKind.TEXT:
            self.last_message = event.text[-2000:]
            self.retrying = False
        elif kind == EventKind.RAW:
            self.raw_lines += 1
            if event.text.strip():
                self.last_message = event.text[-2000:]
        elif kind == EventKind.INIT:
            self.session_id = data.get("session_id") or self.session_id
            self.model = data.get("model") or self.model
        elif kind == EventKind.TODO:
            self.todo = [TodoItem(text=str(i.get("text", "")), status=_todo_status(i)) for i in data.get("items", [])]
        elif kind == EventKind.USAGE:
            self._apply_usage(data)
        elif kind in (EventKind.RETRY, EventKind.RATE_LIMIT):
            self.retrying = True
            self.retry_count += 1
        elif kind == EventKind.ERROR:
            if event.text and len(self.errors) < 50:
                self.errors.append(event.text[:1000])
            if data.get("error_kind"):
                self.error_kinds.append(str(data["error_kind"]))
        elif kind == EventKind.RESULT:
            self.retrying = False
            self.result_text = event.text[-4000:] if event.text else self.result_text
            self.result_is_error = bool(data.get("is_error", False))
            if data.get("error_kind"):
                self.error_kinds.append(str(data["error_kind"]))
            if data.get("input_tokens") is not None or data.get("cost_usd") is not None:
                self._apply_usage({**data, "total": True})
        elif kind in (EventKind.TOOL_USE, EventKind.TOOL_RESULT, EventKind.THINKING):
            self.retrying = False

    def _apply_subagent(self, event: Event) -> None:
        """Start or end a sub-agent; a nested one names its parent in ``parent`` or ``data["parent"]``."""
        data = event.data
        if event.kind == EventKind.SUBAGENT_START:
            sub_id = str(data.get("id") or f"sub-{len(self.subagents) + 1}")
            self.subagents[sub_id] = SubAgent(
                id=sub_id,
                description=event.text[:300],
                kind=str(data.get("subagent_type", "")),
                parent=data.get("parent") or event.parent,
            )
            return
        sub = self.subagents.get(str(data.get("id")))
        if sub is not None:
            sub.status = "failed" if data.get("is_error") else "done"
            if event.text:
                sub.last_message = event.text[-500:]

    def _apply_usage(self, data: dict[str, Any]) -> None:
        if data.get("total"):
            self.input_tokens = max(self.input_tokens, int(data.get("input_tokens") or 0))
            self.output_tokens = max(self.output_tokens, int(data.get("output_tokens") or 0))
            if data.get("cost_usd") is not None:
                self.cost_usd = max(self.cost_usd, float(data["cost_usd"]))
        else:
            self.input_tokens += int(data.get("input_tokens") or 0)
            self.output_tokens += int(data.get("output_tokens") or 0)
            self.cost_usd += float(data.get("cost_usd") or 0.0)


def _todo_status(item: dict[str, Any]) -> Literal["pending", "in_progress", "completed"]:
    status = item.get("status")
    if status in ("pending", "in_progress", "completed"):
        return status
    return "completed" if item.get("completed") else "pending"


class RunRecord(StateModel):
    """One execution of one request by one agent; stored in ``runs/<id>/run.json``."""

    id: str
    agent: str
    request: str
    kind: str
    status: RunStatus = RunStatus.STARTING
    runner: str = "local"
    node: str | None = None
    argv: list[str] = Field(default_factory=list)
    cwd: str = ""
    pid: int | None = None
    pid_create_time: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    message: str | None = None
    stop_requested: Literal["stop", "timeout", "stall"] | None = None
    stdout_offset: int = 0
    stderr_offset: int = 0
    events_size: int = 0
    last_output_at: float | None = None
    stalled: bool = False
    branch: str | None = None
    worktree: str | None = None
    base_commit: str | None = None
    summary: RunSummary = Field(default_factory=RunSummary)
    session_id: str | None = None

    def detached_copy(self) -> "RunRecord":
        """Return a copy that later changes to this record do not reach, cheaper than a deep copy."""
        return self.model_copy(update={"argv": list(self.argv), "summary": self.summary.detached_copy()})


class AgentState(StateModel):
    """Current activity of an agent; stored in ``state/agents/<name>/local.json``."""

    name: str
    kind: str
    model: str | None = None
    status: AgentStatus = AgentStatus.IDLE
    request: str | None = None
    subject: str | None = None
    run: str | None = None
    pid: int | None = None
    started_at: float | None = None
    last_message: str = ""
    last_line: str = ""
    todo: list[TodoItem] = Field(default_factory=list)
    subagents: list[SubAgent] = Field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    queued: int = 0
    branch: str | None = None
    worktree: str | None = None
    node: str | None = None
    last_run_status: RunStatus | None = None
    last_run_message: str | None = None
    updated_at: float | None = None

    def detached_copy(self) -> "AgentState":
        """Return a copy that later changes to this state do not reach, cheaper than a deep copy.

        Every field is immutable except the two lists, whose items are copied one level down.
        """
        return self.model_copy(update={
            "todo": [item.model_copy() for item in self.todo],
            "subagents": [sub.model_copy() for sub in self.subagents],
        })


class OrchestratorState(StateModel):
    """The queue and run index; stored in ``state/orchestrator.json``."""

    requests: dict[str, Request] = Field(default_factory=dict)
    runs: dict[str, str] = Field(default_factory=dict)  # run id -> status, for every run ever started
    seq: int = 0
    started_at: float | None = None
    pid: int | None = None
