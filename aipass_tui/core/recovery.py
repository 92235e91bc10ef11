"""Recovery after a restart: re-attach live runs, finalize ended ones, rebuild lost state.

These methods are part of the Orchestrator (as a mixin) and run under its lock, at start only.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from aipass_tui.core import clock
from aipass_tui.core.agents import adapter_for
from aipass_tui.core.live import LiveRun
from aipass_tui.core.models import (
    FINAL_RUN_STATUSES,
    Event,
    OrchestratorState,
    Request,
    RequestStatus,
    RunRecord,
    RunStatus,
)
from aipass_tui.core.runners.base import RunHandle, Runner
from aipass_tui.core.runners.local import LocalRunner
from aipass_tui.core.store import StateError, read_json, read_model

log = logging.getLogger(__name__)
RECENT_EVENTS = 400


class RecoveryMixin:
    """Restart recovery for the Orchestrator; relies on its state, runner and notices."""

    _state: OrchestratorState
    _live: dict[str, LiveRun]
    _recent: dict[str, Any]
    _dirty_state: bool
    _dirty_agents: set[str]
    runner: Runner
    runner_for: Any
    settings: Any
    paths: Any
    repo: Path

    def _discover_unindexed_runs(self) -> None:
        """Add run folders that orchestrator.json does not list yet (their start was not flushed)."""
        try:
            entries = [e for e in os.scandir(self.paths.runs) if e.is_dir() and e.name not in self._state.runs]
        except FileNotFoundError:
            return
        if entries:
            archived = _archived_runs(self.paths.state / "history" / "runs.txt")
            entries = [e for e in entries if e.name not in archived]
        for entry in entries:
            run_dir = Path(entry.path)
            try:
                record = read_model(run_dir / "run.json", RunRecord)
            except StateError as exc:
                self._notify("error", "Run record unreadable", str(exc), run_id=entry.name)
                continue
            if record is None:
                continue  # the orchestrator stopped before writing run.json, so nothing was started
            request = _request_of_run(self._state, run_dir, record)
            if request is None:
                continue
            self._state.runs[record.id] = record.status.value
            if record.id not in request.runs:
                request.runs.append(record.id)
            if record.status in FINAL_RUN_STATUSES:
                continue
            request.run = record.id
            request.status = RequestStatus.RUNNING
            self._dirty_state = True
            log.info("found run %s of request %s that orchestrator.json did not list yet", record.id, request.id)
        self._index_requests()

    def _reattach(self) -> None:
        """Re-attach live runs, finalize the ones that ended, and resolve runs that never started."""
        self._discover_unindexed_runs()
        for run_id, status in list(self._state.runs.items()):
            if status not in (RunStatus.STARTING.value, RunStatus.RUNNING.value):
                continue
            run_dir = self.paths.run_dir(run_id)
            try:
                record = read_model(run_dir / "run.json", RunRecord)
            except StateError as exc:
                self._notify("error", "Run record unreadable", str(exc), run_id=run_id)
                record = None
            request = self._find_request_of_run(run_id)
            if record is None:
                record = self._record_from_dir(run_id, run_dir, request)
                if record is None:
                    self._state.runs[run_id] = RunStatus.LOST.value
                    continue
            config = self.settings.agents.get(record.agent)
            started_by_wrapper = (run_dir / "pid").exists()
            try:
                runner = self.runner_for(record.runner)
            except RuntimeError as exc:
                self._notify("error", "Run cannot be re-attached", f"run {run_id}: {exc}", run_id=run_id)
                continue
            handle = runner.adopt(run_id, run_dir, record.pid, record.pid_create_time)
            if handle is None and not started_by_wrapper and not (run_dir / "exit").exists():
                self._never_started(record, request)
                continue
            if config is None:
                self._notify("warning", "Run of an unknown agent", f"run {run_id} belongs to agent {record.agent!r}, which is no longer configured; it is left alone", run_id=run_id)
                if handle is not None:
                    runner.release(handle)
                continue
            adapter = adapter_for(record.agent, config)
            if handle is None:
                handle = runner.adopt_ended(run_id, run_dir) if hasattr(runner, "adopt_ended") else _ended_handle(runner, run_id, run_dir)
            live = LiveRun(record=record, handle=handle, adapter=adapter, parser=adapter.new_parser(), runner=runner)
            live.open_events()
            live.resume(runner)
            live.quiet_since = clock.now()
            if record.pid is None:
                record.pid = handle.pid
                record.pid_create_time = handle.create_time
            record.status = RunStatus.RUNNING
            self._live[run_id] = live
            self._dirty_agents.add(record.agent)
            self._state.runs[run_id] = RunStatus.RUNNING.value
            self._recent[record.agent].extend(_tail_events(run_dir / "events.jsonl", RECENT_EVENTS))
            log.info("re-attached run %s (agent %s, pid %s)", run_id, record.agent, record.pid or handle.pid or "none: its process had ended")
        self._dirty_state = True
        for request in self._state.requests.values():
            if request.status == RequestStatus.RUNNING and (request.run is None or request.run not in self._live):
                status = self._state.runs.get(request.run or "")
                if status in (None, RunStatus.STARTING.value, RunStatus.RUNNING.value):
                    request.status = RequestStatus.QUEUED
                    request.run = None
                    self._changed_request(request)
                else:
                    self._reconcile_request(request, status)

    def _reconcile_request(self, request: Request, status: str) -> None:
        record = None
        try:
            record = read_model(self.paths.run_dir(request.run or "") / "run.json", RunRecord)
        except StateError:
            pass
        request.status = RequestStatus.DONE if status == RunStatus.SUCCEEDED.value else RequestStatus.FAILED
        request.message = record.message if record else f"run {status}"
        self._changed_request(request)

    def _never_started(self, record: RunRecord, request: Request | None) -> None:
        record.status = RunStatus.LOST
        record.ended_at = clock.now()
        record.message = "never started: the orchestrator stopped before starting it; the request was queued again"
        self._write_run(self.paths.run_dir(record.id), record)
        self._state.runs[record.id] = RunStatus.LOST.value
        if request is not None and request.run == record.id:
            request.status = RequestStatus.QUEUED
            request.run = None
            self._changed_request(request)
        log.warning("run %s never started; request %s queued again", record.id, record.request)

    def _find_request_of_run(self, run_id: str) -> Request | None:
        for request in self._state.requests.values():
            if request.run == run_id or run_id in request.runs:
                return request
        return None

    def _record_from_dir(self, run_id: str, run_dir: Path, request: Request | None) -> RunRecord | None:
        if request is None:
            return None
        config = self.settings.agents.get(request.agent)
        return RunRecord(id=run_id, agent=request.agent, request=request.id, kind=config.kind if config else "command", cwd=str(self.repo))

    def _rebuild_state(self) -> OrchestratorState:
        """Rebuild the queue from the archived inbox messages and the run folders."""
        state = OrchestratorState()
        consumed = self.paths.inbox / "consumed"
        messages: list[dict[str, Any]] = []
        if consumed.is_dir():
            for path in sorted(consumed.glob("*.json")):
                try:
                    message = read_json(path)
                except StateError:
                    continue
                if isinstance(message, dict) and message.get("id") and not message.get("coalesced_into"):
                    messages.append(message)
        for message in sorted(messages, key=lambda m: (m.get("created_at") or 0, m["id"])):
            state.seq += 1
            try:
                state.requests[message["id"]] = Request(
                    id=message["id"], agent=message.get("agent", "?"), subject=message.get("subject", ""),
                    body=message.get("body", ""), sender=message.get("sender", "user"),
                    priority=int(message.get("priority", 0)), created_at=float(message.get("created_at") or 0),
                    plan_task=message.get("plan_task"), branch=message.get("branch"), seq=state.seq,
                )
            except (ValueError, TypeError):
                continue
        if self.paths.runs.is_dir():
            for run_dir in sorted(self.paths.runs.iterdir()):
                try:
                    record = read_model(run_dir / "run.json", RunRecord)
                except StateError:
                    continue
                if record is None:
                    continue
                state.runs[record.id] = record.status.value
                request = _request_of_run(state, run_dir, record)
                if request is None:
                    continue
                if record.id not in request.runs:
                    request.runs.append(record.id)
                request.run = record.id
                if record.status in FINAL_RUN_STATUSES:
                    request.status = RequestStatus.DONE if record.status == RunStatus.SUCCEEDED else RequestStatus.FAILED
                    request.message = record.message
                else:
                    request.status = RequestStatus.RUNNING
        log.warning("rebuilt orchestrator state: %d requests, %d runs", len(state.requests), len(state.runs))
        return state


TAIL_BYTES = 64 * 1024
"""How much of a run's events.jsonl is read to refill an agent's latest events after a restart."""


def _tail_events(path: Path, count: int) -> list[Event]:
    """Return the last ``count`` events of an events.jsonl file (an unreadable line is skipped)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - TAIL_BYTES)
            handle.seek(start)
            data = handle.read()
    except OSError:
        return []
    lines = data.splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first line was cut by the seek
    events: list[Event] = []
    for line in lines[-count:]:
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if isinstance(raw, dict):
            events.append(Event.from_dict(raw))
    return events


def _ended_handle(runner: Runner, run_id: str, run_dir: Path) -> Any:
    """Return a handle for a run whose process already ended, so its output can be read and finalized."""
    handle = RunHandle(run_id, run_dir, extra={"child": False, "ended": True})
    if isinstance(runner, LocalRunner):
        runner._open(handle)  # noqa: SLF001
        handle.extra["ended"] = True
    return handle


def _request_of_run(state: OrchestratorState, run_dir: Path, record: RunRecord) -> Request | None:
    """Return the run's request from the queue, else add it back from the run's request.json."""
    request = state.requests.get(record.request)
    if request is not None:
        return request
    try:
        request = read_model(run_dir / "request.json", Request)
    except StateError:
        return None
    if request is None:
        return None
    state.seq += 1
    request.seq = state.seq
    state.requests[request.id] = request
    return request


def _archived_runs(path: Path) -> set[str]:
    """Return the ids of runs whose requests were moved to the history files."""
    try:
        return set(path.read_text(encoding="utf-8").split())
    except FileNotFoundError:
        return set()
