"""Recorded cockpit scenes for snapshot tests: fixed agents, requests, runs, events and metrics.

Every scene is built from the real model objects (AgentState, Request, RunRecord, Event,
MetricsSnapshot) with the clock frozen at ``T0`` by the caller, so a snapshot renders the same
screen on every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from aipass_tui.config import AgentConfig, Settings
from aipass_tui.core.metrics import AgentUsage, MetricsSnapshot
from aipass_tui.core.models import (
    AgentState,
    AgentStatus,
    Event,
    EventKind,
    Request,
    RequestStatus,
    RunRecord,
    RunStatus,
    RunSummary,
    SubAgent,
    TodoItem,
)
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.ui.app import AipassApp, create_app
from aipass_tui.ui.source import RecordedSource

T0 = 1_780_000_000.0
MIB = 1 << 20
GIB = 1 << 30

CLAUDE_EVENTS = [
    Event(EventKind.INIT, data={"session_id": "5f1c", "model": "claude-sonnet-4-5"}),
    Event(EventKind.TEXT, "I'll start by reading the config loader and its tests."),
    Event(EventKind.TOOL_USE, data={"tool": "Read", "input": {"file_path": "aipass_tui/config.py"}}),
    Event(EventKind.TOOL_RESULT, "\"\"\"Typed configuration.\"\"\"\nfrom __future__ import annotations\n" * 3),
    Event(EventKind.TODO, data={"items": [
        {"text": "Read the loader", "status": "completed"},
        {"text": "Add the duration parser", "status": "in_progress"},
        {"text": "Write the tests", "status": "pending"},
    ]}),
    Event(EventKind.TOOL_USE, data={"tool": "Bash", "input": {"command": "pytest -q tests/unit/test_config.py -k duration"}}),
    Event(EventKind.TOOL_RESULT, "4 passed in 0.12s"),
    Event(EventKind.TEXT, "The parser accepts 90s, 5m and 1h30m now.\nNext I add the error message for bad units."),
]
FAILED_EVENTS = [
    Event(EventKind.INIT, data={"model": "gpt-5-codex"}),
    Event(EventKind.TOOL_USE, data={"tool": "shell", "input": {"command": ["git", "status", "--short"]}}),
    Event(EventKind.ERROR, "stream disconnected before completion: error sending request", data={"error_kind": "network"}),
    Event(EventKind.RESULT, "codex failed: stream disconnected", data={"is_error": True}),
]
HOSTILE_OUTPUT = [
    Event(EventKind.RAW, "\x1b[1;32mPASS\x1b[0m tests/test_ok.py \x1b[31m(3 warnings)\x1b[0m"),
    Event(EventKind.RAW, "Downloading |\rDownloading /\rDownloading -\rDownloaded 12 files"),
    Event(EventKind.RAW, "\x1b[2K\x1b[1A\x1b[10Cprogress\x1b[H\x1b[2J after cursor moves"),
    Event(EventKind.RAW, "weather ☀\ufe0f and ⚠\ufe0f warnings, 中文 wide, family 👨\u200d👩\u200d👧 done"),
    Event(EventKind.RAW, "col1\tcol2\tcol3\x07\x08X"),
    Event(EventKind.RAW, "\x1b]0;window title\x07title removed \u202eevil\u202c ok"),
]


def metrics(cpu: float = 42.0, history: tuple[float, ...] | None = None, agents: dict[str, AgentUsage] | None = None) -> MetricsSnapshot:
    series = history if history is not None else tuple(20 + (i * 7) % 60 for i in range(60))
    return MetricsSnapshot(
        time=T0,
        cpu_percent=cpu,
        per_core=(min(100.0, cpu + 10), max(0.0, cpu - 10)),
        usable_cpus=2.0,
        mem_used=9 * GIB,
        mem_total=24 * GIB,
        agents=agents or {},
        history=series,
    )


def settings_for(kinds: dict[str, tuple[str, str | None]]) -> Settings:
    agents = {}
    for name, (kind, model) in kinds.items():
        if kind == "command":
            agents[name] = AgentConfig(kind="command", command=["python3", "agent.py"])
        else:
            agents[name] = AgentConfig(kind=kind, model=model)  # type: ignore[arg-type]
    return Settings(agents=agents)


def request(rid: str, agent: str, subject: str, status: RequestStatus, *, age: float = 60, **fields: object) -> Request:
    return Request(id=f"r-20260528-201320-{rid}", agent=agent, subject=subject, status=status,
                   created_at=T0 - age, **fields)  # type: ignore[arg-type]


def write_events(repo: Path, run_id: str, events: list[Event]) -> None:
    run_dir = repo / ".aipass" / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "events.jsonl", "w", encoding="utf-8") as handle:
        for event in events:
            handle.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")


def app_for(repo: Path, settings: Settings, snapshot: Snapshot, events: dict[str, list[Event]] | None = None,
            history: dict[str, list[RunRecord]] | None = None) -> AipassApp:
    """Build a frozen cockpit over a recorded snapshot (``repo`` names the title: use a folder called repo)."""
    source = RecordedSource(repo, settings, snapshot, events or {}, history or {})
    return create_app(repo, settings, source, frozen=True, low_bandwidth=False)


def three_agents(repo: Path, holding: str | None = None) -> AipassApp:
    """A running claude agent with output, a failed codex agent and a queued gemini agent."""
    settings = settings_for({"claude-a": ("claude", "sonnet"), "codex-b": ("codex", "gpt-5-codex"), "gemini-c": ("gemini", None)})
    agents = {
        "claude-a": AgentState(
            name="claude-a", kind="claude", model="sonnet", status=AgentStatus.RUNNING,
            request="r-20260528-201320-000001", subject="Add a duration parser to the config loader",
            run="claude-a-20260528-201321-000002", started_at=T0 - 185, input_tokens=18400, output_tokens=2210,
            cost_usd=0.31, cpu_percent=37.0, rss_bytes=212 * MIB,
        ),
        "codex-b": AgentState(
            name="codex-b", kind="codex", model="gpt-5-codex", status=AgentStatus.FAILED,
            last_run_status=RunStatus.FAILED, last_run_message="codex failed: stream disconnected before completion",
        ),
        "gemini-c": AgentState(name="gemini-c", kind="gemini", status=AgentStatus.QUEUED, queued=2),
    }
    requests = [
        request("000001", "claude-a", "Add a duration parser to the config loader", RequestStatus.RUNNING, age=190),
        request("000003", "codex-b", "Fix the flaky merge test", RequestStatus.FAILED, age=400,
                message="codex failed: stream disconnected before completion"),
        request("000004", "gemini-c", "Write the user guide page on plans", RequestStatus.QUEUED, age=30),
        request("000005", "gemini-c", "Review the CLI help texts", RequestStatus.HELD, age=20,
                held_reason=holding and f"holding new starts: {holding}" or "global cap: 1 runs already executing"),
    ]
    snapshot = Snapshot(agents=agents, requests=requests, runs={}, holding=holding,
                        metrics=metrics(97.0 if holding else 42.0,
                                        history=tuple(40.0 + i for i in range(60)) if holding else None, agents={"claude-a": AgentUsage(37.0, 212 * MIB)}))
    return app_for(repo, settings, snapshot, {"claude-a": CLAUDE_EVENTS, "codex-b": FAILED_EVENTS})


def many_agents(repo: Path, count: int = 40) -> AipassApp:
    """``count`` command agents in a mix of states, too many for full panes."""
    statuses = [AgentStatus.RUNNING, AgentStatus.IDLE, AgentStatus.DONE, AgentStatus.QUEUED, AgentStatus.FAILED, AgentStatus.STALLED]
    kinds = {f"agent-{i:02d}": ("command", None) for i in range(count)}
    settings = settings_for(kinds)
    agents: dict[str, AgentState] = {}
    events: dict[str, list[Event]] = {}
    last_runs = {
        AgentStatus.DONE: (RunStatus.SUCCEEDED, "finished"),
        AgentStatus.FAILED: (RunStatus.FAILED, "command failed: exit code 2"),
    }
    for i, name in enumerate(kinds):
        status = statuses[i % len(statuses)]
        active = status in (AgentStatus.RUNNING, AgentStatus.STALLED)
        last_status, last_message = last_runs.get(status, (None, None))
        agents[name] = AgentState(
            name=name, kind="command", status=status,
            subject=f"task {i}: update module {i % 7}" if active else None,
            started_at=T0 - 30 * (i + 1) if active else None,
            cpu_percent=float(i % 9 * 5) if active else None,
            rss_bytes=(40 + i) * MIB if active else None,
            queued=1 if status == AgentStatus.QUEUED else 0,
            last_run_status=last_status,
            last_run_message=last_message,
        )
        if active:
            events[name] = [Event(EventKind.RAW, f"step {step} of module {i % 7}") for step in range(3)]
    snapshot = Snapshot(agents=agents, requests=[], runs={}, metrics=metrics())
    return app_for(repo, settings, snapshot, events)


def queue_scene(repo: Path) -> AipassApp:
    """A queue with a running request, a coalesced duplicate, a held request and finished ones."""
    settings = settings_for({"claude-a": ("claude", "sonnet"), "codex-b": ("codex", None), "aider-c": ("aider", None)})
    agents = {
        "claude-a": AgentState(name="claude-a", kind="claude", model="sonnet", status=AgentStatus.RUNNING,
                               subject="Refactor the store", started_at=T0 - 50),
        "codex-b": AgentState(name="codex-b", kind="codex", status=AgentStatus.QUEUED, queued=2),
        "aider-c": AgentState(name="aider-c", kind="aider", status=AgentStatus.QUEUED, queued=1),
    }
    requests = [
        request("000001", "claude-a", "Refactor the store", RequestStatus.RUNNING, age=55),
        request("000002", "codex-b", "Run the linters and fix what they find", RequestStatus.QUEUED, age=40,
                duplicates=2, duplicate_senders=["plan FPLAN-0003", "watch: src changed"], priority=1),
        request("000003", "codex-b", "Update the changelog", RequestStatus.QUEUED, age=35),
        request("000004", "aider-c", "Rename the helpers", RequestStatus.HELD, age=30,
                held_reason="holding new starts: CPU 97% above 90% for 5 s", sender="plan FPLAN-0003"),
        request("000005", "claude-a", "Add the status command", RequestStatus.DONE, age=900, message="finished"),
        request("000006", "codex-b", "Fix the flaky merge test", RequestStatus.FAILED, age=1200,
                message="codex failed: stream disconnected"),
        request("000007", "aider-c", "Drop the old parser", RequestStatus.CANCELLED, age=1500,
                message="cancelled before it started"),
    ]
    snapshot = Snapshot(agents=agents, requests=requests, runs={}, holding="CPU 97% above 90% for 5 s", metrics=metrics(97.0))
    return app_for(repo, settings, snapshot)


def zoom_scene(repo: Path) -> AipassApp:
    """A claude agent with a todo list, nested sub-agents, a transcript on disk and two past runs."""
    settings = settings_for({"claude-a": ("claude", "opus"), "codex-b": ("codex", None)})
    run_id = "claude-a-20260528-201321-000009"
    subagents = [
        SubAgent(id="toolu_1", description="Find every caller of load_settings", kind="Explore", status="done",
                 last_message="Found 6 callers in cli.py and orchestrator.py"),
        SubAgent(id="toolu_2", description="Write tests for the duration parser", kind="general-purpose", status="running"),
        SubAgent(id="toolu_3", description="Check the fixtures", kind="Explore", status="failed", parent="toolu_2",
                 last_message="fixture file not found"),
    ]
    todo = [TodoItem(text="Read the loader", status="completed"), TodoItem(text="Add the duration parser", status="in_progress"),
            TodoItem(text="Write the tests", status="pending")]

    agents = {
        "claude-a": AgentState(name="claude-a", kind="claude", model="opus", status=AgentStatus.RUNNING, run=run_id,
                               subject="Add a duration parser to the config loader", started_at=T0 - 320,
                               input_tokens=52000, output_tokens=6100, cost_usd=1.24, cpu_percent=12.0,
                               rss_bytes=300 * MIB, todo=todo, subagents=subagents),
        "codex-b": AgentState(name="codex-b", kind="codex", status=AgentStatus.IDLE),
    }

    events = list(CLAUDE_EVENTS)
    events += [
        Event(EventKind.SUBAGENT_START, "Find every caller of load_settings", data={"id": "toolu_1", "subagent_type": "Explore"}),
        Event(EventKind.TOOL_USE, parent="toolu_1", data={"tool": "Grep", "input": {"pattern": "load_settings("}}),
        Event(EventKind.SUBAGENT_END, "Found 6 callers in cli.py and orchestrator.py", data={"id": "toolu_1"}),
        Event(EventKind.SUBAGENT_START, "Write tests for the duration parser", data={"id": "toolu_2", "subagent_type": "general-purpose"}),
        Event(EventKind.TEXT, "Writing tests/unit/test_duration.py with 12 cases.", parent="toolu_2"),
    ]
    write_events(repo, run_id, events)

    history = [
        RunRecord(id=run_id, agent="claude-a", request="r-20260528-201320-000008", kind="claude",
                  status=RunStatus.RUNNING, started_at=T0 - 320, summary=RunSummary(todo=todo)),
        RunRecord(id="claude-a-20260528-190000-000004", agent="claude-a", request="r-20260528-185959-000003",
                  kind="claude", status=RunStatus.SUCCEEDED, started_at=T0 - 5000, ended_at=T0 - 4400, message="finished"),
        RunRecord(id="claude-a-20260528-180000-000002", agent="claude-a", request="r-20260528-175959-000001",
                  kind="claude", status=RunStatus.FAILED, started_at=T0 - 9000, ended_at=T0 - 8950,
                  message="claude failed: API Error: 529 overloaded"),
    ]
    snapshot = Snapshot(agents=agents, requests=[], runs={run_id: history[0]}, metrics=metrics())
    return app_for(repo, settings, snapshot, {"claude-a": events}, {"claude-a": history})


def hostile_output(repo: Path) -> AipassApp:
    """One agent whose output contains colour codes, spinners, cursor moves, tabs and wide characters."""
    settings = settings_for({"build": ("command", None)})
    agents = {"build": AgentState(name="build", kind="command", status=AgentStatus.RUNNING, subject="make test ☀\ufe0f 中文",
                                  started_at=T0 - 12, run="build-20260528-201321-000001")}
    snapshot = Snapshot(agents=agents, requests=[], runs={}, metrics=metrics())
    return app_for(repo, settings, snapshot, {"build": HOSTILE_OUTPUT})
