"""Runs the plans of one orchestrator: its notices go to every plan, on a thread of the host's own.

The orchestrator calls subscribers on its tick thread, where they must only store notices. So
``PlanHost`` queues them, and ``pump`` applies them (and dispatches) on another thread: the
host's own after ``start_thread``, or the caller's, as ``plan run --headless`` does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from typing import Any, Callable

from aipass_tui.config import Settings
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.execution import MergeFunction, Orchestrating, PlanEvent, PlanExecution
from aipass_tui.core.plans.files import check_plan_id, resolve_plan
from aipass_tui.core.plans.model import PLAN_ID_RE, plan_id_for
from aipass_tui.core.plans.state import PlanStatus, load_state
from aipass_tui.core.store import Paths

log = logging.getLogger(__name__)

# How often every plan is compared with the orchestrator and the pull request files, in
# seconds: merges made by `aipass-tui pr merge` change a pull request file without a notice.
RESYNC_SECONDS = 1.0
EXTENSION_KEY = "plans"


class PlanHost:
    """The plans an orchestrator is executing."""

    def __init__(
        self,
        orchestrator: Orchestrating,
        paths: Paths,
        settings: Settings,
        *,
        merge: MergeFunction | None = None,
        resync_seconds: float = RESYNC_SECONDS,
    ) -> None:
        self.orchestrator = orchestrator
        self.paths = paths
        self.settings = settings
        self.merge = merge
        self.resync_seconds = resync_seconds
        self._queue: queue.SimpleQueue[list[Any]] = queue.SimpleQueue()
        self._executions: dict[str, PlanExecution] = {}
        self._listeners: list[Callable[[PlanEvent], None]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_resync = 0.0
        orchestrator.subscribe(self._receive)

    def _receive(self, notices: Any) -> None:
        self._queue.put(list(notices) if isinstance(notices, (list, tuple)) else [notices])

    def add_listener(self, callback: Callable[[PlanEvent], None]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def _emit(self, event: PlanEvent) -> None:
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:  # a broken listener must not stop the plans
                log.exception("a plan event listener failed")

    # Plans

    def start_plan(self, ref: str) -> PlanExecution:
        """Start or resume the plan ``ref`` (id or path) and dispatch what can run now."""
        with self._lock:
            path = resolve_plan(self.paths, ref)
            plan_id = check_plan_id(plan_id_for(path), path)
            execution = self._executions.get(plan_id)
            if execution is None:
                execution = PlanExecution.open(
                    self.paths, self.settings, str(path), self.orchestrator, merge=self.merge, listener=self._emit
                )
                self._executions[plan_id] = execution
            else:
                execution.reload()
        # Outside the host's lock: resync calls the orchestrator, whose command handlers may be
        # waiting for this lock while they hold the orchestrator's.
        execution.resync()
        return execution

    def execution(self, plan_id: str) -> PlanExecution | None:
        with self._lock:
            return self._executions.get(plan_id)

    def executions(self) -> list[PlanExecution]:
        with self._lock:
            return list(self._executions.values())

    def resume(self) -> list[str]:
        """Host every plan whose saved state is running or paused, and return their ids."""
        resumed = []
        for state_file in sorted(self.paths.plan_state.glob("*.json")):
            plan_id = state_file.stem
            if not PLAN_ID_RE.match(plan_id) or plan_id == "counters":
                continue
            try:
                state = load_state(self.paths, plan_id)
                if state is None or state.status not in (PlanStatus.RUNNING, PlanStatus.PAUSED):
                    continue
                self.start_plan(state.path)
            except PlanError as exc:
                log.error("could not resume plan %s: %s", plan_id, exc)
                continue
            resumed.append(plan_id)
        return resumed

    # Driving

    def pump(self, timeout: float = 0.0) -> None:
        """Apply the notices received so far (waiting up to ``timeout`` seconds for the first)."""
        batches: list[list[Any]] = []
        try:
            batches.append(self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait())
        except queue.Empty:
            pass
        while True:
            try:
                batches.append(self._queue.get_nowait())
            except queue.Empty:
                break
        notices = [notice for batch in batches for notice in batch]
        resync = time.monotonic() - self._last_resync >= self.resync_seconds
        if resync:
            self._last_resync = time.monotonic()
        for execution in self.executions():
            if notices:
                execution.handle(notices)
            if resync:
                execution.resync()

    def start_thread(self) -> threading.Thread:
        """Pump notices on a daemon thread until ``stop``."""
        if self._thread is not None and self._thread.is_alive():
            return self._thread
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="aipass-plans", daemon=True)
        self._thread.start()
        return self._thread

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.pump(timeout=0.2)
            except Exception:  # keep the other plans going after a bug in one
                log.exception("advancing the plans failed")
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        unsubscribe = getattr(self.orchestrator, "unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe(self._receive)


_HOSTS: "weakref.WeakKeyDictionary[Any, PlanHost]" = weakref.WeakKeyDictionary()


def host_for(orchestrator: Any, paths: Paths, settings: Settings, *, start_thread: bool = True) -> PlanHost:
    """Return the orchestrator's plan host, creating it (and its thread) on first use."""
    extensions = getattr(orchestrator, "extensions", None)
    host = extensions.get(EXTENSION_KEY) if isinstance(extensions, dict) else _HOSTS.get(orchestrator)
    if host is None:
        host = PlanHost(orchestrator, paths, settings)
        if isinstance(extensions, dict):
            extensions[EXTENSION_KEY] = host
        else:
            _HOSTS[orchestrator] = host
    if start_thread:
        host.start_thread()
    return host


def existing_host(orchestrator: Any) -> PlanHost | None:
    """Return the orchestrator's plan host if it has one."""
    if orchestrator is None:
        return None
    extensions = getattr(orchestrator, "extensions", None)
    if isinstance(extensions, dict):
        return extensions.get(EXTENSION_KEY)
    return _HOSTS.get(orchestrator)
