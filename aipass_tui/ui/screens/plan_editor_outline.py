"""The plan editor's outline actions: add, rename, delete, duplicate and move phases and tasks.

Each action is one edit of the TOML document and one step of the undo history.
"""

from __future__ import annotations

from typing import Callable, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.command import Provider
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from aipass_tui.core.plans.templates import NO_AGENT
from aipass_tui.ui import bindings
from aipass_tui.ui.plan_document import PlanDocument
from aipass_tui.ui.widgets.plan_outline import PLAN, OutlineKey, PlanOutline
from aipass_tui.ui.widgets.task_form import TaskForm


class NameDialog(ModalScreen[str | None]):
    """Asks for one line of text; dismisses with it, or None on Escape."""

    CSS_PATH = "plan_editor.tcss"
    BINDINGS = bindings.bindings(bindings.PICKER)

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="name-dialog"):
            yield Label(self.title_text, id="name-title", markup=False)
            yield Input(self.value, id="name-input")
            yield Label("Enter saves · Esc cancels", id="name-hint")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class OutlineActionsMixin:
    """The outline's actions, for ``PlanEditorScreen``, which provides ``_edit`` and the refresh methods."""

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {bindings.FocusedWidgetCommands}
    """Command palette providers added on the editor screen: the outline's actions while it has the focus."""

    def _default_agent(self, document: PlanDocument, key: OutlineKey) -> str:
        """Return the agent for a new task: the selected task's, else the first configured one."""
        phases = document.outline()
        if key.kind == "task" and key.phase < len(phases) and key.task < len(phases[key.phase].tasks):
            agent = phases[key.phase].tasks[key.task].agent
            if agent:
                return agent
        agents = list(self.cockpit.settings.agents)
        return agents[0] if agents else NO_AGENT

    def _after_structure_change(self, select: OutlineKey) -> None:
        self._refresh_outline(select)
        self._refresh_form()
        self._schedule_check()

    def action_add_task(self) -> None:
        key = self.query_one(PlanOutline).selected
        document = self._current_document()
        if document is None:
            self._notify_syntax_error()
            return
        phases = document.outline()
        if not phases:
            self.notify("add a phase first (p in the outline)", title="Add task", severity="warning")
            return
        phase = key.phase if key.kind != "plan" else len(phases) - 1
        after = key.task if key.kind == "task" else None
        agent = self._default_agent(document, key)
        index = self._edit(lambda document: document.add_task(phase, after, agent), checkpoint=True)
        if index is not None:
            self._after_structure_change(OutlineKey("task", phase, index))

    def action_add_phase(self) -> None:
        key = self.query_one(PlanOutline).selected
        after = key.phase if key.kind != "plan" else None
        index = self._edit(lambda document: document.add_phase(after), checkpoint=True)
        if index is not None:
            self._after_structure_change(OutlineKey("phase", index))

    def action_rename(self) -> None:
        key = self.query_one(PlanOutline).selected
        document = self._current_document()
        if document is None:
            self._notify_syntax_error()
            return
        if key.kind == "plan":
            self.view = "form"
            self.query_one(TaskForm).focus_first()
            return
        if key.kind == "phase":
            current = document.phase_fields(key.phase)["name"]
            self.app.push_screen(NameDialog(f"Rename phase {key.phase + 1}", current), lambda name: self._rename(key, name))
        else:
            current = document.outline()[key.phase].tasks[key.task].id
            self.app.push_screen(NameDialog(f"Change the id of task {current or key.task + 1}", current), lambda name: self._rename(key, name))

    def _rename(self, key: OutlineKey, name: str | None) -> None:
        if name is None:
            return
        if key.kind == "phase":
            if self._edit(lambda document: document.rename_phase(key.phase, name), checkpoint=True) is not None:
                self._after_structure_change(key)
            return
        changed = self._edit(lambda document: document.rename_task(key.phase, key.task, name), checkpoint=True)
        if changed is not None:
            self._after_structure_change(key)
            if changed:
                self.notify(f"depends_on updated in {', '.join(changed)}", title="Task id changed")

    def action_delete(self) -> None:
        key = self.query_one(PlanOutline).selected
        if key.kind == "plan":
            self.notify("select a phase or a task to delete", title="Delete", severity="warning")
            return
        if key.kind == "phase":
            changed = self._edit(lambda document: document.delete_phase(key.phase), checkpoint=True)
            select = OutlineKey("phase", max(0, key.phase - 1)) if key.phase else PLAN
            deleted = f"phase {key.phase + 1}"
        else:
            changed = self._edit(lambda document: document.delete_task(key.phase, key.task), checkpoint=True)
            select = OutlineKey("task", key.phase, max(0, key.task - 1)) if key.task else OutlineKey("phase", key.phase)
            deleted = f"task {key.task + 1} of phase {key.phase + 1}"
        if changed is None:
            return
        self._after_structure_change(select)
        detail = f"; removed from depends_on of {', '.join(changed)}" if changed else ""
        self.notify(f"deleted {deleted}{detail}; ctrl+z undoes it", title="Delete")

    def action_duplicate(self) -> None:
        key = self.query_one(PlanOutline).selected
        if key.kind == "phase":
            index = self._edit(lambda document: document.duplicate_phase(key.phase), checkpoint=True)
            if index is not None:
                self._after_structure_change(OutlineKey("phase", index))
        elif key.kind == "task":
            index = self._edit(lambda document: document.duplicate_task(key.phase, key.task), checkpoint=True)
            if index is not None:
                self._after_structure_change(OutlineKey("task", key.phase, index))
        else:
            self.notify("select a phase or a task to duplicate", title="Duplicate", severity="warning")

    def action_move(self, delta: int) -> None:
        key = self.query_one(PlanOutline).selected
        if key.kind == "phase":
            index = self._edit(lambda document: document.move_phase(key.phase, delta), checkpoint=True)
            target = OutlineKey("phase", index) if index is not None else None
        elif key.kind == "task":
            moved = self._edit(lambda document: document.move_task(key.phase, key.task, delta), checkpoint=True)
            target = OutlineKey("task", moved[0], moved[1]) if moved is not None else None
        else:
            return
        if target is None:
            if self._document is not None:
                self.notify(f"already the {'first' if delta < 0 else 'last'} one", title="Move", severity="warning")
            return
        self._after_structure_change(target)
