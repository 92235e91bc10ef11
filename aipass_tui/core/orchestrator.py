"""The orchestrator: per-agent queues, dispatch rules, run lifecycle and JSON state.

One orchestrator owns a repository's state at a time (an flock on
``.aipass/state/orchestrator.lock``). All work happens in ``tick()``, which one thread calls
every 50 ms: the cockpit's background thread, or the main thread of ``aipass-tui work``. The
public command methods are thread-safe because they take the same lock as the tick.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import resource
import shutil
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aipass_tui.config import AgentConfig, Settings, load_settings
from aipass_tui.core import clock
from aipass_tui.core.agents import adapter_for
from aipass_tui.core.agents.base import Evidence, RunContext
from aipass_tui.core.handlers import HandlerContext, HandlerError, handler, run_handler, write_reply
from aipass_tui.core.live import LiveRun
from aipass_tui.core.recovery import RecoveryMixin, _tail_events
from aipass_tui.core.models import (
    FINAL_RUN_STATUSES,
    OPEN_REQUEST_STATUSES,
    AgentState,
    AgentStatus,
    Event,
    OrchestratorState,
    Request,
    RequestStatus,
    RunRecord,
    RunStatus,
)
from aipass_tui.core.notices import (
    AgentChanged,
    HoldChanged,
    Notice,
    PullChanged,
    RequestChanged,
    RunFinished,
    RunOutput,
    RunStarted,
    UserNotice,
)
from aipass_tui.core.runners.base import Runner
from aipass_tui.core.runners.local import LocalRunner
from aipass_tui.core.store import (
    CorruptStateError,
    FileLock,
    LockHeld,
    Paths,
    StateError,
    StateWriteError,
    read_json,
    read_lock_info,
    read_model,
    write_json,
)
from aipass_tui.core.workspace import SharedWorkspace, Workspace, WorkspaceError

log = logging.getLogger(__name__)

TICK_SECONDS = 0.05
STATE_FLUSH_SECONDS = 0.25  # orchestrator.json: at most 4 writes per second
AGENT_REFRESH_SECONDS = 1.0  # agent states and their notices, unless a run starts or ends
AGENT_FLUSH_SECONDS = 1.0  # local.json of an agent whose status, request or run changed
AGENT_QUIET_FLUSH_SECONDS = 5.0  # local.json of an agent whose output, tokens or usage changed
CHECKPOINT_SECONDS = 30.0  # run.json of a busy run (a checkpoint only shortens a resume)
EVENTS_FLUSH_SECONDS = 0.5  # events.jsonl of a busy run, which the zoom screen follows
BUSY_READ_SECONDS = 0.2  # output of a run that is writing
INBOX_POLL_SECONDS = 1.0  # inbox scan when a file watcher reports new requests
RECENT_EVENTS = 400
RECENT_FINISHED_RUNS = 200
# orchestrator.json is rewritten on every start and finish, so finished requests beyond these
# counts move to .aipass/state/history/ to keep that cost flat as history grows.
ARCHIVE_ABOVE_FINISHED = 1500
KEEP_FINISHED = 500
IDLE_READ_SECONDS = 0.5  # a run quiet for a while is read less often
QUIET_AFTER_SECONDS = 2.0


@dataclass
class Snapshot:
    """A consistent copy of the orchestrator's state, safe to use on any thread."""

    agents: dict[str, AgentState]
    requests: list[Request]
    runs: dict[str, RunRecord]
    holding: str | None = None
    metrics: Any = None


class Orchestrator(RecoveryMixin):
    """Queue, dispatch and run lifecycle for one repository."""

    def __init__(
        self,
        repo: Path,
        settings: Settings | None = None,
        *,
        role: str = "cockpit",
        lock: FileLock | None = None,
        runner: Runner | None = None,
        workspace: Workspace | None = None,
        sampler: Any = None,
    ) -> None:
        self.repo = Path(repo).resolve()
        self.paths = Paths(self.repo)
        self.settings = settings if settings is not None else load_settings(self.repo)
        self.role = role
        self._lock_file = lock
        self._owns_lock = lock is None
        self.runner: Runner = runner or LocalRunner()
        self._runners: dict[str, Runner] = {self.runner.name: self.runner}
        self._workspace = workspace
        self._sampler = sampler
        self._mutex = threading.RLock()
        self._state = OrchestratorState()
        self._agents: dict[str, AgentState] = {}
        self._recent: dict[str, deque[Event]] = {}
        self._live: dict[str, LiveRun] = {}
        self._finished: dict[str, RunRecord] = {}
        self._subscribers: list[Callable[[list[Notice]], None]] = []
        self._notices: list[Notice] = []
        self._dirty_state = False
        self._dirty_agents: set[str] = set()
        self._pending_agent_writes: set[str] = set()  # agents whose local.json is out of date
        self._last_state_flush = 0.0
        self._agent_written: dict[str, tuple[tuple[Any, ...], float]] = {}  # what each local.json shows, and when
        self._last_agent_check = 0.0
        self._next_start_at = 0.0  # the earliest time the next run may start (start_rate)
        self._holding: str | None = None
        self._hold_tracker: Any = None
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pending_finish: list[Future[Any]] = []
        self._write_error: str | None = None
        self._finished_ok = 0
        self._finished_bad = 0
        self._started = False
        self._wake = threading.Event()
        self.extensions: dict[str, Any] = {}
        self._consumed_pending: list[tuple[Path, dict[str, Any], str | None]] = []
        self._urgent_flush = False
        self._sampled_pids: dict[str, int] = {}
        self._last_agent_refresh = 0.0
        self._sweep: dict[int, tuple[Runner, set[str]]] = {}
        self._agent_usage: dict[str, tuple[float, int]] = {}
        self._last_sample_time: float | None = None
        self._open_work: dict[tuple[str, str, str], str] = {}
        self._seen_duplicates: dict[str, str] = {}
        self._housekeeping_due = False
        self.inbox_watched = False
        """True while a file watcher calls wake() for new inbox files. The inbox is then scanned
        on a wake and once a second, not at every tick."""
        self._inbox_poked = True
        self._last_inbox_scan = 0.0

    # ----------------------------------------------------------------- lifecycle

    @property
    def started(self) -> bool:
        """Tell whether start() has run and close() has not."""
        return self._started

    @property
    def agent_names(self) -> list[str]:
        return list(self.settings.agents)

    def start(self, *, defer_housekeeping: bool = False) -> None:
        """Take the lock, load state and re-attach to live runs.

        With ``defer_housekeeping`` the parts of the start that nothing on screen waits for (CPU
        sampling, pruning the worktrees of removed agents, resuming plans) run at the first tick
        instead, so the cockpit draws its first frame sooner.
        """
        self.paths.ensure()
        _raise_fd_limit()
        if self._lock_file is None:
            self._lock_file = FileLock(self.paths.orchestrator_lock, role=self.role)
        if not self._lock_file.held:
            try:
                self._lock_file.acquire()
            except LockHeld as exc:
                raise _named_holder(exc) from None
        try:
            self.load()
            # Requests still in the inbox are read before runs are re-attached, so a run started
            # for one of them is linked to it instead of the request being queued a second time.
            self._ingest_inbox()
            self._reattach()
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aipass-finish")
            self._started = True
            self.flush(force=True)
            self._housekeeping_due = True
            if not defer_housekeeping:
                self._housekeeping()
        except BaseException:
            if self._owns_lock:
                self._lock_file.release()
            raise
        log.info("orchestrator started (%s) with %d agents, %d live runs", self.role, len(self._agents), len(self._live))

    def load(self) -> None:
        """Load orchestrator.json (rebuilding it from disk if it is unreadable) and agent states."""
        self.paths.ensure()
        try:
            state = read_model(self.paths.orchestrator, OrchestratorState)
        except CorruptStateError as exc:
            self._notify("error", "State file was unreadable", f"{exc}. It was rebuilt from the runs and requests on disk.")
            state = self._rebuild_state()
        self._state = state or OrchestratorState()
        self._index_requests()
        self._state.pid = os.getpid()
        self._state.started_at = clock.now()
        for name, config in self.settings.agents.items():
            agent = self._load_agent_state(name, config)
            self._agents[name] = agent
            self._recent[name] = deque(maxlen=RECENT_EVENTS)
        self._refresh_all_agents()

    def _load_agent_state(self, name: str, config: AgentConfig) -> AgentState:
        try:
            agent = read_model(self.paths.agent_state(name), AgentState)
        except CorruptStateError as exc:
            self._notify("warning", "Agent state was unreadable", f"{exc}. It was rebuilt from the agent's runs on disk.", agent=name)
            agent = self._agent_from_runs(name, config)
        except StateError as exc:
            self._notify("error", "Agent state is too new", str(exc), agent=name)
            agent = None
        if agent is None:
            agent = AgentState(name=name, kind=config.kind, model=config.model)
        agent.kind = config.kind
        agent.model = config.model
        return agent

    def _agent_from_runs(self, name: str, config: AgentConfig) -> AgentState:
        """Rebuild an agent's state from its newest finished run; a live run fills the rest when re-attached."""
        agent = AgentState(name=name, kind=config.kind, model=config.model)
        ended = [rid for rid, status in self._state.runs.items() if _run_agent(rid, name) and status in FINAL_RUN_STATUSES]
        # Run ids start with the agent name and the UTC start time, so the newest sorts last.
        for run_id in sorted(ended, reverse=True):
            try:
                record = read_model(self.paths.run_dir(run_id) / "run.json", RunRecord)
            except StateError:
                continue
            if record is not None and record.agent == name:
                agent.last_run_status = record.status
                agent.last_run_message = record.message
                break
        return agent

    def start_thread(self) -> threading.Thread:
        """Run the tick loop in one background thread until close()."""
        if not self._started:
            self.start()
        self._thread = threading.Thread(target=self._loop, name="aipass-orchestrator", daemon=True)
        self._thread.start()
        return self._thread

    def _loop(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.tick()
            except Exception:  # the loop must survive any bug in one tick
                log.exception("orchestrator tick failed")
                self._notify("error", "Orchestrator error", "an internal error occurred; see .aipass/logs/cockpit.log")
            self._wake.wait(TICK_SECONDS)
            self._wake.clear()

    def wake(self) -> None:
        """Run the next tick now and scan the inbox in it (called by the inbox watcher)."""
        self._inbox_poked = True
        self._wake.set()

    def run_forever(self, until_idle: bool = False) -> int:
        """Tick in this thread until interrupted, or until idle when ``until_idle``.

        Returns 0 when every run finished here succeeded, 1 otherwise.
        """
        if not self._started:
            self.start()
        try:
            while not self._stop_event.is_set():
                try:
                    self.tick()
                except Exception:  # keep supervising the other runs
                    log.exception("orchestrator tick failed")
                if until_idle and self.idle():
                    break
                self._wake.wait(TICK_SECONDS)
                self._wake.clear()
        finally:
            self.close()
        return 0 if self._finished_bad == 0 else 1

    def idle(self) -> bool:
        """Tell whether nothing is queued, held or running, and no pull request is being recorded."""
        with self._mutex:
            if self._live or any(not f.done() for f in self._pending_finish):
                return False
            if any(r.status in OPEN_REQUEST_STATUSES for r in self._state.requests.values()):
                return False
            return not any(self._inbox_files())

    def close(self, stop_runs: bool = False) -> None:
        """Stop ticking and release the lock; live runs keep going unless ``stop_runs``."""
        from aipass_tui.core.plans.host import existing_host

        host = existing_host(self)
        if host is not None:
            host.stop()
        self._stop_event.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if stop_runs:
            self._stop_everything_now()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
            with self._mutex:
                self._collect_finished_workspaces()
        with self._mutex:
            for live in list(self._live.values()):
                if live.dirty:
                    self._checkpoint(live)
                live.close(live.runner)
            self._live.clear()
            try:
                self.flush(force=True, every_agent=True)
            except StateWriteError as exc:
                log.error("final state write failed: %s", exc)
        self._publish()
        if self._sampler is not None and hasattr(self._sampler, "stop"):
            self._sampler.stop()
        if self._owns_lock and self._lock_file is not None:
            self._lock_file.release()
        self._started = False

    def _stop_everything_now(self) -> None:
        with self._mutex:
            for live in self._live.values():
                live.record.stop_requested = live.record.stop_requested or "stop"
                live.runner.terminate(live.handle)
        deadline = clock.now() + self.settings.limits.stop_grace
        while clock.now() < deadline:
            with self._mutex:
                if all(not live.runner.alive(live.handle) for live in self._live.values()):
                    break
            time.sleep(0.05)
        with self._mutex:
            for live in self._live.values():
                live.runner.kill(live.handle)
            for _ in range(40):
                for handle in self._exited_handles():
                    live = self._live.get(handle.run_id)
                    if live is not None:
                        self._finalize(live)
                self._sweep_stopped()
                if not self._live:
                    break
                time.sleep(0.05)

    # ----------------------------------------------------------------- subscribers

    def subscribe(self, callback: Callable[[list[Notice]], None]) -> None:
        with self._mutex:
            self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[list[Notice]], None]) -> None:
        with self._mutex:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

    def _publish(self) -> None:
        with self._mutex:
            notices, self._notices = self._notices, []
            subscribers = list(self._subscribers)
        if not notices:
            return
        for callback in subscribers:
            try:
                callback(notices)
            except Exception:
                log.exception("a notice subscriber failed")

    def notify(self, level: str, title: str, message: str, *, agent: str | None = None) -> None:
        """Publish a notice for the person at the cockpit (thread-safe; used by automation)."""
        with self._mutex:
            self._notify(level, title, message, agent=agent)
        self.wake()

    def _notify(self, level: str, title: str, message: str, *, agent: str | None = None, run_id: str | None = None) -> None:
        levels = {"error": logging.ERROR, "warning": logging.WARNING}
        log.log(levels.get(level, logging.INFO), "%s: %s", title, message)
        self._notices.append(UserNotice(level, title, message, agent, run_id))  # type: ignore[arg-type]

    # ----------------------------------------------------------------- the tick

    def tick(self) -> None:
        """Do one round of work: inbox, output, exits, limits, starts, state writes."""
        if self._housekeeping_due:
            self._housekeeping()
        now = clock.now()
        if self._inbox_poked or not self.inbox_watched or now - self._last_inbox_scan >= INBOX_POLL_SECONDS:
            # Cleared before the scan: a file written during it wakes the next tick.
            self._inbox_poked = False
            self._last_inbox_scan = now
            with self._mutex:
                self._ingest_inbox()
        # New requests reach the cockpit before this tick spends time starting runs.
        self._publish()
        with self._mutex:
            self._read_output(now)
            self._handle_exits(now)
            self._sweep_stopped()
            self._enforce_limits(now)
            self._collect_finished_workspaces()
            self._update_hold(now)
            self._start_runs(now)
            self._update_metrics()
            if self._urgent_flush or now - self._last_agent_refresh >= AGENT_REFRESH_SECONDS:
                self._last_agent_refresh = now
                self._refresh_dirty_agents()
            # Starts and finishes are written at once; other changes are coalesced.
            self.flush(force=self._urgent_flush)
            self._urgent_flush = False
        self._publish()

    # ----------------------------------------------------------------- requests

    def dispatch(
        self,
        agent: str,
        subject: str,
        body: str = "",
        *,
        priority: int = 0,
        sender: str = "user",
        plan_task: str | None = None,
        branch: str | None = None,
    ) -> Request:
        """Queue a request (coalescing an identical open one) and return it."""
        if agent not in self.settings.agents:
            known = ", ".join(self.settings.agents) or "none configured"
            raise ValueError(f"unknown agent {agent!r} (configured agents: {known})")
        if not subject.strip():
            raise ValueError("the subject is empty: say what the agent should do")
        message = new_request_message(agent, subject, body, priority=priority, sender=sender, plan_task=plan_task, branch=branch)
        with self._mutex:
            request = self._submit(message)
        self._publish()
        return request.model_copy(deep=True)

    def _submit(self, message: dict[str, Any]) -> Request:
        """Write a request to the inbox (durable at once), then accept it without waiting for a tick.

        The inbox file is moved to ``inbox/consumed/`` only after orchestrator.json holding the
        request is on disk, so a crash in between re-reads the file and loses nothing.
        """
        path = self.paths.inbox / f"{message['id']}.json"
        write_json(path, message)
        request = self._accept(message)
        self._consumed_pending.append((path, message, request.id if request.id != message["id"] else None))
        return request

    def _accept(self, message: dict[str, Any]) -> Request:
        """Add a request message to the queue, or coalesce it into an identical open request."""
        existing = self._state.requests.get(message["id"]) or self._state.requests.get(self._seen_duplicates.get(message["id"], ""))
        if existing is not None:
            if existing.id == message["id"] and not existing.same_work(message["agent"], message["subject"], message.get("body", "")):
                # A different request under an id already taken (ids made in the same second by
                # two processes can collide): it is reported, and its file stays in inbox/consumed/.
                self._notify(
                    "error", "Request id already used",
                    f"request {message['id']} for {message['agent']} ({str(message['subject'])[:60]!r}) has the id of another "
                    f"request and was not queued; dispatch it again (its file is kept in {self.paths.inbox / 'consumed'})",
                    agent=message["agent"],
                )
            return existing
        key = (message["agent"], message["subject"], message.get("body", ""))
        other = self._state.requests.get(self._open_work.get(key, ""))
        if other is not None and other.status in OPEN_REQUEST_STATUSES and other.same_work(*key):
            other.duplicates += 1
            other.duplicate_senders.append(message.get("sender", "user"))
            other.duplicate_ids.append(message["id"])
            self._seen_duplicates[message["id"]] = other.id
            self._changed_request(other)
            return other
        self._state.seq += 1
        request = Request(
            id=message["id"],
            agent=message["agent"],
            subject=message["subject"],
            body=message.get("body", ""),
            sender=message.get("sender", "user"),
            priority=int(message.get("priority", 0)),
            created_at=float(message.get("created_at") or clock.now()),
            plan_task=message.get("plan_task"),
            branch=message.get("branch"),
            seq=self._state.seq,
        )
        if request.agent not in self.settings.agents:
            request.status = RequestStatus.HELD
            request.held_reason = f"agent {request.agent!r} is not in the config; add it or move this request"
        self._state.requests[request.id] = request
        self._open_work[key] = request.id
        self._changed_request(request)
        return request

    def _index_requests(self) -> None:
        """Rebuild the lookup tables for coalescing and for ids already accepted."""
        self._open_work = {}
        self._seen_duplicates = {}
        for request in self._state.requests.values():
            for duplicate in request.duplicate_ids:
                self._seen_duplicates[duplicate] = request.id
            if request.status in OPEN_REQUEST_STATUSES:
                self._open_work[(request.agent, request.subject, request.body)] = request.id

    def _move_consumed(self) -> None:
        """Move accepted inbox files to ``inbox/consumed/``, after their state is on disk."""
        consumed = self.paths.inbox / "consumed"
        consumed.mkdir(exist_ok=True)
        for path, message, coalesced_into in self._consumed_pending:
            try:
                if coalesced_into:
                    write_json(consumed / path.name, {**message, "coalesced_into": coalesced_into}, fsync=False)
                    path.unlink(missing_ok=True)
                else:
                    os.replace(path, consumed / path.name)
            except FileNotFoundError:
                continue
            except (OSError, StateWriteError) as exc:
                log.warning("could not move inbox file %s to consumed/: %s", path, exc)
        self._consumed_pending = []

    def _changed_request(self, request: Request) -> None:
        request.updated_at = clock.now()
        self._dirty_state = True
        self._dirty_agents.add(request.agent)
        self._notices.append(RequestChanged(request.detached_copy()))

    def _request(self, request_id: str) -> Request:
        request = self._state.requests.get(request_id)
        if request is None:
            matches = [r for r in self._state.requests.values() if r.id.endswith(request_id) or r.id.startswith(request_id)]
            if len(matches) == 1:
                return matches[0]
            raise KeyError(f"request {request_id!r} not found; `aipass-tui status` lists request ids")
        return request

    def cancel(self, request_id: str) -> Request:
        with self._mutex:
            request = self._request(request_id)
            if request.status in (RequestStatus.QUEUED, RequestStatus.HELD):
                request.status = RequestStatus.CANCELLED
                request.held_reason = None
                request.message = "cancelled before it started"
                self._changed_request(request)
            elif request.status == RequestStatus.RUNNING and request.run in self._live:
                request.message = "cancel requested; stopping its run"
                self._begin_stop(self._live[request.run], "stop", cancel=True)
                self._changed_request(request)
            else:
                raise ValueError(f"request {request.id} is {request.status.value}; only queued, held or running requests can be cancelled")
            self.flush(force=True)
            copy = request.model_copy(deep=True)
        self._publish()
        return copy

    def set_priority(self, request_id: str, priority: int) -> Request:
        with self._mutex:
            request = self._request(request_id)
            request.priority = int(priority)
            self._changed_request(request)
            copy = request.model_copy(deep=True)
        self._publish()
        return copy

    def retry(self, request_id: str) -> Request:
        """Queue a new request with the fields of a failed or cancelled one."""
        with self._mutex:
            request = self._request(request_id)
            if request.status not in (RequestStatus.FAILED, RequestStatus.CANCELLED):
                raise ValueError(f"request {request.id} is {request.status.value}; only failed or cancelled requests can be retried")
            message = new_request_message(
                request.agent, request.subject, request.body, priority=request.priority,
                sender=f"retry of {request.id}", plan_task=request.plan_task, branch=request.branch,
            )
            new = self._submit(message)
            copy = new.model_copy(deep=True)
        self._publish()
        return copy

    def move(self, request_id: str, agent: str) -> Request:
        with self._mutex:
            if agent not in self.settings.agents:
                raise ValueError(f"unknown agent {agent!r}")
            request = self._request(request_id)
            if request.status not in (RequestStatus.QUEUED, RequestStatus.HELD):
                raise ValueError(f"request {request.id} is {request.status.value}; only queued or held requests can be moved")
            self._dirty_agents.add(request.agent)
            request.agent = agent
            request.status = RequestStatus.QUEUED
            request.held_reason = None
            request.branch = None
            self._changed_request(request)
            self.flush(force=True)
            copy = request.model_copy(deep=True)
        self._publish()
        return copy

    def stop(self, target: str) -> list[str]:
        """Stop the live run of an agent, or a run by id; return the ids being stopped."""
        with self._mutex:
            runs = [live for live in self._live.values() if live.record.agent == target or live.record.id == target]
            if not runs:
                runs = [live for live in self._live.values() if live.record.id.startswith(target)]
            for live in runs:
                self._begin_stop(live, "stop")
            ids = [live.record.id for live in runs]
        self._publish()
        return ids

    def stop_all(self) -> list[str]:
        with self._mutex:
            for live in self._live.values():
                self._begin_stop(live, "stop")
            return list(self._live)

    # ----------------------------------------------------------------- reads

    def snapshot(self) -> Snapshot:
        with self._mutex:
            # The cockpit takes a snapshot once a second under the lock the tick needs, so the
            # models' own copies (every list and nested model copied) replace generic deep copies.
            runs = {rid: live.record.detached_copy() for rid, live in self._live.items()}
            for rid, record in self._finished.items():
                runs.setdefault(rid, record.detached_copy())
            metrics = self._sampler.latest() if self._sampler is not None and hasattr(self._sampler, "latest") else None
            return Snapshot(
                agents={name: state.detached_copy() for name, state in self._agents.items()},
                requests=sorted((r.detached_copy() for r in self._state.requests.values()), key=lambda r: r.seq),
                runs=runs,
                holding=self._holding,
                metrics=metrics,
            )

    def recent_events(self, agent: str, *, from_disk: bool = True) -> list[Event]:
        """Return the agent's latest events: from memory, or from its newest run's events.jsonl.

        After a restart the memory is empty until the agent runs again, so the newest run on
        disk (finished in an earlier session) fills it once, unless ``from_disk`` is False.
        """
        with self._mutex:
            recent = self._recent.get(agent)
            if recent is None or recent or not from_disk:
                return list(recent or ())
            runs = sorted((rid for rid in self._state.runs if _run_agent(rid, agent)), reverse=True)
        events = _tail_events(self.paths.run_dir(runs[0]) / "events.jsonl", RECENT_EVENTS) if runs else []
        with self._mutex:
            recent = self._recent[agent]
            if not recent:
                recent.extend(events)
            return list(recent)

    def run_history(self, agent: str) -> list[RunRecord]:
        """Return the agent's runs, newest first, read from the run folders."""
        with self._mutex:
            ids = [rid for rid in self._state.runs if _run_agent(rid, agent)]
        records: list[RunRecord] = []
        for rid in ids:
            live = self._live.get(rid)
            if live is not None:
                records.append(live.record.model_copy(deep=True))
                continue
            try:
                record = read_model(self.paths.run_dir(rid) / "run.json", RunRecord)
            except StateError:
                continue
            if record is not None and record.agent == agent:
                records.append(record)
        return sorted(records, key=lambda r: r.started_at or 0, reverse=True)

    # ----------------------------------------------------------------- inbox

    def _inbox_files(self) -> list[Path]:
        try:
            with os.scandir(self.paths.inbox) as entries:
                return sorted(
                    Path(e.path) for e in entries
                    if e.name.endswith(".json") and not e.name.startswith(".") and e.is_file()
                )
        except FileNotFoundError:
            return []

    def _ingest_inbox(self) -> None:
        pending = {path for path, _, _ in self._consumed_pending}
        files = [path for path in self._inbox_files() if path not in pending]
        if not files:
            return
        commands: list[tuple[Path, dict[str, Any]]] = []
        accepted: list[tuple[Path, dict[str, Any]]] = []
        for path in files:
            try:
                message = read_json(path)
            except CorruptStateError as exc:
                self._notify("error", "Unreadable inbox file", f"{exc}; fix or delete it, then dispatch again")
                continue
            except OSError as exc:
                self._notify("error", "Inbox file could not be read", f"{path}: {exc}")
                continue
            if message is None:
                continue
            problem = _validate_message(message, self.settings)
            if problem:
                rejected = self.paths.inbox / "rejected" / path.name
                rejected.parent.mkdir(exist_ok=True)
                os.replace(path, rejected)
                self._notify("error", "Inbox request rejected", f"{path.name}: {problem}; the file was kept in {rejected}")
                continue
            if message.get("type", "request") == "command":
                commands.append((path, message))
                continue
            accepted.append((path, message))
        # Ids made in the same second do not sort by time, so order by creation time.
        accepted.sort(key=lambda item: (float(item[1].get("created_at") or 0), item[0].name))
        for path, message in accepted:
            request = self._accept(message)
            self._consumed_pending.append((path, message, request.id if request.id != message["id"] else None))
        for path, message in commands:
            path.unlink(missing_ok=True)
            self._run_command(message)

    def _run_command(self, message: dict[str, Any]) -> None:
        ctx = HandlerContext(self.paths, self.settings, self)
        try:
            result = run_handler(ctx, message["name"], dict(message.get("args") or {}))
            write_reply(self.paths, message["id"], True, result)
            if isinstance(result, dict) and isinstance(result.get("pull"), dict):
                self._notices.append(PullChanged(result["pull"]))
        except HandlerError as exc:
            write_reply(self.paths, message["id"], False, error=str(exc), exit_code=exc.exit_code)
        except KeyError as exc:
            write_reply(self.paths, message["id"], False, error=str(exc.args[0]) if exc.args else str(exc), exit_code=2)
        except ValueError as exc:
            write_reply(self.paths, message["id"], False, error=str(exc), exit_code=1)
        except Exception as exc:
            log.exception("command %s failed", message.get("name"))
            write_reply(self.paths, message["id"], False, error=f"{type(exc).__name__}: {exc}", exit_code=1)
        self.flush(force=True)

    # ----------------------------------------------------------------- starting runs

    def _update_metrics(self) -> None:
        """Tell the sampler which process trees to measure, and refresh agents on a new sample."""
        if self._sampler is None:
            return
        pids = {live.record.agent: live.handle.pid for live in self._live.values() if live.handle.pid}
        if pids != self._sampled_pids and hasattr(self._sampler, "set_agents"):
            self._sampler.set_agents(pids)
            self._sampled_pids = pids
        snapshot = self._sampler.latest() if hasattr(self._sampler, "latest") else None
        if snapshot is not None and snapshot.time != self._last_sample_time:
            self._last_sample_time = snapshot.time
            # Only a visible change refreshes an agent: a fleet of idle agents must not rewrite
            # every local.json once a second.
            for name in pids:
                usage = getattr(snapshot, "agents", {}).get(name)
                if usage is None:
                    continue
                cpu, rss = usage
                old_cpu, old_rss = self._agent_usage.get(name, (-100.0, 0))
                if abs(cpu - old_cpu) >= 2.0 or abs(rss - old_rss) > max(old_rss // 20, 1 << 20):
                    self._agent_usage[name] = (cpu, rss)
                    self._dirty_agents.add(name)

    def _update_hold(self, now: float) -> None:
        reason = None
        if self._hold_tracker is not None and self._sampler is not None:
            snapshot = self._sampler.latest()
            if snapshot is not None:
                reason = self._hold_tracker.update(snapshot)
        changed = (reason is None) != (self._holding is None)
        self._holding = reason
        if changed:
            self._notices.append(HoldChanged(reason))
            if reason:
                log.info("holding new starts: %s", reason)
            else:
                log.info("new starts are no longer held")

    def _start_runs(self, now: float) -> None:
        limits = self.settings.limits
        # Each start books the next slot 1/start_rate after its own, so starts keep the rate
        # even when ticks fall between slots. Slots missed by up to a tick (or by a tick's worth
        # of starts at high rates) are caught up, so idle time banks no larger burst than that.
        interval = 1.0 / limits.start_rate
        slack = max((limits.start_rate * TICK_SECONDS - 1.0) * interval, TICK_SECONDS)
        busy = {live.record.agent for live in self._live.values()}
        # An agent whose last run is still being committed and checked must not start the next one.
        busy |= {future.run_record.agent for future in self._pending_finish if not future.done()}  # type: ignore[attr-defined]
        waiting = sorted(
            (r for r in self._state.requests.values() if r.status in (RequestStatus.QUEUED, RequestStatus.HELD)),
            key=lambda r: (-r.priority, r.seq),
        )
        chosen: set[str] = set()
        for request in waiting:
            if request.agent not in self.settings.agents:
                continue
            if request.agent in busy or request.agent in chosen:
                self._set_waiting(request, RequestStatus.QUEUED, None)
                continue
            chosen.add(request.agent)
            if len(self._live) >= limits.max_parallel:
                self._set_waiting(request, RequestStatus.HELD, f"global cap: {limits.max_parallel} runs already executing")
                continue
            if self._holding and self.settings.agents[request.agent].runner == "local":
                # The local CPU hold does not apply to runs that execute on cluster nodes.
                self._set_waiting(request, RequestStatus.HELD, f"holding new starts: {self._holding}")
                continue
            if now < self._next_start_at:
                self._set_waiting(request, RequestStatus.QUEUED, None)
                continue
            self._next_start_at = max(self._next_start_at, now - slack) + interval
            try:
                self._start_run(request)
            except Exception as exc:  # a bug or an unexpected OS error must not retry every tick
                log.exception("starting request %s failed", request.id)
                self._fail_request(request, f"could not start the run: {type(exc).__name__}: {exc}")
            busy.add(request.agent)

    def _set_waiting(self, request: Request, status: RequestStatus, reason: str | None) -> None:
        if request.status != status or request.held_reason != reason:
            request.status = status
            request.held_reason = reason
            self._changed_request(request)

    def _start_run(self, request: Request) -> None:
        config = self.settings.agents[request.agent]
        adapter = adapter_for(request.agent, config)
        run_id = clock.new_id(request.agent)
        run_dir = self.paths.run_dir(run_id)
        try:
            info = self._get_workspace().prepare(request.agent, config, request)
        except WorkspaceError as exc:
            self._fail_request(request, f"could not prepare the workspace: {exc}")
            return
        session_id = str(uuid.uuid4()) if config.kind == "claude" else None
        ctx = RunContext(
            prompt=compose_prompt(request), subject=request.subject, body=request.body,
            run_id=run_id, request_id=request.id, cwd=info.cwd, session_id=session_id,
        )
        try:
            argv = adapter.build_argv(ctx)
        except ValueError as exc:
            self._fail_request(request, str(exc))
            return
        if shutil.which(argv[0], path=os.environ.get("PATH")) is None:
            if config.binary:
                where = "binary"
            elif config.kind == "command":
                where = "command"
            else:
                where = "PATH"
            self._fail_request(
                request,
                f"{request.agent}: program {argv[0]!r} was not found or is not executable; "
                f"install it or fix {where} in [agents.{request.agent}] of .aipass/config.toml",
            )
            return
        try:
            runner = self.runner_for(config.runner)
        except RuntimeError as exc:
            self._fail_request(request, str(exc))
            return
        record = RunRecord(
            id=run_id, agent=request.agent, request=request.id, kind=config.kind, runner=runner.name,
            argv=_redact_argv(argv, ctx.prompt), cwd=str(info.cwd), started_at=clock.now(),
            branch=info.branch, worktree=str(info.worktree) if info.worktree else None,
            base_commit=info.base_commit, session_id=session_id,
        )
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / "tmp"
        tmp.mkdir(mode=0o700, exist_ok=True)
        try:
            write_json(run_dir / "request.json", request, fsync=False)
            write_json(run_dir / "run.json", record)
            request.status = RequestStatus.RUNNING
            request.held_reason = None
            request.run = run_id
            request.runs.append(run_id)
            request.branch = info.branch or request.branch
            self._state.runs[run_id] = RunStatus.STARTING.value
            # run.json and request.json are on disk before the process exists. A restart finds the
            # run folder even if orchestrator.json was not written yet, so no request starts twice.
            self._changed_request(request)
        except StateWriteError as exc:
            self._write_failed(exc)
            request.status = RequestStatus.QUEUED
            request.run = None
            if run_id in request.runs:
                request.runs.remove(run_id)
            self._state.runs.pop(run_id, None)
            return
        env = self._run_env(request, config, adapter.extra_env(ctx), run_id, tmp)
        try:
            handle = runner.start(run_id, run_dir, argv, info.cwd, env)
        except OSError as exc:
            record.status = RunStatus.FAILED
            record.ended_at = clock.now()
            record.message = f"could not start {argv[0]!r}: {exc.strerror or exc}; check the agent's binary or PATH"
            self._write_run(run_dir, record)
            self._state.runs[run_id] = record.status.value
            self._fail_request(request, record.message)
            self._finished[run_id] = record
            self._notices.append(RunFinished(record.model_copy(deep=True)))
            return
        self._urgent_flush = True
        record.pid = handle.pid
        record.pid_create_time = handle.create_time
        record.node = handle.node
        record.status = RunStatus.RUNNING
        self._state.runs[run_id] = RunStatus.RUNNING.value
        live = LiveRun(record=record, handle=handle, adapter=adapter, parser=adapter.new_parser(), runner=runner)
        live.open_events()
        live.quiet_since = clock.now()
        self._live[run_id] = live
        # Unsynced on purpose: the synced record written before the start already prevents a
        # second start, and the wrapper's pid file covers a crash before this write lands.
        try:
            live.checkpoint(fsync=False)
        except StateWriteError as exc:
            self._write_failed(exc)
        self._dirty_state = True
        self._dirty_agents.add(request.agent)
        self._notices.append(RunStarted(record.model_copy(deep=True)))
        log.info("run %s started for request %s (agent %s, pid %s)", run_id, request.id, request.agent, handle.pid)

    def _run_env(self, request: Request, config: AgentConfig, extra: dict[str, str], run_id: str, tmp: Path) -> dict[str, str]:
        drop = [*self.settings.limits.env_drop, *config.env_drop]
        env = {k: v for k, v in os.environ.items() if not _dropped(k, drop) and not k.startswith("AIPASS_")}
        env.update(extra)
        env.update(config.env)
        env.update(
            AIPASS_AGENT=request.agent,
            AIPASS_RUN_ID=run_id,
            AIPASS_REQUEST_ID=request.id,
            AIPASS_REPO=str(self.repo),
            TMPDIR=str(tmp),
        )
        return env

    def _housekeeping(self) -> None:
        """Finish the start: CPU sampling, worktrees of removed agents, interrupted plans."""
        self._housekeeping_due = False
        steps = ((self._start_metrics, "CPU sampling"), (self._prune_removed_worktrees, "worktree pruning"), (self._resume_plans, "resuming plans"))
        for step, label in steps:
            try:
                step()
            except Exception as exc:  # a failed step must not stop the other steps or the ticks
                log.exception("%s failed at start", label)
                self._notify("error", "Start step failed", f"{label} failed: {exc}; see .aipass/logs/cockpit.log")

    def _resume_plans(self) -> None:
        """Follow plans that were running or paused when the last orchestrator stopped."""
        from aipass_tui.core.plans.host import host_for

        host = host_for(self, self.paths, self.settings, start_thread=False)
        resumed = host.resume()
        if resumed:
            host.start_thread()
            log.info("resumed plans: %s", ", ".join(resumed))

    def _prune_removed_worktrees(self) -> None:
        workspace = self._get_workspace()
        prune = getattr(workspace, "prune_removed", None)
        if prune is None:
            return
        try:
            result = prune(set(self.settings.agents)) or {}
        except Exception as exc:  # pruning is housekeeping; a git problem must not stop the start
            log.warning("could not prune worktrees of removed agents: %s", exc)
            return
        for name, reason in (result.get("kept") or {}).items():
            self._notify("warning", "Worktree kept", f"the worktree of removed agent {name!r} was kept: {reason}")

    def _get_workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = _default_workspace(self.repo, self.paths, self.settings)
        return self._workspace

    def _fail_request(self, request: Request, message: str) -> None:
        self._finished_bad += 1
        request.status = RequestStatus.FAILED
        request.message = message
        request.held_reason = None
        self._changed_request(request)
        self._notify("error", f"Request failed: {request.subject[:60]}", message, agent=request.agent)

    # ----------------------------------------------------------------- reading runs

    def _read_output(self, now: float) -> None:
        for live in self._live.values():
            if live.handle.node != live.record.node:
                # A cluster run learns its node only after the start.
                live.record.node = live.handle.node
                live.dirty = True
                self._dirty_agents.add(live.record.agent)
            if now < live.next_read_at:
                continue
            events = live.pump(live.runner)
            if events:
                live.quiet_since = now
                live.next_read_at = now + BUSY_READ_SECONDS
                self._on_events(live, events)
            elif now - live.quiet_since > QUIET_AFTER_SECONDS:
                live.next_read_at = now + IDLE_READ_SECONDS
            if live.dirty and now - live.last_checkpoint >= CHECKPOINT_SECONDS:
                # A periodic checkpoint only speeds up a resume, so it needs no fsync: a lost
                # one makes the next orchestrator re-read a little more output.
                self._checkpoint(live, fsync=False)
            elif live.events_pending and now - live.events_flushed_at >= EVENTS_FLUSH_SECONDS:
                live.flush_events(now)

    def _on_events(self, live: LiveRun, events: list[Event]) -> None:
        record = live.record
        self._recent[record.agent].extend(events)
        if record.stalled:
            record.stalled = False
            self._notify("info", f"{record.agent} is producing output again", f"run {record.id} is no longer stalled", agent=record.agent, run_id=record.id)
        self._dirty_agents.add(record.agent)
        self._notices.append(RunOutput(record.agent, record.id, events))

    def _checkpoint(self, live: LiveRun, fsync: bool = True) -> None:
        try:
            live.checkpoint(fsync=fsync)
        except StateWriteError as exc:
            self._write_failed(exc)

    def _sweep_stopped(self) -> None:
        """Kill what stopped runs left outside their process groups, one scan per runner."""
        sweeps, self._sweep = self._sweep, {}
        for runner, run_ids in sweeps.values():
            sweep = getattr(runner, "sweep", None)
            if sweep is not None:
                sweep(run_ids)

    def _exited_handles(self) -> list[Any]:
        """Ask each runner which of its live runs have ended."""
        groups: dict[int, tuple[Runner, list[Any]]] = {}
        for live in self._live.values():
            groups.setdefault(id(live.runner), (live.runner, []))[1].append(live.handle)
        ended: list[Any] = []
        for runner, handles in groups.values():
            ended.extend(runner.exited(handles))
        return ended

    def runner_for(self, name: str) -> Runner:
        """Return the runner called ``name`` (``local`` or ``ray``), creating it on first use.

        Raises RuntimeError with what to install or configure when the runner cannot be created.
        """
        runner = self._runners.get(name)
        if runner is None:
            if name != "ray":
                raise RuntimeError(f"unknown runner {name!r}: use runner = \"local\" or \"ray\"")
            try:
                from aipass_tui.core.runners.ray import RayRunner
            except ImportError as exc:
                raise RuntimeError(
                    f"runner = \"ray\" needs Ray ({exc}): install it with pip install 'aipass-tui[ray]'"
                ) from exc
            runner = RayRunner(self.settings.cluster, self.paths, agents=self.settings.agents)
            self._runners[name] = runner
        return runner

    def _handle_exits(self, now: float) -> None:
        if not self._live:
            return
        for handle in self._exited_handles():
            live = self._live.get(handle.run_id)
            if live is None:
                continue
            if live.runner.exit_code(handle) is None and live.exit_seen_at is None:
                # The wrapper writes the exit file just before it ends; give a late write one more tick.
                live.exit_seen_at = now
                continue
            self._finalize(live)

    def _finalize(self, live: LiveRun) -> None:
        record = live.record
        events = live.pump(live.runner, final=True)
        if events:
            self._on_events(live, events)
        exit_code = live.runner.exit_code(live.handle)
        if record.stop_requested:
            self._sweep.setdefault(id(live.runner), (live.runner, set()))[1].add(record.id)
        summary = record.summary
        evidence = Evidence(
            exit_code=exit_code,
            stop_requested=record.stop_requested,
            result_seen=summary.result_is_error is not None,
            result_is_error=summary.result_is_error,
            result_text=summary.result_text,
            errors=list(summary.errors),
            error_kinds=list(summary.error_kinds),
            stderr_tail=bytes(live.stderr_tail).decode("utf-8", "replace"),
            stdout_tail="\n".join(live.stdout_tail),
            repo_changed=self._repo_changed(live) if record.kind == "aider" else None,
        )
        outcome = live.adapter.judge(evidence)
        record.status = outcome.status
        record.message = outcome.message
        record.exit_code = exit_code
        record.ended_at = clock.now()
        record.stalled = False
        self._checkpoint(live)
        live.close(live.runner)
        del self._live[record.id]
        self._remember_finished(record)
        self._after_run(record)

    def _repo_changed(self, live: LiveRun) -> bool | None:
        """Tell whether a run changed its repository (a cluster run's clone lives on its node)."""
        check = getattr(live.runner, "repo_changed", None)
        if check is not None:
            return check(live.handle)
        return _repo_changed(Path(live.record.cwd), live.record.base_commit)

    def cluster_nodes(self) -> list[dict[str, Any]]:
        """Return the Ray cluster's nodes for the CPU meter; empty when no cluster runner exists."""
        runner = self._runners.get("ray")
        nodes = getattr(runner, "cluster_nodes", None)
        return nodes() if nodes is not None else []

    def _remember_finished(self, record: RunRecord) -> None:
        self._urgent_flush = True
        self._state.runs[record.id] = record.status.value
        self._finished[record.id] = record
        while len(self._finished) > RECENT_FINISHED_RUNS:
            self._finished.pop(next(iter(self._finished)))
        self._dirty_state = True
        self._dirty_agents.add(record.agent)

    def _after_run(self, record: RunRecord) -> None:
        request = self._state.requests.get(record.request)
        ok = record.status == RunStatus.SUCCEEDED
        if ok:
            self._finished_ok += 1
        else:
            self._finished_bad += 1
        if request is not None:
            if request.status == RequestStatus.RUNNING or request.run == record.id:
                if record.stop_requested == "stop" and request.message == "cancel requested; stopping its run":
                    request.status = RequestStatus.CANCELLED
                    request.message = "cancelled while running"
                else:
                    request.status = RequestStatus.DONE if ok else RequestStatus.FAILED
                    request.message = record.message
                self._changed_request(request)
            if record.stop_requested == "stall" and self.settings.agents.get(record.agent, None) is not None:
                if self.settings.agents[record.agent].stall_action == "retry" and not request.sender.startswith("stall retry"):
                    self._submit(new_request_message(
                        request.agent, request.subject, request.body, priority=request.priority,
                        sender=f"stall retry of {request.id}", plan_task=request.plan_task, branch=request.branch,
                    ))
        self._notices.append(RunFinished(record.model_copy(deep=True)))
        level = "info" if ok else "error"
        title = f"{record.agent}: run {record.status.value}"
        self._notices.append(UserNotice(level, title, record.message or "", record.agent, record.id))  # type: ignore[arg-type]
        log.info("run %s finished: %s (%s)", record.id, record.status.value, record.message)
        if ok and request is not None and self._executor is not None:
            config = self.settings.agents.get(record.agent)
            if config is not None:
                future = self._executor.submit(self._get_workspace().finish, record.model_copy(deep=True), request.model_copy(deep=True), config)
                future.add_done_callback(lambda _f: self.wake())
                future.run_record = record  # type: ignore[attr-defined]
                self._pending_finish.append(future)

    def _collect_finished_workspaces(self) -> None:
        keep: list[Future[Any]] = []
        for future in self._pending_finish:
            if not future.done():
                keep.append(future)
                continue
            record: RunRecord = future.run_record  # type: ignore[attr-defined]
            try:
                pull = future.result()
            except Exception as exc:  # git or a check failed in a way the git flow did not handle
                log.exception("recording the pull request of run %s failed", record.id)
                self._notify("error", f"{record.agent}: pull request not recorded", f"{type(exc).__name__}: {exc}", agent=record.agent, run_id=record.id)
                continue
            config = self.settings.agents.get(record.agent)
            if pull:
                self._notices.append(PullChanged(pull))
                self._notices.append(UserNotice(
                    "info", f"{record.agent}: pull request #{pull.get('id')} recorded",
                    f"{pull.get('title', '')}: review it with `aipass-tui pr show {pull.get('id')}` or `p` in the cockpit",
                    record.agent, record.id,
                ))
            elif config is not None and config.isolation == "worktree":
                self._notices.append(UserNotice(
                    "info", f"{record.agent}: no pull request",
                    f"run {record.id} changed no files, so there is nothing to review", record.agent, record.id,
                ))
        self._pending_finish = keep

    # ----------------------------------------------------------------- stops, timeouts, stalls

    def _begin_stop(self, live: LiveRun, why: str, cancel: bool = False) -> None:
        if live.kill_at is not None:
            return
        live.record.stop_requested = why  # type: ignore[assignment]
        live.kill_at = clock.now() + self.settings.limits.stop_grace
        live.dirty = True
        live.runner.terminate(live.handle)
        log.info("stopping run %s (%s)", live.record.id, why)

    def _enforce_limits(self, now: float) -> None:
        for live in list(self._live.values()):
            record = live.record
            config = self.settings.agents.get(record.agent)
            if live.kill_at is not None:
                if now >= live.kill_at:
                    live.runner.kill(live.handle)
                    live.kill_at = now + 3600  # killed once; the exit is picked up by _handle_exits
                continue
            if config is None:
                continue
            started = record.started_at or now
            if config.timeout and now - started > config.timeout:
                self._notify("warning", f"{record.agent}: run timed out", f"run {record.id} exceeded its timeout of {_human(config.timeout)} and is being stopped", agent=record.agent, run_id=record.id)
                self._begin_stop(live, "timeout")
                continue
            last = record.last_output_at or started
            if config.stall_after and not record.stalled and now - last > config.stall_after:
                record.stalled = True
                live.dirty = True
                self._dirty_agents.add(record.agent)
                action = config.stall_action
                self._notify("warning", f"{record.agent} stalled", f"no output for {_human(config.stall_after)} (run {record.id}); it may wait for input or a login" + ("" if action == "notify" else f"; stall action: {action}"), agent=record.agent, run_id=record.id)
                if action in ("stop", "retry"):
                    self._begin_stop(live, "stall")

    # ----------------------------------------------------------------- agent state

    def _refresh_all_agents(self) -> None:
        for name in self._agents:
            self._dirty_agents.add(name)
        self._refresh_dirty_agents()

    def _refresh_dirty_agents(self) -> None:
        if not self._dirty_agents:
            return
        queued_counts: dict[str, int] = {}
        for request in self._state.requests.values():
            if request.status in (RequestStatus.QUEUED, RequestStatus.HELD):
                queued_counts[request.agent] = queued_counts.get(request.agent, 0) + 1
        live_by_agent = {live.record.agent: live for live in self._live.values()}
        metrics = self._sampler.latest() if self._sampler is not None and hasattr(self._sampler, "latest") else None
        for name in list(self._dirty_agents):
            agent = self._agents.get(name)
            if agent is None:
                continue
            self._fill_agent(agent, live_by_agent.get(name), queued_counts.get(name, 0), metrics)
            self._notices.append(AgentChanged(agent.detached_copy()))
        self._pending_agent_writes |= self._dirty_agents
        self._dirty_agents = set()

    def _fill_agent(self, agent: AgentState, live: LiveRun | None, queued: int, metrics: Any) -> None:
        agent.queued = queued
        agent.updated_at = clock.now()
        if live is not None:
            record = live.record
            summary = record.summary
            request = self._state.requests.get(record.request)
            if record.stalled:
                agent.status = AgentStatus.STALLED
            elif summary.retrying:
                agent.status = AgentStatus.RETRYING
            else:
                agent.status = AgentStatus.RUNNING
            agent.request = record.request
            agent.subject = request.subject if request else None
            agent.run = record.id
            agent.pid = record.pid
            agent.started_at = record.started_at
            agent.last_message = summary.last_message
            agent.last_line = summary.last_line
            agent.todo = list(summary.todo)
            agent.subagents = list(summary.subagents.values())
            agent.input_tokens = summary.input_tokens
            agent.output_tokens = summary.output_tokens
            agent.cost_usd = summary.cost_usd
            agent.branch = record.branch
            agent.worktree = record.worktree
            agent.node = record.node
        else:
            last = self._last_finished(agent.name)
            agent.pid = None
            if queued:
                agent.status = AgentStatus.QUEUED
            elif last is not None:
                agent.status = _status_after(last.status)
            elif agent.last_run_status is not None:
                # After a restart the last outcome comes from the agent's saved state.
                agent.status = _status_after(agent.last_run_status)
            else:
                agent.status = AgentStatus.IDLE
            if last is not None:
                agent.last_run_status = last.status
                agent.last_run_message = last.message
                # The final numbers come from the finished run: the last refresh while it ran
                # may be up to a second older than its last events.
                summary = last.summary
                agent.input_tokens = summary.input_tokens
                agent.output_tokens = summary.output_tokens
                agent.cost_usd = summary.cost_usd
                agent.last_message = summary.last_message
                agent.last_line = summary.last_line
        if live is not None and metrics is not None and agent.name in getattr(metrics, "agents", {}):
            cpu, rss = metrics.agents[agent.name]
            agent.cpu_percent, agent.rss_bytes = cpu, rss
        elif live is None:
            agent.cpu_percent = agent.rss_bytes = None

    def _last_finished(self, name: str) -> RunRecord | None:
        for record in reversed(list(self._finished.values())):
            if record.agent == name:
                return record
        return None

    # ----------------------------------------------------------------- persistence

    def flush(self, force: bool = False, every_agent: bool = False) -> None:
        """Write orchestrator.json and changed local.json files (coalesced unless ``force``).

        ``every_agent`` writes each out-of-date local.json now, as on close.
        """
        now = clock.now()
        if self._dirty_state and (force or now - self._last_state_flush >= STATE_FLUSH_SECONDS):
            if len(self._state.requests) > ARCHIVE_ABOVE_FINISHED:
                self._archive_finished()
            try:
                write_json(self.paths.orchestrator, self._state)
                self._dirty_state = False
                self._last_state_flush = now
                self._write_recovered()
                if self._consumed_pending:
                    self._move_consumed()
            except StateWriteError as exc:
                self._write_failed(exc)
        # Each write replaces a file, which costs the file system far more than the JSON costs
        # to build, so a busy agent's output and numbers are written every few seconds and a
        # change of what it does within a second.
        pending = self._pending_agent_writes
        if not pending or not (force or now - self._last_agent_check >= AGENT_REFRESH_SECONDS):
            return
        self._last_agent_check = now
        for name in list(pending):
            agent = self._agents.get(name)
            if agent is None:
                pending.discard(name)
                continue
            activity = _agent_activity(agent)
            shown, written_at = self._agent_written.get(name, ((), 0.0))
            changed = activity != shown
            # A forced flush (a run started or ended) writes only the agents whose activity
            # changed. The others keep their own pace, so their writes stay spread over time.
            interval = AGENT_FLUSH_SECONDS if changed else AGENT_QUIET_FLUSH_SECONDS
            if now - written_at < interval and not (force and changed) and not every_agent:
                continue
            try:
                # A view of the agent, rebuilt from runs after a crash, so no fsync is needed.
                write_json(self.paths.agent_state(name), agent, fsync=False)
            except StateWriteError as exc:
                self._write_failed(exc)
                break
            pending.discard(name)
            self._agent_written[name] = (activity, now)

    def _archive_finished(self) -> None:
        """Move the oldest finished requests and their runs from orchestrator.json to history files.

        The history is written (and synced) first, so a crash in between leaves a request in both
        places, never in neither. Run folders stay where they are.
        """
        finished = sorted(
            (r for r in self._state.requests.values() if r.status not in OPEN_REQUEST_STATUSES and r.run not in self._live),
            key=lambda r: r.seq,
        )
        if len(finished) <= ARCHIVE_ABOVE_FINISHED:
            return
        old = finished[: len(finished) - KEEP_FINISHED]
        history = self.paths.state / "history"
        run_ids = [run_id for request in old for run_id in request.runs]
        try:
            history.mkdir(exist_ok=True)
            _append_synced(history / "requests.jsonl", "".join(r.model_dump_json() + "\n" for r in old))
            _append_synced(history / "runs.txt", "".join(run_id + "\n" for run_id in run_ids))
        except OSError as exc:
            log.warning("could not archive finished requests: %s", exc)
            return
        for request in old:
            del self._state.requests[request.id]
            for duplicate in request.duplicate_ids:
                self._seen_duplicates.pop(duplicate, None)
        for run_id in run_ids:
            self._state.runs.pop(run_id, None)
            self._finished.pop(run_id, None)
        log.info("archived %d finished requests and %d runs to %s", len(old), len(run_ids), history)

    def _write_failed(self, exc: StateWriteError) -> None:
        # One notice per outage: while the disk stays full, every file fails again on each flush.
        message = str(exc)
        if self._write_error is None:
            self._notify("error", "State write failed", f"{message}. The previous state is intact; work continues and the write is retried.")
        self._write_error = message

    def _write_recovered(self) -> None:
        if self._write_error is not None:
            self._write_error = None
            self._notify("info", "State writes work again", "the state on disk is current again")

    def _write_run(self, run_dir: Path, record: RunRecord) -> None:
        try:
            write_json(run_dir / "run.json", record)
        except StateWriteError as exc:
            self._write_failed(exc)

    # ----------------------------------------------------------------- metrics

    def _start_metrics(self) -> None:
        if self._sampler is None:
            try:
                from aipass_tui.core import metrics
            except ImportError:
                return
            self._sampler = metrics.Sampler(interval=1.0)
            self._sampler.start()
        try:
            from aipass_tui.core.metrics import HoldTracker
        except ImportError:
            return
        limits = self.settings.limits
        self._hold_tracker = HoldTracker(limits.cpu_hold_percent, limits.cpu_hold_seconds)

    def live_pids(self) -> dict[str, int]:
        with self._mutex:
            return {live.record.agent: live.handle.pid for live in self._live.values() if live.handle.pid}


# --------------------------------------------------------------------- helpers


def new_request_message(
    agent: str, subject: str, body: str = "", *, priority: int = 0, sender: str = "user",
    plan_task: str | None = None, branch: str | None = None,
) -> dict[str, Any]:
    """Build the inbox message of a new request."""
    return {
        "type": "request",
        "id": clock.new_id("r"),
        "agent": agent,
        "subject": subject,
        "body": body,
        "sender": sender,
        "priority": int(priority),
        "created_at": clock.now(),
        "plan_task": plan_task,
        "branch": branch,
    }


def _append_synced(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def compose_prompt(request: Request) -> str:
    """Return the prompt given to the agent: the subject, then the body."""
    return f"{request.subject}\n\n{request.body}".strip() if request.body else request.subject


def _validate_message(message: Any, settings: Settings) -> str | None:
    if not isinstance(message, dict):
        return "not a JSON object"
    kind = message.get("type", "request")
    if kind == "command":
        if not message.get("id") or not message.get("name"):
            return "a command needs id and name"
        return None
    if kind != "request":
        return f"unknown message type {kind!r}"
    for key in ("id", "agent", "subject"):
        if not isinstance(message.get(key), str) or not message.get(key):
            return f"missing or invalid {key!r}"
    if not isinstance(message.get("body", ""), str):
        return "body must be a string"
    try:
        int(message.get("priority", 0))
    except (TypeError, ValueError):
        return f"invalid priority {message.get('priority')!r}: use an integer"
    return None


def _redact_argv(argv: list[str], prompt: str) -> list[str]:
    """Replace the prompt in a stored argv, so run.json never contains a whole prompt."""
    return ["<prompt>" if arg == prompt else arg for arg in argv]


def _dropped(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def _run_agent(run_id: str, agent: str) -> bool:
    # Run ids are <agent>-<YYYYmmdd>-<HHMMSS>-<hex>, so the date separates agent "a" from "a-b".
    rest = run_id[len(agent) + 1:]
    return run_id.startswith(agent + "-") and rest[:8].isdigit() and rest[8:9] == "-"


def _human(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def _named_holder(exc: LockHeld, wait: float = 1.0) -> LockHeld:
    """Return LockHeld with the holder's pid: a holder that has just taken the lock writes it a moment later."""
    deadline = time.monotonic() + wait
    info = exc.info
    while not info.get("pid") and time.monotonic() < deadline:
        time.sleep(0.01)
        info = read_lock_info(exc.path)
    return LockHeld(exc.path, info) if info is not exc.info else exc


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _repo_changed(cwd: Path, base: str | None) -> bool | None:
    """Tell whether the folder has uncommitted changes or commits since ``base`` (read-only git)."""
    import subprocess

    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=normal"], cwd=cwd, env=env,
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if status.returncode != 0:
        return None
    changed = [line for line in status.stdout.splitlines() if ".aider" not in line and ".aipass" not in line]
    if changed:
        return True
    if base:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, env=env, capture_output=True, text=True)
        return head.stdout.strip() != base
    return False


def _status_after(run_status: RunStatus) -> AgentStatus:
    """Return an idle agent's status from how its last run ended.

    A stopped run (by the user, or for stalling, which notified the user) is not shown as a
    failure: the agent is idle, and its subject shows how the last run ended.
    """
    if run_status == RunStatus.SUCCEEDED:
        return AgentStatus.DONE
    if run_status == RunStatus.STOPPED:
        return AgentStatus.IDLE
    return AgentStatus.FAILED


def _agent_activity(agent: AgentState) -> tuple[Any, ...]:
    """Return what an agent is doing, as opposed to how far it got (output, tokens, usage)."""
    return (
        agent.status, agent.request, agent.subject, agent.run, agent.pid, agent.queued, agent.branch,
        agent.worktree, agent.node, agent.last_run_status, agent.last_run_message,
        tuple((item.text, item.status) for item in agent.todo),
        tuple((sub.id, sub.status) for sub in agent.subagents),
    )


def _default_workspace(repo: Path, paths: Paths, settings: Settings) -> Workspace:
    """Use git worktrees inside a git repository, the plain folder elsewhere."""
    if (repo / ".git").exists():
        from aipass_tui.core.gitflow import GitWorkspace
        from aipass_tui.core.plans.files import allowed_globs

        return GitWorkspace(repo, paths, settings, allowed_globs=allowed_globs(paths, settings))
    return SharedWorkspace(repo)


# --------------------------------------------------------------------- command handlers


@handler("stop")
def _handle_stop(ctx: HandlerContext, target: str) -> dict[str, Any]:
    orchestrator = ctx.orchestrator
    assert orchestrator is not None
    if not orchestrator._started:  # noqa: SLF001 - the CLI runs this without a live tick loop
        orchestrator._reattach()  # noqa: SLF001
    stopped = orchestrator.stop(target)
    if not stopped:
        known = target in ctx.settings.agents or orchestrator.paths.run_dir(target).is_dir()
        if not known:
            raise HandlerError(f"unknown agent or run {target!r}; `aipass-tui status` lists both", 2)
        raise HandlerError(f"{target!r} has no live run to stop; `aipass-tui status` shows what runs", 1)
    if not orchestrator._started:  # noqa: SLF001
        orchestrator._stop_everything_now()  # noqa: SLF001
    return {"stopped": stopped}


@handler("request.cancel")
def _handle_cancel(ctx: HandlerContext, id: str) -> dict[str, Any]:  # noqa: A002
    assert ctx.orchestrator is not None
    return ctx.orchestrator.cancel(id).model_dump(mode="json")
