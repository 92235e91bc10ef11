"""A plan's progress: each task's status, agent and pull request, and a progress bar per phase.

The screen reads the plan's saved progress (``.aipass/state/plans/<plan-id>.json``), the plan
file and the pull request records on a worker thread. It reads them when it opens, after every
orchestrator notice about the queue, an agent or a finished run, and at the app's one-second tick.
The keys act on the plan through the same ``plan.*`` handlers as ``aipass-tui plan``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Label, ProgressBar, Static

from aipass_tui.config import Settings
from aipass_tui.core.handlers import HandlerContext, HandlerError, run_handler
from aipass_tui.core.plans import PlanError, TaskState, TaskStatus, check, load_state, plan_id_for
from aipass_tui.core.pulls import PullNotFound, PullStore
from aipass_tui.core.store import Paths, StateError
from aipass_tui.ui import bindings
from aipass_tui.ui.model import Changes
from aipass_tui.ui.source import RecordedSource
from aipass_tui.ui.text import sanitize_line, shorten
from aipass_tui.ui.widgets.color_mode import mark_standard_colors
from aipass_tui.ui.widgets.fitting_footer import FittingFooter

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

log = logging.getLogger(__name__)

COLUMNS = (("task", "Task"), ("phase", "Ph"), ("agent", "Agent"), ("status", "Status"), ("pull", "Pull request"), ("tries", "Try"))
FOOTER_SHORT = {"plan_retry_task": "Retry", "plan_skip_task": "Skip", "plan_abort": "Abort"}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones (80 columns)."""


@dataclass(frozen=True)
class TaskRow:
    """One task of the plan with its progress."""

    id: str
    phase: int
    agent: str
    status: str
    pull: str
    attempts: int
    reason: str
    request: str
    run: str

    def cells(self) -> tuple[str, ...]:
        return (self.id, str(self.phase + 1), self.agent, self.status, self.pull, str(self.attempts) if self.attempts else "")


@dataclass(frozen=True)
class PhaseRow:
    """One phase with how many of its tasks are done."""

    name: str
    done: int
    total: int


@dataclass(frozen=True)
class PlanProgress:
    """Everything the screen shows, read at one moment."""

    plan_id: str
    title: str
    status: str
    reason: str
    current_phase: int
    phases: tuple[PhaseRow, ...]
    tasks: tuple[TaskRow, ...]
    problem: str = ""
    """The reason part of the plan could not be read (shown above the table), or empty."""

    @property
    def done(self) -> int:
        return sum(phase.done for phase in self.phases)

    @property
    def total(self) -> int:
        return sum(phase.total for phase in self.phases)


def task_status(state: TaskState | None) -> str:
    """Describe a task's status in a few words: ``waiting for merge`` for a succeeded task not yet merged."""
    if state is None:
        return TaskStatus.PENDING.value
    if state.status == TaskStatus.SUCCEEDED and state.needs_merge:
        return "waiting for merge"
    return state.status.value


def pull_cell(store: PullStore, pull_id: str | None) -> str:
    """Describe a task's pull request: ``#3 open``, with the files changed outside the task's globs."""
    if not pull_id:
        return ""
    try:
        pull = store.load(pull_id)
    except (PullNotFound, StateError, ValueError) as exc:
        log.warning("plan progress: pull request %s unreadable: %s", pull_id, exc)
        return f"#{pull_id}"
    text = f"#{pull.id} {pull.status.value}"
    if pull.violations:
        text += f", {len(pull.violations)} outside its files"
    return text


def load_progress(paths: Paths, settings: Settings, path: Path) -> PlanProgress:
    """Read a plan file, its saved progress and its pull requests."""
    plan_id = plan_id_for(path)
    plan, problems = check(path, settings, paths.repo, tracked=[])
    problem = ""
    try:
        state = load_state(paths, plan_id)
    except PlanError as exc:
        state, problem = None, str(exc)
    tasks_of = state.tasks if state is not None else {}
    store = PullStore(paths)

    if plan is not None:
        title = plan.title
        layout = [(phase.name, [(task.id, task.agent) for task in phase.tasks]) for phase in plan.phases]
    else:
        title = path.name
        if problems and not problem:
            problem = f"the plan file has {len(problems)} problem(s), the first: {problems[0]}"
        layout = [("(tasks from the saved progress)", [(task_id, task.agent or "") for task_id, task in tasks_of.items()])]

    phases: list[PhaseRow] = []
    rows: list[TaskRow] = []
    for phase_index, (name, tasks) in enumerate(layout):
        done = 0
        for task_id, agent in tasks:
            task_state = tasks_of.get(task_id)
            if task_state is not None and task_state.done:
                done += 1
            rows.append(_task_row(task_id, phase_index, agent, task_state, store))
        phases.append(PhaseRow(name, done, len(tasks)))
    return PlanProgress(
        plan_id=plan_id,
        title=title,
        status=state.status.value if state is not None else "not started",
        reason=(state.reason or "") if state is not None else "",
        current_phase=state.phase if state is not None else 0,
        phases=tuple(phases),
        tasks=tuple(rows),
        problem=problem,
    )


def _task_row(task_id: str, phase: int, agent: str, state: TaskState | None, store: PullStore) -> TaskRow:
    if state is None:
        return TaskRow(task_id, phase, agent, task_status(None), "", 0, "", "", "")
    return TaskRow(
        id=task_id,
        phase=phase,
        agent=state.agent or agent,
        status=task_status(state),
        pull=pull_cell(store, state.pull),
        attempts=state.attempts,
        reason=state.reason or "",
        request=state.request or "",
        run=state.run or "",
    )


class ProgressLoaded(Message):
    def __init__(self, progress: PlanProgress | None, error: str = "") -> None:
        super().__init__()
        self.progress = progress
        self.error = error


class PlanActionDone(Message):
    def __init__(self, action: str, summary: dict[str, Any] | None, error: str = "") -> None:
        super().__init__()
        self.action = action
        self.summary = summary
        self.error = error


class PhaseBar(Horizontal):
    """A phase's name, a bar of its tasks done, and the count."""

    def compose(self) -> ComposeResult:
        yield Label("", classes="phase-name", markup=False)
        yield ProgressBar(total=1, show_percentage=False, show_eta=False)
        yield Label("", classes="phase-count", markup=False)

    def show(self, index: int, phase: PhaseRow, current: bool, completed: bool) -> None:
        self.query_one(".phase-name", Label).update(shorten(f"{index + 1}. {sanitize_line(phase.name)}", 24))
        self.query_one(ProgressBar).update(total=max(phase.total, 1), progress=phase.done)
        self.query_one(".phase-count", Label).update(f"{phase.done}/{phase.total} tasks done")
        self.set_class(current, "-current")
        self.set_class(completed, "-completed")


class PlanRunScreen(Screen[None]):
    """Progress of the plan in ``path``; works whether or not the plan has started."""

    CSS_PATH = "plan_run.tcss"
    BINDINGS = bindings.bindings(bindings.PLAN_PROGRESS)
    BINDING_SCOPE = bindings.PLAN_PROGRESS

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path.absolute()
        self.plan_id = plan_id_for(self.path)
        self.progress: PlanProgress | None = None
        self._loading = False
        self._load_again = False
        self._cells: dict[str, tuple[str, ...]] = {}

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def compose(self) -> ComposeResult:
        yield Label(f"Plan {self.plan_id}", id="run-title", markup=False)
        yield Static("reading the plan's progress…", id="run-status", markup=False)
        yield Vertical(id="phase-bars")
        yield DataTable(id="plan-tasks", cursor_type="row", zebra_stripes=True)
        yield Static("", id="task-detail", markup=False)
        yield FittingFooter(FOOTER_SHORT)

    def on_mount(self) -> None:
        mark_standard_colors(self)
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.refresh_progress()

    def apply_changes(self, changes: Changes, tick: bool = False) -> None:
        """Read the progress again after a tick or a notice that may have moved a task."""
        if tick or changes.queue or changes.finished or changes.agents:
            self.refresh_progress()

    def refresh_progress(self) -> None:
        if self._loading:
            self._load_again = True
            return
        self._loading = True
        self._load_worker()

    @work(thread=True, exclusive=True, group="plan-progress", exit_on_error=False)
    def _load_worker(self) -> None:
        try:
            progress = load_progress(self.cockpit.source.paths, self.cockpit.settings, self.path)
        except Exception as exc:  # a broken record must not leave the screen silent
            log.exception("reading the progress of %s failed", self.path)
            self.post_message(ProgressLoaded(None, f"cannot read the progress of {self.plan_id}: {exc}"))
            return
        self.post_message(ProgressLoaded(progress))

    async def on_progress_loaded(self, message: ProgressLoaded) -> None:
        self._loading = False
        if message.progress is None:
            self.query_one("#run-status", Static).update(message.error)
        else:
            self.progress = message.progress
            await self._show(message.progress)
        if self._load_again:
            self._load_again = False
            self.refresh_progress()

    async def _show(self, progress: PlanProgress) -> None:
        self.query_one("#run-title", Label).update(f"Plan {progress.plan_id} · {sanitize_line(progress.title)}")
        status = f"{progress.status} · phase {min(progress.current_phase + 1, len(progress.phases))}/{len(progress.phases)}"
        status += f" · {progress.done}/{progress.total} tasks done"
        if progress.reason:
            status += f"\n{sanitize_line(progress.reason)}"
        if progress.problem:
            status += f"\n{sanitize_line(progress.problem)}"
        self.query_one("#run-status", Static).update(status)
        for state in ("running", "paused", "completed", "aborted"):
            self.set_class(progress.status == state, f"-{state}")
        await self._show_phases(progress)
        self._show_tasks(progress)

    async def _show_phases(self, progress: PlanProgress) -> None:
        container = self.query_one("#phase-bars", Vertical)
        bars = list(container.query(PhaseBar))
        if len(bars) != len(progress.phases):
            await container.remove_children()
            bars = [PhaseBar() for _ in progress.phases]
            await container.mount_all(bars)
        for index, (bar, phase) in enumerate(zip(bars, progress.phases)):
            current = index == progress.current_phase and progress.status in ("running", "paused")
            bar.show(index, phase, current, phase.total > 0 and phase.done == phase.total)

    def _show_tasks(self, progress: PlanProgress) -> None:
        table = self.query_one(DataTable)
        order = [row.id for row in progress.tasks]
        selected = self.selected_task()
        if order != list(self._cells):
            table.clear()
            self._cells = {}
            for row in progress.tasks:
                table.add_row(*[Text(cell) for cell in row.cells()], key=row.id)
                self._cells[row.id] = row.cells()
            if selected is not None and selected.id in self._cells:
                table.move_cursor(row=order.index(selected.id), animate=False)
        else:
            for row in progress.tasks:
                cells = row.cells()
                for (key, _), value, before in zip(COLUMNS, cells, self._cells[row.id]):
                    if value != before:
                        table.update_cell(row.id, key, Text(value))
                self._cells[row.id] = cells
        self._show_detail()

    def selected_task(self) -> TaskRow | None:
        table = self.query_one(DataTable)
        if self.progress is None or not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return next((row for row in self.progress.tasks if row.id == row_key.value), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.selected_task()
        detail = self.query_one("#task-detail", Static)
        if row is None:
            detail.update("")
            return
        ids = [f"request {row.request}" if row.request else "", f"run {row.run}" if row.run else ""]
        lines = [f"{row.id} · {row.agent} · {row.status}" + "".join(f" · {part}" for part in ids if part)]
        if row.reason:
            lines.append(shorten(sanitize_line(row.reason), 300))
        detail.update("\n".join(lines))

    # Actions ---------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_edit_plan(self) -> None:
        from aipass_tui.ui.screens.plan_editor import PlanEditorScreen

        stack = self.app.screen_stack
        below = stack[-2] if len(stack) > 1 else None
        if isinstance(below, PlanEditorScreen) and below.path == self.path:
            self.dismiss()
        else:
            self.app.push_screen(PlanEditorScreen(self.path))

    def action_run_plan(self) -> None:
        self._call("Run", "plan.run", {"plan": str(self.path)})

    def action_retry_task(self) -> None:
        row = self.selected_task()
        if row is not None:
            self._call("Retry", "plan.retry", {"plan": str(self.path), "task": row.id})

    def action_skip_task(self) -> None:
        row = self.selected_task()
        if row is not None:
            self._call("Skip", "plan.skip", {"plan": str(self.path), "task": row.id})

    def action_abort_plan(self) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        self.app.push_screen(
            ConfirmScreen(
                f"Abort plan {self.plan_id}?",
                "Nothing more of this plan is dispatched. Requests already queued or running go on; "
                "stop them from the queue (q) if needed.",
                "Abort plan",
            ),
            lambda confirmed: self._call("Abort", "plan.abort", {"plan": str(self.path)}) if confirmed else None,
        )

    def _call(self, action: str, name: str, args: dict[str, Any]) -> None:
        if isinstance(self.cockpit.source, RecordedSource):
            self.notify(f"cannot {action.lower()}: this cockpit shows a recorded snapshot, not a running orchestrator",
                        title=action, severity="error")
            return
        self._call_worker(action, name, args)

    @work(thread=True, group="plan-action", exit_on_error=False)
    def _call_worker(self, action: str, name: str, args: dict[str, Any]) -> None:
        orchestrator = self.cockpit.source
        context = HandlerContext(orchestrator.paths, self.cockpit.settings, orchestrator)  # type: ignore[arg-type]
        try:
            summary = run_handler(context, name, args)
        except HandlerError as exc:
            self.post_message(PlanActionDone(action, None, str(exc)))
            return
        except Exception as exc:  # anything else is a bug, reported instead of failing silently
            log.exception("%s on plan %s failed", name, self.plan_id)
            self.post_message(PlanActionDone(action, None, f"{name} failed: {exc}; see .aipass/logs/cockpit.log"))
            return
        self.post_message(PlanActionDone(action, summary))

    def on_plan_action_done(self, message: PlanActionDone) -> None:
        if message.summary is None:
            self.notify(message.error, title=f"{message.action} failed", severity="error", timeout=10)
        else:
            summary = message.summary
            reason = f" ({summary['reason']})" if summary.get("reason") else ""
            self.notify(f"{summary.get('plan')}: {summary.get('status')}, {summary.get('done')}/{summary.get('total')} tasks done{reason}",
                        title=message.action)
        self.refresh_progress()
