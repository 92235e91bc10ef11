"""Plan execution: which task to dispatch next, and what each notice means for a task.

``PlanExecution`` owns no process. It is given the plan, its saved state and an orchestrator
(``dispatch``, ``snapshot``, ``subscribe``), and moves each task through
``pending -> dispatched -> running -> succeeded -> merged``, or to ``failed`` (which pauses the
plan) or ``skipped``. Phases run in order. Inside the current phase, every task whose
dependencies are done is dispatched at once, because the orchestrator's queue already enforces
one run per agent and the global cap.

A plan never dispatches a task twice. The request id is saved right after ``dispatch`` returns,
and every request carries ``plan_task = "<plan-id>:<task-id>"`` and ``sender = <plan-id>``: if
the process dies between the two, the next ``PlanExecution`` finds that request in the
orchestrator's snapshot and adopts it instead of dispatching again.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.models import FINAL_RUN_STATUSES, Request, RequestStatus, RunRecord, RunStatus
from aipass_tui.core.notices import PullChanged, RequestChanged, RunFinished, UserNotice
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.files import check_plan_id, edit_task, resolve_plan
from aipass_tui.core.plans.model import Phase, Plan, Task, plan_id_for, task_ref
from aipass_tui.core.plans.review import PullRequestTracking
from aipass_tui.core.plans.state import PlanState, PlanStatus, TaskState, TaskStatus, load_state, save_state
from aipass_tui.core.plans.validation import load_plan
from aipass_tui.core.store import Paths, StateError, read_json

log = logging.getLogger(__name__)

_FINAL_REQUESTS = (RequestStatus.DONE, RequestStatus.FAILED, RequestStatus.CANCELLED)


class Orchestrating(Protocol):
    """The part of the orchestrator a plan uses."""

    def dispatch(
        self, agent: str, subject: str, body: str = "", *, priority: int = 0, sender: str = "user",
        plan_task: str | None = None, branch: str | None = None,
    ) -> Request: ...

    def snapshot(self) -> Any: ...

    def subscribe(self, callback: Callable[[list[Any]], None]) -> None: ...


@dataclass(frozen=True)
class PlanEvent:
    """A progress line of a plan, for ``plan run --headless`` and the cockpit."""

    plan: str
    text: str
    task: str | None = None
    status: str | None = None

    def __str__(self) -> str:
        return f"{self.plan}: {self.text}"


MergeFunction = Callable[[str], dict[str, Any]]


@dataclass
class _Dispatch:
    """A task about to be dispatched, with the request text built while the plan was locked."""

    task: Task
    subject: str
    body: str
    known_requests: list[str]


class PlanExecution(PullRequestTracking):
    """The execution of one plan. Every public method is thread-safe."""

    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        plan: Plan,
        plan_id: str,
        plan_path: Path,
        orchestrator: Orchestrating,
        state: PlanState | None = None,
        *,
        merge: MergeFunction | None = None,
        listener: Callable[[PlanEvent], None] | None = None,
    ) -> None:
        self.paths = paths
        self.settings = settings
        self.plan = plan
        self.plan_id = plan_id
        self.plan_path = plan_path
        self.orchestrator = orchestrator
        self.listener = listener
        self._merge = merge or self._merge_through_handler
        self._lock = threading.RLock()
        self._last_text: dict[str | None, str] = {}
        self._runs: dict[str, RunRecord] = {}
        self._merge_attempts: set[str] = set()
        self._pending_merges: list[tuple[str, dict[str, Any]]] = []
        self._dispatching: set[str] = set()
        self._settle_checked: dict[str, float] = {}
        is_new = state is None
        self.state = state or PlanState(plan=plan_id, path=str(plan_path))
        self._add_missing_tasks()
        if is_new:
            save_state(self.paths, self.state)
            self._emit(f"started: {plan.title} ({len(plan.tasks())} tasks in {len(plan.phases)} phases)")
            self._announce_phase()

    @classmethod
    def open(
        cls,
        paths: Paths,
        settings: Settings,
        ref: str,
        orchestrator: Orchestrating,
        **kwargs: Any,
    ) -> "PlanExecution":
        """Load a plan (id or path) and its saved state. Raise PlanError when either is unusable."""
        path = resolve_plan(paths, ref)
        plan_id = check_plan_id(plan_id_for(path), path)
        plan = load_plan(path, settings, paths.repo)
        state = load_state(paths, plan_id)
        if state is not None and Path(state.path).resolve() != path.resolve():
            raise PlanError(
                f"plan id {plan_id} already has progress for another file ({state.path}): "
                f"rename {path.name} so its id differs"
            )
        return cls(paths, settings, plan, plan_id, path, orchestrator, state, **kwargs)

    # Queries

    @property
    def status(self) -> PlanStatus:
        return self.state.status

    def task_state(self, task_id: str) -> TaskState:
        return self.state.tasks[task_id]

    def ref(self, task_id: str) -> str:
        return task_ref(self.plan_id, task_id)

    # Dispatching

    def step(self) -> None:
        """Dispatch every task of the current phase that can start, and move on to later phases.

        The orchestrator is called without the plan's lock held: a command handler runs on the
        orchestrator's thread, holding its lock, and may wait for the plan's lock.
        """
        self._run_pending_merges()
        while True:
            with self._lock:
                self._advance()
                if self.state.status != PlanStatus.RUNNING:
                    return
                ready = self._claim_ready()
            if not ready:
                return
            try:
                self._dispatch_all(ready)
            finally:
                with self._lock:
                    self._dispatching.difference_update(item.task.id for item in ready)
            self._run_pending_merges()

    def _claim_ready(self) -> list[_Dispatch]:
        """Return the pending tasks of the current phase whose dependencies are done, marked as being dispatched."""
        phase_index = self.state.phase
        phase = self.plan.phases[phase_index]
        ready = []
        for task in phase.tasks:
            task_state = self.state.tasks[task.id]
            if task_state.status != TaskStatus.PENDING or task.id in self._dispatching or not self._dependencies_done(task):
                continue
            self._dispatching.add(task.id)
            subject = f"{self.ref(task.id)} {task.title}"
            ready.append(_Dispatch(task, subject, self._body(phase_index, phase, task), list(task_state.requests)))
        return ready

    def _dispatch_all(self, ready: list[_Dispatch]) -> None:
        requests = self._snapshot_requests()
        for item in ready:
            task = item.task
            with self._lock:
                if self.state.status != PlanStatus.RUNNING:
                    return
            orphan = self._orphan_request(task, item.known_requests, requests)
            request, error = orphan, None
            if orphan is None:
                try:
                    request = self.orchestrator.dispatch(task.agent, item.subject, item.body, sender=self.plan_id, plan_task=self.ref(task.id))
                except Exception as exc:  # a refused dispatch pauses the plan instead of ending the host
                    log.exception("plan %s: dispatching task %s failed", self.plan_id, task.id)
                    error = exc
            with self._lock:
                task_state = self.state.tasks[task.id]
                if error is not None:
                    task_state.agent = task.agent
                    self._fail(task_state, f"could not dispatch it to {task.agent}: {error}")
                    return
                assert request is not None
                text = "found its request from before a restart" if orphan else f"dispatched to {task.agent} (request {request.id})"
                self._adopt(task_state, request, text)
                if self.state.status != PlanStatus.RUNNING:
                    return

    def _dependencies_done(self, task: Task) -> bool:
        for dep in task.depends_on:
            dep_state = self.state.tasks.get(dep)
            if dep_state is None or not dep_state.done:
                return False
        return True

    def _orphan_request(self, task: Task, known: list[str], requests: list[Request]) -> Request | None:
        ref = self.ref(task.id)
        found = [r for r in requests if r.plan_task == ref and r.sender == self.plan_id and r.id not in known]
        return max(found, key=lambda r: (r.created_at, r.seq)) if found else None

    def _adopt(self, task_state: TaskState, request: Request, text: str) -> None:
        task_state.request = request.id
        if request.id not in task_state.requests:
            task_state.requests.append(request.id)
        task_state.attempts = len(task_state.requests)
        task_state.agent = request.agent
        task_state.status = TaskStatus.DISPATCHED
        task_state.run = request.run
        task_state.pull = None
        task_state.needs_merge = False
        task_state.merge_requested = None
        task_state.reason = None
        entry = self.plan.task(task_state.id)
        task_state.files = list(entry[2].files) if entry else task_state.files
        self._touch(task_state)
        self._emit(f"task {task_state.id} {text}", task_state)
        if request.status != RequestStatus.QUEUED:
            self._apply_request(request)

    def _body(self, phase_index: int, phase: Phase, task: Task) -> str:
        lines = [
            task.prompt.strip(),
            "",
            "---",
            f"This request is task {task.id!r} of plan {self.plan_id}: {self.plan.title}.",
            f"Plan goal: {self.plan.goal.strip()}",
            f"Phase {phase_index + 1} of {len(self.plan.phases)} ({phase.name}): {phase.goal.strip()}",
            f"Change only files matching: {', '.join(task.files)}. Changes to other files are flagged at review.",
        ]
        checks = task.checks if task.checks is not None else self._configured_checks(task.agent)
        if checks:
            lines.append(f"These checks run on your changes: {'; '.join(checks)}.")
        return "\n".join(lines)

    def _configured_checks(self, agent: str) -> list[str]:
        config = self.settings.agents.get(agent)
        if config is not None and config.checks is not None:
            return list(config.checks)
        return list(self.settings.git.checks)

    def _advance(self) -> None:
        """Move to the first phase that has a task not done, or complete the plan after the last phase."""
        if self.state.status != PlanStatus.RUNNING:
            return
        index = next(
            (n for n, phase in enumerate(self.plan.phases) if not all(self.state.tasks[t.id].done for t in phase.tasks)),
            len(self.plan.phases),
        )
        if index >= len(self.plan.phases):
            self.state.status = PlanStatus.COMPLETED
            self.state.phase = len(self.plan.phases) - 1
            self.state.finished_at = clock.now()
            self.state.reason = None
            self._save()
            done, total = self.state.progress([t.id for _, _, t in self.plan.tasks()])
            self._emit(f"completed ({done} of {total} tasks done)")
            return
        if index != self.state.phase:
            self.state.phase = index
            self._save()
            self._announce_phase()

    def _announce_phase(self) -> None:
        phase = self.plan.phases[self.state.phase]
        self._emit(f"phase {self.state.phase + 1}/{len(self.plan.phases)} {phase.name!r} started")

    # Notices

    def handle(self, notices: Iterable[Any]) -> None:
        """Apply a batch of orchestrator notices, then dispatch what became ready."""
        notices = list(notices)
        batch = [notice.request for notice in notices if isinstance(notice, RequestChanged)]
        with self._lock:
            for notice in notices:
                if isinstance(notice, RunFinished):
                    self._runs[notice.run.id] = notice.run
            for notice in notices:
                if isinstance(notice, RequestChanged):
                    self.on_request_changed(notice.request, batch)
                elif isinstance(notice, PullChanged):
                    self.on_pull_changed(notice.pull)
                elif isinstance(notice, UserNotice):
                    self._on_user_notice(notice)
        self.step()

    def on_request_changed(self, request: Request, others: list[Request] | None = None) -> None:
        """Follow a request of this plan: running, finished, or retried by the orchestrator.

        ``others`` are requests known at the same moment, where a stall retry of a failed
        request is looked for.
        """
        with self._lock:
            task_state = self._task_of_request(request.id)
            if task_state is None:
                self._maybe_adopt_retry(request)
                return
            self._apply_request(request, others)

    def _apply_request(self, request: Request, others: list[Request] | None = None) -> None:
        task_state = self._task_of_request(request.id)
        if task_state is None or not task_state.open:
            return
        if request.status in _FINAL_REQUESTS:
            run = self._run(request.run)
            self.on_request_finished(request, run.status if run else None, run.message if run else None, others)
        elif request.status == RequestStatus.RUNNING and task_state.status == TaskStatus.DISPATCHED:
            task_state.status = TaskStatus.RUNNING
            task_state.run = request.run
            self._touch(task_state)
            self._emit(f"task {task_state.id} running (run {request.run})", task_state)

    def _maybe_adopt_retry(self, request: Request) -> None:
        # A request retried from the queue view, or by the stall handler, continues the task.
        if not request.plan_task or request.status in _FINAL_REQUESTS:
            return
        for task_state in self.state.tasks.values():
            if request.plan_task != self.ref(task_state.id) or not task_state.request:
                continue
            if request.sender in (f"retry of {task_state.request}", f"stall retry of {task_state.request}"):
                was_failed = task_state.status == TaskStatus.FAILED
                self._adopt(task_state, request, f"continues in request {request.id} ({request.sender})")
                if was_failed:
                    self._resume_if_clear()
                self._save()
                return

    def on_request_finished(
        self, request: Request, run_status: RunStatus | str | None, message: str | None = None, others: list[Request] | None = None
    ) -> None:
        """Record the outcome of a task's request. A failure pauses the plan, unless a stall retry is in ``others``."""
        with self._lock:
            task_state = self._task_of_request(request.id)
            if task_state is None or not task_state.open:
                return
            task_state.run = request.run or task_state.run
            succeeded = request.status == RequestStatus.DONE and run_status in (None, RunStatus.SUCCEEDED)
            if not succeeded:
                if self._stall_retry_pending(request, others or []):
                    return
                status = run_status.value if isinstance(run_status, RunStatus) else run_status or request.status.value
                reason = message or request.message or "no message"
                where = f"run {task_state.run}" if task_state.run else f"request {request.id}"
                self._fail(task_state, f"{where} {status}: {reason}")
                return
            task_state.status = TaskStatus.SUCCEEDED
            if not self._expects_pull(task_state):
                task_state.needs_merge = False
                self._touch(task_state)
                self._emit(f"task {task_state.id} succeeded (shared checkout, nothing to merge)", task_state)
                return
            task_state.needs_merge = True
            self._touch(task_state)
            pull = self._pull_of(task_state)
            if pull is not None:
                self._apply_pull(task_state, pull)
            else:
                self._emit(f"task {task_state.id} succeeded; its pull request is being recorded", task_state)
                self._settle_without_pull(task_state)

    def _stall_retry_pending(self, request: Request, others: list[Request]) -> bool:
        retry = next(
            (r for r in others if r.sender == f"stall retry of {request.id}" and r.status not in _FINAL_REQUESTS),
            None,
        )
        if retry is None:
            return False
        task_state = self._task_of_request(request.id)
        assert task_state is not None
        self._adopt(task_state, retry, f"stalled; continues in request {retry.id}")
        return True

    # Catching up after missed notices

    def resync(self) -> None:
        """Compare every unfinished task with the orchestrator and the pull request files."""
        snapshot = self.orchestrator.snapshot()
        requests = {r.id: r for r in snapshot.requests}
        with self._lock:
            for run_id, run in snapshot.runs.items():
                if run.status in FINAL_RUN_STATUSES:
                    self._runs.setdefault(run_id, run)
            for task_state in list(self.state.tasks.values()):
                if task_state.open and task_state.request:
                    request = requests.get(task_state.request)
                    if request is not None:
                        self._apply_request(request, list(requests.values()))
                    else:
                        self._lost_request(task_state)
                elif task_state.status == TaskStatus.SUCCEEDED and task_state.needs_merge:
                    pull = self._pull_of(task_state)
                    if pull is not None:
                        self._apply_pull(task_state, pull)
                    else:
                        self._settle_without_pull(task_state)
                elif task_state.status == TaskStatus.FAILED and task_state.pull:
                    # A pull request the plan gave up on may still be merged by hand.
                    pull = self._pull_of(task_state)
                    if pull is not None and pull.get("status") == "merged":
                        self.on_pull_changed(pull)
            for request in requests.values():
                if self._task_of_request(request.id) is None:
                    self._maybe_adopt_retry(request)
        self.step()

    def _lost_request(self, task_state: TaskState) -> None:
        pull = self._pull_of(task_state)
        if pull is not None:
            task_state.status = TaskStatus.SUCCEEDED
            task_state.needs_merge = True
            self._apply_pull(task_state, pull)
            return
        self._fail(task_state, f"request {task_state.request} is no longer in the orchestrator's queue: retry the task")

    # User actions

    def retry(self, task_id: str, changes: dict[str, Any] | None = None) -> None:
        """Dispatch a failed task again, after applying ``changes`` to it in the plan file.

        The plan file is read again in any case, so edits made by hand or in the editor apply.
        """
        with self._lock:
            task_state = self._user_task(task_id)
            if self.state.status in (PlanStatus.COMPLETED, PlanStatus.ABORTED):
                raise PlanError(f"plan {self.plan_id} is {self.state.status.value}: tasks can no longer be retried")
            if task_state.status != TaskStatus.FAILED and not (task_state.status == TaskStatus.SUCCEEDED and not task_state.done):
                raise PlanError(f"task {task_id} is {task_state.status.value}: only a failed task, or one waiting for its merge, can be retried")
            if changes:
                edit_task(self.plan_path, task_id, changes, self.settings, self.paths.repo)
            self.reload()
            task_state.status = TaskStatus.PENDING
            task_state.reason = None
            task_state.needs_merge = False
            self._touch(task_state)
            self._emit(f"task {task_id} will be retried" + (" with the edited task" if changes else ""), task_state)
            self._resume_if_clear()
        self.step()

    def skip(self, task_id: str) -> None:
        """Mark a task skipped: its phase and the tasks that depend on it go on without it."""
        with self._lock:
            task_state = self._user_task(task_id)
            if self.state.status in (PlanStatus.COMPLETED, PlanStatus.ABORTED):
                raise PlanError(f"plan {self.plan_id} is {self.state.status.value}: tasks can no longer be skipped")
            if task_state.open:
                raise PlanError(
                    f"task {task_id} is {task_state.status.value} (request {task_state.request}): stop its run "
                    f"(aipass-tui stop {task_state.agent}) or let it finish, then skip it"
                )
            if task_state.done:
                raise PlanError(f"task {task_id} is already {task_state.status.value}")
            if task_id in self._dispatching:
                raise PlanError(f"task {task_id} is being dispatched right now: wait a moment, then skip it")
            task_state.status = TaskStatus.SKIPPED
            task_state.reason = "skipped by the user"
            task_state.needs_merge = False
            self._touch(task_state)
            self._emit(f"task {task_id} skipped", task_state)
            self._resume_if_clear()
        self.step()

    def abort(self) -> None:
        """Stop the plan: nothing more is dispatched, but requests already queued or running go on."""
        with self._lock:
            if self.state.status in (PlanStatus.COMPLETED, PlanStatus.ABORTED):
                raise PlanError(f"plan {self.plan_id} is already {self.state.status.value}")
            self.state.status = PlanStatus.ABORTED
            self.state.reason = "aborted by the user"
            self.state.finished_at = clock.now()
            self._save()
            still_open = [t.id for t in self.state.tasks.values() if t.open]
            tail = f"; tasks still queued or running: {', '.join(still_open)}" if still_open else ""
            self._emit(f"aborted{tail}")

    def reload(self) -> None:
        """Read the plan file again (it must still be valid) and add tasks that appeared in it."""
        with self._lock:
            self.plan = load_plan(self.plan_path, self.settings, self.paths.repo)
            self._add_missing_tasks()
            self._save()

    def _user_task(self, task_id: str) -> TaskState:
        task_state = self.state.tasks.get(task_id)
        if task_state is None:
            known = ", ".join(self.state.tasks) or "(none)"
            raise PlanError(f"plan {self.plan_id} has no task {task_id!r}: use one of {known}")
        return task_state

    # State helpers

    def _fail(self, task_state: TaskState, reason: str) -> None:
        task_state.status = TaskStatus.FAILED
        task_state.reason = reason
        self._touch(task_state)
        self._emit(f"task {task_state.id} failed: {reason}", task_state)
        if self.state.status in (PlanStatus.RUNNING, PlanStatus.PAUSED):
            was_running = self.state.status == PlanStatus.RUNNING
            self.state.status = PlanStatus.PAUSED
            self.state.reason = f"task {task_state.id} failed: {reason}"
            self._save()
            if was_running:
                self._emit(
                    f"paused: retry with 'aipass-tui plan retry {self.plan_id} {task_state.id}', skip with "
                    f"'aipass-tui plan skip {self.plan_id} {task_state.id}', or abort with 'aipass-tui plan abort {self.plan_id}'"
                )

    def _resume_if_clear(self) -> None:
        if self.state.status != PlanStatus.PAUSED:
            return
        failed = [t for t in self.state.tasks.values() if t.status == TaskStatus.FAILED]
        if failed:
            self.state.reason = f"task {failed[0].id} failed: {failed[0].reason}"
            self._save()
            return
        self.state.status = PlanStatus.RUNNING
        self.state.reason = None
        self._save()
        self._emit("resumed")

    def _add_missing_tasks(self) -> None:
        for _, _, task in self.plan.tasks():
            if task.id not in self.state.tasks:
                self.state.tasks[task.id] = TaskState(id=task.id, agent=task.agent, files=list(task.files))

    def _touch(self, task_state: TaskState) -> None:
        task_state.updated_at = clock.now()
        self._save()

    def _save(self) -> None:
        save_state(self.paths, self.state)

    def _emit(self, text: str, task_state: TaskState | None = None) -> None:
        key = task_state.id if task_state else None
        if self._last_text.get(key) == text:
            return
        self._last_text[key] = text
        event = PlanEvent(self.plan_id, text, key, task_state.status.value if task_state else self.state.status.value)
        log.info("%s", event)
        if self.listener is not None:
            self.listener(event)

    def _task_of_request(self, request_id: str) -> TaskState | None:
        return next((t for t in self.state.tasks.values() if t.request == request_id), None)

    def _task_of_pull(self, pull: dict[str, Any]) -> TaskState | None:
        pull_id = str(pull.get("id"))
        request_ids = {str(pull.get("request"))} | {str(r) for r in pull.get("requests") or []}
        for task_state in self.state.tasks.values():
            if task_state.pull == pull_id or (task_state.request and task_state.request in request_ids):
                return task_state
        return None

    def _snapshot_requests(self) -> list[Request]:
        return list(self.orchestrator.snapshot().requests)

    def _run(self, run_id: str | None) -> RunRecord | None:
        if not run_id:
            return None
        # The orchestrator writes a run's final record to run.json before it finishes the
        # request, so the file is read when no RunFinished notice brought the record.
        run = self._runs.get(run_id)
        if run is None:
            try:
                data = read_json(self.paths.run_dir(run_id) / "run.json")
                run = RunRecord.model_validate(data) if data else None
            except (StateError, ValueError) as exc:
                log.warning("plan %s: could not read run %s: %s", self.plan_id, run_id, exc)
        return run
