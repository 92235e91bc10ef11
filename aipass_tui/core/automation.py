"""Automation attached to a running orchestrator: file watches, ownership alerts and user rules.

``attach_automation(orchestrator)`` creates one ``Watcher`` and connects it to the orchestrator:

- the inbox watch wakes the orchestrator, so a request file dropped by another process is
  taken at once instead of on the next 50 ms tick;
- the plans watch re-validates a plan changed on disk, notifies its problems and calls the
  plan listeners (the plan editor offers a reload);
- the state watch calls the state listeners when another process changed a state file;
- each running agent whose request belongs to a plan task gets an ownership watch on its
  worktree, and a file changed outside the task's globs becomes an alert on that agent;
- the ``AutomationEngine`` runs the ``[[automation]]`` rules of the config.

Every ``store.write_json`` of this process is announced to the Watcher first
(``store.add_write_listener`` with ``Watcher.suppress``), so the orchestrator's own state
writes never count as changes made by another process and never trigger a rule.

The orchestrator calls subscribers on its tick thread, and the Watcher calls back on its
debounce thread while other threads may hold the orchestrator's lock. So the hub does its
slower work (git calls, plan validation, notifications) on a worker thread of its own.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from aipass_tui.core import clock, store
from aipass_tui.core.models import Request, RunRecord, RunStatus
from aipass_tui.core.notices import Notice, RunFinished, RunStarted
from aipass_tui.core.watch import (
    AutomationEngine,
    AutomationError,
    AutomationEvent,
    FileChange,
    GlobError,
    RepoWatches,
    RuleStatus,
    Watcher,
    WatchError,
)

log = logging.getLogger(__name__)

EXTENSION_KEY = "automation"
MAX_ALERTS_PER_AGENT = 200
MAX_PROBLEMS_SHOWN = 5


@dataclass(frozen=True)
class OwnershipAlert:
    """A file an agent changed outside the globs of its plan task, seen while the run was live."""

    agent: str
    run_id: str
    plan_task: str
    path: str
    """Path relative to the agent's worktree, with forward slashes."""
    time: float


@dataclass(frozen=True)
class PlanChange:
    """A plan file changed on disk by another process, with the problems found when it was re-validated."""

    path: Path
    kind: str
    """``created``, ``modified``, ``deleted`` or ``moved`` (the file was renamed away)."""
    problems: tuple[str, ...]
    """One ``FILE:LINE:COLUMN: message`` per problem; empty when the plan is valid or gone."""


class _Actions:
    """The orchestrator operations that automation rules call."""

    def __init__(self, orchestrator: Any) -> None:
        self.orchestrator = orchestrator

    def dispatch(self, agent: str, subject: str, body: str, sender: str) -> Any:
        return self.orchestrator.dispatch(agent, subject, body, sender=sender)

    def notify(self, level: str, title: str, message: str) -> Any:
        self.orchestrator.notify(level, title, message)


class _Listeners:
    """A thread-safe list of callbacks; a failing callback is logged and the others still run."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._callbacks: list[Callable[[Any], None]] = []
        self._lock = threading.Lock()

    def add(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def call(self, value: Any) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(value)
            except Exception:
                log.exception("a %s listener failed", self.what)


class AutomationHub:
    """The watches and automation rules of one orchestrator; ``close`` stops all of them.

    Listener callbacks run on the hub's worker thread (plans, state, ownership alerts) or on
    the automation engine's threads (automation events). A cockpit must only store or forward
    what it receives, for example with ``App.call_from_thread``.
    """

    def __init__(
        self,
        orchestrator: Any,
        *,
        watcher: Watcher | None = None,
        schedule_tick: float = 1.0,
        schedule_clock: Callable[[], float] = time.time,
    ) -> None:
        self.orchestrator = orchestrator
        self.paths: store.Paths = orchestrator.paths
        self.settings = orchestrator.settings
        self.watcher = watcher or Watcher(on_fallback=self._on_fallback)
        if watcher is not None and watcher.on_fallback is None:
            watcher.on_fallback = self._on_fallback
        self.watches = RepoWatches(self.watcher, self.paths)
        self.engine: AutomationEngine | None = None
        self.rules_error: str | None = None
        """Why the ``[[automation]]`` rules are not running, when they are invalid."""
        self._schedule_tick = schedule_tick
        self._schedule_clock = schedule_clock
        self._lock = threading.Lock()
        self._alerts: dict[str, list[OwnershipAlert]] = {}
        self._watched_runs: dict[str, str] = {}
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._remove_write_listener: Callable[[], None] | None = None
        self._fallback_reported = False
        self._closed = False
        self.plan_listeners = _Listeners("plan change")
        self.state_listeners = _Listeners("state change")
        self.alert_listeners = _Listeners("ownership alert")
        self.event_listeners = _Listeners("automation event")
        self._state_root = str(self.paths.state.absolute()) + "/"
        self._plans_root = str(self.paths.plans.absolute()) + "/"
        self._aipass_root = str(self.paths.root.absolute()) + "/"

    # Lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker, the built-in watches and the rules, and watch the runs already live."""
        self._worker = threading.Thread(target=self._work, name="aipass-automation-hub", daemon=True)
        self._worker.start()
        self._remove_write_listener = store.add_write_listener(self._own_write)
        self.watcher.start()
        self.watches.watch_inbox(lambda _path: self.orchestrator.wake())
        self.orchestrator.inbox_watched = True
        self.watches.watch_plans(lambda change: self._jobs.put(lambda: self._plan_changed(change)))
        self.watches.watch_state(lambda change: self._jobs.put(lambda: self.state_listeners.call(change)))
        self.orchestrator.subscribe(self._receive)
        # Runs re-attached at start produced no RunStarted notice, so this job watches them.
        # Starts and ends from here on are queued by _receive after it, in the order they happen.
        self._jobs.put(self._watch_live_runs)
        self._start_rules()

    def _start_rules(self) -> None:
        try:
            engine = AutomationEngine(
                self.paths.repo,
                self.settings.automation,
                self.watcher,
                _Actions(self.orchestrator),
                clock=self._schedule_clock,
                tick=self._schedule_tick,
                stop_grace=self.settings.limits.stop_grace,
                on_event=self.event_listeners.call,
            )
            engine.start()
        except (AutomationError, GlobError) as exc:
            message = f"{exc}. Fix [[automation]] in .aipass/config.toml and restart."
            self.rules_error = str(exc)
            log.error("automation rules not started: %s", exc)
            self._jobs.put(lambda: self.orchestrator.notify("error", "Automation rules not started", message))
            return
        self.engine = engine

    def close(self) -> None:
        """Stop the rules, the watches and the worker; running rule commands are stopped too."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.orchestrator.unsubscribe(self._receive)
        self.orchestrator.inbox_watched = False
        if self._remove_write_listener is not None:
            self._remove_write_listener()
            self._remove_write_listener = None
        if self.engine is not None:
            self.engine.stop()
        self.watches.close()
        self._jobs.put(None)
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=10)
        self.watcher.stop()
        extensions = getattr(self.orchestrator, "extensions", None)
        if isinstance(extensions, dict) and extensions.get(EXTENSION_KEY) is self:
            del extensions[EXTENSION_KEY]
        log.info("automation stopped")

    @property
    def closed(self) -> bool:
        return self._closed

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until the worker has done every job queued so far; return False on timeout."""
        done = threading.Event()
        self._jobs.put(done.set)
        return done.wait(timeout)

    # Queries and changes for the cockpit -------------------------------------------------

    def rules(self) -> list[RuleStatus]:
        """Return each automation rule with its state, last firing and last result."""
        return self.engine.rules() if self.engine is not None else []

    def events(self) -> list[AutomationEvent]:
        """Return the recent automation events, oldest first."""
        return self.engine.events() if self.engine is not None else []

    def set_enabled(self, rule: str, enabled: bool) -> None:
        """Enable or disable a rule; raise KeyError for an unknown rule name."""
        if self.engine is None:
            raise KeyError(f"unknown automation rule {rule!r}: {self.rules_error or 'no rules are configured'}")
        self.engine.set_enabled(rule, enabled)

    def run_now(self, rule: str) -> None:
        """Fire a rule at once; raise KeyError for an unknown rule name."""
        if self.engine is None:
            raise KeyError(f"unknown automation rule {rule!r}: {self.rules_error or 'no rules are configured'}")
        self.engine.run_now(rule)

    def ownership_alerts(self, agent: str) -> list[OwnershipAlert]:
        """Return the ownership alerts of the agent's current or last run, oldest first."""
        with self._lock:
            return list(self._alerts.get(agent, ()))

    def watched_agents(self) -> list[str]:
        """Return the agents whose worktree has an ownership watch now."""
        return self.watches.ownership_agents()

    def suppress(self, path: Path, seconds: float = 2.0) -> None:
        """Mark an upcoming write of ``path`` by this process (a plan editor's save) as not a change from elsewhere."""
        self.watcher.suppress(path, seconds)

    # Own writes and fallback -------------------------------------------------------------

    def _own_write(self, path: Path) -> None:
        """Mark a state or plan file this process is about to write, so its watch ignores the change.

        Run transcripts, inbox files and logs are not marked. No built-in watch looks at them,
        rules skip ``.aipass/`` unless a glob names it, and marking each of them would grow the
        Watcher's table of suppressed paths with every run.
        """
        text = str(path if path.is_absolute() else path.absolute())
        if text.startswith(self._aipass_root) and not text.startswith((self._state_root, self._plans_root)):
            return
        self.watcher.suppress(path)

    def _on_fallback(self, message: str) -> None:
        # The Watcher calls this while it holds its own lock. Notifying takes the orchestrator's
        # lock, whose holder may be waiting for the Watcher's lock in _own_write. So the worker notifies.
        with self._lock:
            if self._fallback_reported:
                return
            self._fallback_reported = True
        self._jobs.put(lambda: self.orchestrator.notify("warning", "File watching fell back to polling", message))

    # Notices from the orchestrator -------------------------------------------------------

    def _receive(self, notices: list[Notice]) -> None:
        """Queue the run starts and ends of one tick (called on the orchestrator's thread)."""
        for notice in notices:
            if isinstance(notice, RunStarted):
                record = notice.run
                self._jobs.put(lambda record=record: self._watch_run(record))
            elif isinstance(notice, RunFinished):
                record = notice.run
                self._jobs.put(lambda record=record: self._unwatch_run(record))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:
                log.exception("an automation job failed")

    # Ownership ---------------------------------------------------------------------------

    def _watch_live_runs(self) -> None:
        snapshot = self.orchestrator.snapshot()
        for record in snapshot.runs.values():
            if record.status in (RunStatus.STARTING, RunStatus.RUNNING):
                self._watch_run(record)

    def _watch_run(self, record: RunRecord) -> None:
        """Start the ownership watch of a run whose request belongs to a plan task.

        Only runs in their own worktree are watched: agents with ``isolation = "shared"`` all
        work in the repository itself, where one agent's files would be reported as another's.
        """
        if self._closed or not record.worktree or self._watched_runs.get(record.agent) == record.id:
            return
        request = self._request_of(record)
        if request is None or not request.plan_task:
            return
        globs = self._task_globs(record, request.plan_task)
        if globs is None:
            return
        with self._lock:
            self._alerts[record.agent] = []
            self._watched_runs[record.agent] = record.id
        try:
            self.watches.watch_ownership(
                record.agent,
                Path(record.worktree),
                globs,
                lambda agent, path, run=record.id, task=request.plan_task, allowed=tuple(globs): self._violation(agent, path, run, task, allowed),
            )
        except (WatchError, GlobError) as exc:
            with self._lock:
                self._watched_runs.pop(record.agent, None)
            log.warning("run %s: ownership watch not started: %s", record.id, exc)
            self.orchestrator.notify("warning", f"{record.agent}: file ownership not watched", str(exc), agent=record.agent)
            return
        log.info("watching the worktree of %s (run %s) for files outside %s", record.agent, record.id, ", ".join(globs) or "nothing")

    def _unwatch_run(self, record: RunRecord) -> None:
        with self._lock:
            if self._watched_runs.get(record.agent) != record.id:
                return
            del self._watched_runs[record.agent]
        self.watches.unwatch_ownership(record.agent)

    def _request_of(self, record: RunRecord) -> Request | None:
        """Read the request that the orchestrator stored in the run folder when the run started."""
        try:
            return store.read_model(self.paths.run_dir(record.id) / "request.json", Request)
        except store.StateError as exc:
            log.warning("run %s: its request could not be read, so its files are not watched: %s", record.id, exc)
            return None

    def _task_globs(self, record: RunRecord, plan_task: str) -> list[str] | None:
        from aipass_tui.core.plans.files import task_globs

        try:
            globs = task_globs(self.paths, self.settings, plan_task)
        except ValueError as exc:
            log.warning("run %s: invalid plan task %r: %s", record.id, plan_task, exc)
            globs = None
        if globs is None:
            # The same rule as the git flow's review: a task that cannot be found owns no file.
            self.orchestrator.notify(
                "warning",
                f"{record.agent}: plan task not found",
                f"plan task {plan_task} of run {record.id} was not found, so every file it changes is reported",
                agent=record.agent,
            )
            return []
        return globs

    def _violation(self, agent: str, path: Path, run_id: str, plan_task: str, allowed: tuple[str, ...]) -> None:
        alert = OwnershipAlert(agent, run_id, plan_task, path.as_posix(), clock.now())
        with self._lock:
            if self._watched_runs.get(agent) != run_id:
                return
            alerts = self._alerts.setdefault(agent, [])
            alerts.append(alert)
            del alerts[:-MAX_ALERTS_PER_AGENT]
        where = ", ".join(allowed) if allowed else "no files"
        self.orchestrator.notify(
            "warning",
            f"{agent} changed a file outside its task",
            f"{alert.path} is not among the files plan task {plan_task} may change ({where}); run {run_id}",
            agent=agent,
        )
        self.alert_listeners.call(alert)

    # Plans -------------------------------------------------------------------------------

    def _plan_changed(self, change: FileChange) -> None:
        from aipass_tui.core.plans.validation import check

        path = change.path
        problems: tuple[str, ...] = ()
        if change.kind not in ("deleted", "moved") and path.is_file():
            _, found = check(path, self.settings, self.paths.repo)
            problems = tuple(str(problem) for problem in found)
        kind = change.kind if path.is_file() or change.kind in ("deleted", "moved") else "deleted"
        if problems:
            shown = "\n".join(problems[:MAX_PROBLEMS_SHOWN])
            more = len(problems) - MAX_PROBLEMS_SHOWN
            if more > 0:
                shown += f"\n... and {more} more; run 'aipass-tui plan check {path.name}' to see all"
            self.orchestrator.notify("warning", f"Plan {path.name} changed on disk and has problems", shown)
        log.info("plan %s %s on disk (%d problems)", path.name, kind, len(problems))
        self.plan_listeners.call(PlanChange(path, kind, problems))


def attach_automation(orchestrator: Any, **options: Any) -> AutomationHub:
    """Create, start and store the orchestrator's automation hub (``orchestrator.extensions["automation"]``).

    Calling it again returns the hub already attached. ``options`` go to ``AutomationHub``.
    The caller closes the hub (``hub.close()``) when the orchestrator closes.
    """
    extensions = orchestrator.extensions
    existing = extensions.get(EXTENSION_KEY)
    if isinstance(existing, AutomationHub) and not existing.closed:
        return existing
    hub = AutomationHub(orchestrator, **options)
    try:
        hub.start()
    except BaseException:
        hub.close()
        raise
    extensions[EXTENSION_KEY] = hub
    log.info("automation started: %d rules, watching %s", len(hub.rules()), orchestrator.paths.root)
    return hub


def automation_of(orchestrator: Any) -> AutomationHub | None:
    """Return the orchestrator's automation hub, or None when automation is not attached."""
    extensions = getattr(orchestrator, "extensions", None)
    hub = extensions.get(EXTENSION_KEY) if isinstance(extensions, dict) else None
    return hub if isinstance(hub, AutomationHub) and not hub.closed else None
