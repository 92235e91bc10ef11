"""The plan editor: outline, form and TOML source of one plan file, kept in step as you type.

The TOML text in the source ``TextArea`` is the one truth. A form or outline edit changes the
tomlkit document and replaces only the changed part of the text, so comments and layout stay
and one undo history (the text area's) covers edits made anywhere. Text typed in the source is
parsed and validated on a worker thread ~300 ms after the last key. When it parses, the outline
and the form follow it. The file on disk is polled once a second: a change made elsewhere is
loaded at once when there are no unsaved edits, and otherwise offered for reload.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, OptionList, Static, TextArea, Tree
from textual.widgets.option_list import Option

from aipass_tui.core.handlers import HandlerContext, HandlerError, run_handler
from aipass_tui.core.plans import Problem, plan_id_for, validate
from aipass_tui.core.plans.templates import NO_AGENT
from aipass_tui.core.plans.validation import tracked_files
from aipass_tui.ui import bindings
from aipass_tui.ui.plan_document import PlanDocument, StructureError, parse, text_edit, write_atomic
from aipass_tui.ui.source import RecordedSource
from aipass_tui.ui.widgets.plan_outline import PLAN, OutlineKey, PlanOutline
from aipass_tui.ui.widgets.task_form import TaskForm

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

log = logging.getLogger(__name__)

CHECK_DELAY = 0.3
"""Seconds after the last edit before the plan is parsed and validated again."""
POLL_SECONDS = 1.0
"""Seconds between two looks at the plan file's modification time."""
WIDE = 120
"""From this many columns the form and the TOML source are shown side by side."""
OUTLINE_FIELDS = ("title", "name", "agent")
"""Fields that the outline shows (the plan's title, a phase's name, a task's agent)."""
Signature = tuple[int, int, int] | None
T = TypeVar("T")


@functools.cache
def toml_highlighting() -> bool:
    """Tell whether the TextArea can highlight TOML, logging once when it cannot.

    ``TextArea.available_languages`` lists "toml" even when the grammar is missing (Textual
    8.2.8), so this checks for the packages of the ``textual[syntax]`` extra it would load.
    """
    found = importlib.util.find_spec("tree_sitter") is not None and importlib.util.find_spec("tree_sitter_toml") is not None
    if not found:
        log.warning("the plan editor shows TOML without highlighting: install textual[syntax] (tree-sitter, tree-sitter-toml)")
    return found


def file_signature(path: Path) -> Signature:
    """Return the modification time, size and inode of a file, or None when it does not exist."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class PlanLoaded(Message):
    def __init__(self, text: str, signature: Signature) -> None:
        super().__init__()
        self.text = text
        self.signature = signature


class PlanLoadFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class PlanChecked(Message):
    """The result of parsing and validating ``text`` on a worker thread."""

    def __init__(self, text: str, document: PlanDocument | None, problems: list[Problem], tracked: list[str]) -> None:
        super().__init__()
        self.text = text
        self.document = document
        self.problems = problems
        self.tracked = tracked


class PlanSaved(Message):
    def __init__(self, text: str, signature: Signature, then_run: bool) -> None:
        super().__init__()
        self.text = text
        self.signature = signature
        self.then_run = then_run


class PlanSaveFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class DiskChanged(Message):
    """The plan file on disk differs from the version loaded or saved last.

    ``text`` is None when the file is gone or cannot be read, and ``reason`` then says which.
    """

    def __init__(self, text: str | None, signature: Signature, reason: str = "", *, from_save: bool = False) -> None:
        super().__init__()
        self.text = text
        self.signature = signature
        self.reason = reason
        self.from_save = from_save
        """Whether a save found the change (it then wrote nothing)."""


class PlanStarted(Message):
    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary


class PlanRunFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


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


class PlanEditorScreen(Screen[None]):
    """Edits the plan file ``path``. A missing or unreadable file closes the screen with a notification."""

    CSS_PATH = "plan_editor.tcss"
    BINDINGS = bindings.bindings(bindings.PLAN_EDITOR)
    BINDING_SCOPE = bindings.PLAN_EDITOR

    view: reactive[str] = reactive("form")
    """The pane a narrow screen shows beside the outline: ``form`` or ``source``."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path.absolute()
        self.plan_id = plan_id_for(self.path)
        self.loaded = False
        self.problems: list[Problem] = []
        self.checked_text: str | None = None
        """The text that ``problems`` were found in."""
        self._document: PlanDocument | None = None
        self._document_text: str | None = None
        self._saved_text: str | None = None
        self._disk_signature: Signature = None
        self._tracked: list[str] | None = None
        self._check_timer: Timer | None = None
        self._problem_index = -1
        self._asking_reload = False
        self._gone_reported = False
        self._saving = False

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    @property
    def source(self) -> TextArea:
        return self.query_one("#source", TextArea)

    @property
    def dirty(self) -> bool:
        """Whether the text differs from the file as last loaded or saved."""
        return self.loaded and self.source.text != self._saved_text

    @property
    def filename(self) -> str:
        """The plan file as problems name it: relative to the repository when it is inside."""
        try:
            return str(self.path.relative_to(self.cockpit.source.repo.absolute()))
        except ValueError:
            return str(self.path)

    def compose(self) -> ComposeResult:
        yield Label("", id="editor-title", markup=False)
        with Horizontal(id="editor-body"):
            yield PlanOutline(id="outline")
            yield TaskForm(id="form")
            yield TextArea.code_editor("", id="source", tab_behavior="focus", soft_wrap=False)
        with Vertical(id="problems-panel"):
            yield Static("", id="problems-summary", markup=False)
            yield OptionList(id="problems", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        if toml_highlighting():
            self.source.language = "toml"
        self.query_one(TaskForm).show_message("Loading the plan…")
        self._update_title()
        self._arrange()
        self._load_worker()
        self.set_interval(POLL_SECONDS, self._poll, name="plan-disk")

    def on_resize(self) -> None:
        self._arrange()

    def _arrange(self) -> None:
        self.set_class(self.size.width >= WIDE, "-wide")
        self.watch_view(self.view)

    def watch_view(self, view: str) -> None:
        self.set_class(view == "source", "-show-source")
        self.set_class(view != "source", "-show-form")

    # Loading -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="plan-load", exit_on_error=False)
    def _load_worker(self) -> None:
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except FileNotFoundError:
            self.post_message(PlanLoadFailed(f"plan file {self.path} not found: it was moved or deleted"))
            return
        except OSError as exc:
            self.post_message(PlanLoadFailed(f"cannot read plan file {self.path}: {exc.strerror or exc}"))
            return
        except UnicodeDecodeError as exc:
            self.post_message(PlanLoadFailed(f"cannot open plan file {self.path}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"))
            return
        self.post_message(PlanLoaded(text, file_signature(self.path)))

    def on_plan_load_failed(self, message: PlanLoadFailed) -> None:
        log.error("plan editor: %s", message.reason)
        self.notify(message.reason, title="Plan editor", severity="error", timeout=10)
        self.dismiss()

    def on_plan_loaded(self, message: PlanLoaded) -> None:
        self.source.load_text(message.text)
        self._saved_text = message.text
        self._disk_signature = message.signature
        self.loaded = True
        document = parse(message.text)
        if document is not None:
            self._use_document(document, message.text)
        else:
            self._show_syntax_error()
        self._update_title()
        self._start_check()
        self.query_one(PlanOutline).focus()

    # Keeping outline, form and source in step ------------------------------------------------

    def _use_document(self, document: PlanDocument, text: str) -> None:
        self._document = document
        self._document_text = text
        self._refresh_outline()
        self._refresh_form()

    def _current_document(self) -> PlanDocument | None:
        """Return the document of the text now in the source, parsing it if it changed since."""
        text = self.source.text
        if self._document is None or self._document_text != text:
            document = parse(text)
            if document is None:
                return None
            self._document = document
            self._document_text = text
        return self._document

    def _marked(self) -> set[OutlineKey]:
        return {OutlineKey.of_loc(problem.loc) for problem in self.problems if problem.loc}

    def _refresh_outline(self, select: OutlineKey | None = None) -> None:
        if self._document is None:
            return
        title = self._document.plan_fields()["title"]
        self.query_one(PlanOutline).show(title, self._document.outline(), self._marked(), select)

    def _refresh_form(self) -> None:
        form = self.query_one(TaskForm)
        document = self._document
        if document is None:
            return
        key = self.query_one(PlanOutline).selected
        try:
            if key.kind == "plan":
                form.show_plan(document.plan_fields())
            elif key.kind == "phase":
                form.show_phase(key, document.phase_fields(key.phase))
            else:
                phase_name = document.phase_fields(key.phase)["name"]
                fields = document.task_fields(key.phase, key.task)
                candidates = [task_id for phase, task_id in document.task_ids() if phase <= key.phase and task_id != fields["id"]]
                form.show_task(key, fields, phase_name, list(self.cockpit.settings.agents), candidates)
        except StructureError as exc:
            form.show_message(f"{exc}. Edit it in the TOML source (F4).")

    def _show_syntax_error(self) -> None:
        self.query_one(TaskForm).show_message(
            "The TOML source does not parse, so the form is off until it does. "
            "F8 jumps to the error; the outline shows the last version that parsed."
        )

    @on(Tree.NodeHighlighted, "#outline")
    def _outline_moved(self, event: Tree.NodeHighlighted) -> None:
        event.stop()
        self._refresh_form()

    @on(Tree.NodeSelected, "#outline")
    def _outline_chosen(self, event: Tree.NodeSelected) -> None:
        event.stop()
        if not self.has_class("-wide"):
            self.view = "form"
        self.query_one(TaskForm).focus_first()

    @on(TextArea.Changed, "#source")
    def _source_changed(self, event: TextArea.Changed) -> None:
        self._update_title()
        if self.loaded:
            self._schedule_check()

    @on(TaskForm.Edited)
    def _form_edited(self, event: TaskForm.Edited) -> None:
        key, field, value = event.key, event.field, event.value

        def change(document: PlanDocument) -> bool:
            if key.kind == "plan":
                return document.set_plan_field(field, value)
            if key.kind == "phase":
                return document.set_phase_field(key.phase, field, value)
            return document.set_task_field(key.phase, key.task, field, value)

        if self._edit(change) and field in OUTLINE_FIELDS:
            self._refresh_outline()

    def _edit(self, change: Callable[[PlanDocument], T], *, checkpoint: bool = False) -> T | None:
        """Apply ``change`` to the document and write the result into the source as one edit.

        Returns what ``change`` returned, or None when the source does not parse or the change
        was rejected (the user is notified of both).
        """
        document = self._current_document()
        if document is None:
            self._notify_syntax_error()
            return None
        try:
            result = change(document)
        except (StructureError, ValueError) as exc:
            self._document = parse(self._document_text or "")
            self.notify(str(exc), title="Plan editor", severity="error", timeout=8)
            return None
        text = document.dumps()
        self._replace_source(text, checkpoint=checkpoint)
        self._document_text = text
        return result

    def _notify_syntax_error(self) -> None:
        self.notify("the TOML source has a syntax error: fix it first (F8 jumps to it)", title="Plan editor", severity="warning")

    def _replace_source(self, text: str, *, checkpoint: bool) -> None:
        """Replace only the changed part of the source, so the cursor and the undo history stay."""
        source = self.source
        edit = text_edit(source.text, text)
        if edit is None:
            return
        start, end, replacement = edit
        if checkpoint:
            source.history.checkpoint()
        source.replace(replacement, source.document.get_location_from_index(start), source.document.get_location_from_index(end))
        if checkpoint:
            source.history.checkpoint()

    # Validation ------------------------------------------------------------------------------

    def _schedule_check(self) -> None:
        if self._check_timer is not None:
            self._check_timer.stop()
        self._check_timer = self.set_timer(CHECK_DELAY, self._start_check, name="plan-check")

    def _start_check(self) -> None:
        self._check_worker(self.source.text, self._tracked)

    @work(thread=True, exclusive=True, group="plan-check", exit_on_error=False)
    def _check_worker(self, text: str, tracked: list[str] | None) -> None:
        repo = self.cockpit.source.repo
        if tracked is None:
            tracked = tracked_files(repo)
        document = parse(text)
        try:
            problems = validate(text, self.cockpit.settings, repo, filename=self.filename, tracked=tracked)
        except Exception as exc:  # a bug in validation must not leave the editor without feedback
            log.exception("validating %s failed", self.path)
            problems = [Problem(self.filename, 1, 1, f"validation failed: {exc}; see .aipass/logs/cockpit.log")]
        self.post_message(PlanChecked(text, document, problems, tracked))

    def on_plan_checked(self, message: PlanChecked) -> None:
        self._tracked = message.tracked
        if message.text != self.source.text:
            return  # the text changed meanwhile; a newer check is scheduled
        self.problems = message.problems
        self.checked_text = message.text
        self._problem_index = -1
        if message.document is None:
            self._show_syntax_error()
        elif message.text != self._document_text:
            self._use_document(message.document, message.text)
        elif self.query_one(TaskForm).key is None:
            self._refresh_form()
        self._refresh_outline()
        self._show_problems()

    def _show_problems(self) -> None:
        summary = self.query_one("#problems-summary", Static)
        listing = self.query_one("#problems", OptionList)
        listing.clear_options()
        listing.add_options([Option(Text(str(problem))) for problem in self.problems])
        count = len(self.problems)
        if count:
            summary.update(f"{count} problem{'s' if count != 1 else ''} · F8 jumps to the next · Enter on one jumps to it")
        else:
            summary.update("No problems")
        self.set_class(count == 0, "-clean")

    def action_next_problem(self) -> None:
        self._step_problem(1)

    def action_previous_problem(self) -> None:
        self._step_problem(-1)

    def _step_problem(self, delta: int) -> None:
        if not self.problems:
            self.notify("no problems in this plan", title="Plan editor")
            return
        if self._problem_index < 0:
            index = 0 if delta > 0 else len(self.problems) - 1
        else:
            index = (self._problem_index + delta) % len(self.problems)
        self.jump_to_problem(index)

    @on(OptionList.OptionSelected, "#problems")
    def _problem_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.jump_to_problem(event.option_index)

    def jump_to_problem(self, index: int) -> None:
        """Put the source's cursor on problem ``index`` and focus the source."""
        problem = self.problems[index]
        self._problem_index = index
        self.query_one("#problems", OptionList).highlighted = index
        if problem.loc and self._document is not None:
            self.query_one(PlanOutline).select_key(OutlineKey.of_loc(problem.loc))
        if not self.has_class("-wide"):
            self.view = "source"
        source = self.source
        document = source.document
        row = max(0, min(problem.line - 1, document.line_count - 1))
        column = max(0, min(problem.column - 1, len(document.get_line(row))))
        source.focus()
        source.move_cursor((row, column))
        # The source may have just been shown, so it is scrolled once it has its size.
        self.call_after_refresh(self._center_line, row, column)

    def _center_line(self, row: int, column: int) -> None:
        """Scroll the source so ``row`` is in the middle, at the left edge when ``column`` fits there."""
        source = self.source
        region = source.scrollable_content_region
        left = 0 if column < region.width - 8 else None
        source.scroll_to(x=left, y=max(0, row - region.height // 2), animate=False)

    # Outline actions -------------------------------------------------------------------------

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

    # Editor actions --------------------------------------------------------------------------

    def action_undo(self) -> None:
        self.source.undo()

    def action_redo(self) -> None:
        self.source.redo()

    def action_toggle_view(self) -> None:
        self.view = "source" if self.view == "form" else "form"
        if self.view == "source":
            self.source.focus()
        else:
            self.query_one(TaskForm).focus_first()

    def action_focus_outline(self) -> None:
        self.query_one(PlanOutline).focus()

    def action_progress(self) -> None:
        from aipass_tui.ui.screens.plan_run import PlanRunScreen

        self.app.push_screen(PlanRunScreen(self.path))

    def action_open_plans(self) -> None:
        from aipass_tui.ui.screens.plan_picker import open_plan_picker

        if self.dirty:
            self.notify("save your edits (ctrl+s) or undo them before opening another plan", title="Open", severity="warning")
            return
        self.dismiss()
        open_plan_picker(self.cockpit)

    def action_back(self) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        if not self.dirty:
            self.dismiss()
            return
        self.app.push_screen(
            ConfirmScreen(
                "Close the editor?",
                f"{self.path.name} has unsaved edits. Closing discards them; n keeps the editor open (ctrl+s saves).",
                "Discard edits",
            ),
            lambda confirmed: self.dismiss() if confirmed else None,
        )

    def _update_title(self) -> None:
        state = " · modified" if self.dirty else ""
        if self.loaded and self._saved_text is None:
            state = " · not on disk"
        self.query_one("#editor-title", Label).update(f"Plan {self.plan_id} · {self.path.name}{state}")

    # Saving and running ----------------------------------------------------------------------

    def action_save(self) -> None:
        if self.loaded:
            self._save(False)

    def _save(self, then_run: bool) -> None:
        self._saving = True
        self._save_worker(self.source.text, self._disk_signature, then_run)

    @work(thread=True, exclusive=True, group="plan-save", exit_on_error=False)
    def _save_worker(self, text: str, expected: Signature, then_run: bool) -> None:
        current = file_signature(self.path)
        if current is not None and current != expected:
            # Another program wrote the file since it was loaded: never overwrite that unasked.
            self._report_disk_change(current, from_save=True)
            return
        hub = _automation_hub(self.cockpit.source)
        if hub is not None:
            hub.suppress(self.path)
        try:
            write_atomic(self.path, text)
        except OSError as exc:
            log.error("saving %s failed: %s", self.path, exc)
            self.post_message(PlanSaveFailed(f"cannot save {self.path}: {exc.strerror or exc}; your edits are still here"))
            return
        log.info("saved plan %s", self.path)
        self.post_message(PlanSaved(text, file_signature(self.path), then_run))

    def on_plan_saved(self, message: PlanSaved) -> None:
        self._saving = False
        self._saved_text = message.text
        self._disk_signature = message.signature
        self._gone_reported = False
        self._update_title()
        stale = self.checked_text != message.text
        count = len(self.problems)
        if count and not stale:
            self.notify(f"saved {self.path.name} with {count} problem{'s' if count != 1 else ''}: fix them before running it",
                        title="Saved", severity="warning")
        else:
            self.notify(f"saved {self.path.name}", title="Saved")
        if message.then_run:
            self._run_worker()

    def on_plan_save_failed(self, message: PlanSaveFailed) -> None:
        self._saving = False
        self.notify(message.reason, title="Save failed", severity="error", timeout=10)

    def action_run_plan(self) -> None:
        if not self.loaded:
            return
        if isinstance(self.cockpit.source, RecordedSource):
            self.notify("cannot run a plan: this cockpit shows a recorded snapshot, not a running orchestrator",
                        title="Run", severity="error")
            return
        text = self.source.text
        problems = self.problems if self.checked_text == text else validate(
            text, self.cockpit.settings, self.cockpit.source.repo, filename=self.filename, tracked=self._tracked or []
        )
        if problems:
            self.problems, self.checked_text = problems, text
            self._show_problems()
            self.notify(f"the plan has {len(problems)} problem(s): fix them first (F8 jumps to each)", title="Run", severity="error")
            return
        if self.dirty:
            self._save(True)
        else:
            self._run_worker()

    @work(thread=True, exclusive=True, group="plan-run", exit_on_error=False)
    def _run_worker(self) -> None:
        orchestrator = self.cockpit.source
        context = HandlerContext(orchestrator.paths, self.cockpit.settings, orchestrator)  # type: ignore[arg-type]
        try:
            summary = run_handler(context, "plan.run", {"plan": str(self.path)})
        except HandlerError as exc:
            self.post_message(PlanRunFailed(str(exc)))
            return
        except Exception as exc:  # anything else is a bug; the user still learns the plan did not start
            log.exception("starting plan %s failed", self.plan_id)
            self.post_message(PlanRunFailed(f"starting the plan failed: {exc}; see .aipass/logs/cockpit.log"))
            return
        self.post_message(PlanStarted(summary))

    def on_plan_started(self, message: PlanStarted) -> None:
        from aipass_tui.ui.screens.plan_run import PlanRunScreen

        summary = message.summary
        self.notify(f"{summary.get('plan')}: {summary.get('status')}, {summary.get('done')}/{summary.get('total')} tasks done",
                    title="Plan started")
        self.app.push_screen(PlanRunScreen(self.path))

    def on_plan_run_failed(self, message: PlanRunFailed) -> None:
        self.notify(message.reason, title="Run failed", severity="error", timeout=10)

    # Changes on disk -------------------------------------------------------------------------

    def _poll(self) -> None:
        if self.loaded and not self._asking_reload and not self._saving:
            self._poll_worker(self._disk_signature)

    @work(thread=True, exclusive=True, group="plan-disk", exit_on_error=False)
    def _poll_worker(self, known: Signature) -> None:
        current = file_signature(self.path)
        if current != known:
            self._report_disk_change(current)

    def _report_disk_change(self, signature: Signature, *, from_save: bool = False) -> None:
        """Read the file as it is on disk now and post DiskChanged (called on a worker thread)."""
        if signature is None:
            self.post_message(DiskChanged(None, None, "deleted or moved away", from_save=from_save))
            return
        try:
            text = self.path.read_bytes().decode("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self.post_message(DiskChanged(None, signature, f"changed but cannot be read ({exc})", from_save=from_save))
            return
        self.post_message(DiskChanged(text, signature, from_save=from_save))

    def on_disk_changed(self, message: DiskChanged) -> None:
        if message.from_save:
            self._saving = False
        elif self._saving:
            return  # a poll that may have seen this editor's own write; the save reports the outcome
        if message.signature == self._disk_signature and message.signature is not None:
            return
        if message.text is None:
            self._disk_signature = message.signature
            if not self._gone_reported:
                self._gone_reported = True
                self.notify(f"{self.path.name} was {message.reason} on disk: your text is kept, ctrl+s writes it",
                            title="Plan file", severity="warning", timeout=10)
            self._saved_text = None
            self._update_title()
            return
        self._gone_reported = False
        if message.text == self.source.text:
            self._mark_saved(message.text, message.signature)
        elif not self.dirty:
            self._reload(message.text, message.signature)
            self.notify(f"{self.path.name} changed on disk and was reloaded (ctrl+z undoes the reload)", title="Plan file")
        elif not self._asking_reload:
            self._offer_reload(message.text, message.signature)

    def _offer_reload(self, text: str, signature: Signature) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        self._asking_reload = True

        def answer(reload: bool | None) -> None:
            self._asking_reload = False
            if reload:
                self._reload(text, signature)
                self.notify("loaded the version on disk; ctrl+z brings your edits back", title="Plan file")
            else:
                self._mark_saved(text, signature)
                self.notify("kept your edits; saving (ctrl+s) replaces the version on disk", title="Plan file")

        self.app.push_screen(
            ConfirmScreen(
                f"{self.path.name} changed on disk",
                "Another program saved this plan while you have unsaved edits here. y loads its version "
                "(ctrl+z brings your edits back); n keeps your edits, and saving then replaces the file.",
                "Reload",
            ),
            answer,
        )

    def _mark_saved(self, text: str, signature: Signature) -> None:
        self._saved_text = text
        self._disk_signature = signature
        self._update_title()

    def _reload(self, text: str, signature: Signature) -> None:
        self._replace_source(text, checkpoint=True)
        self._mark_saved(text, signature)
        document = parse(text)
        if document is not None:
            self._use_document(document, text)
        self._schedule_check()


def _automation_hub(source: Any) -> Any:
    """Return the orchestrator's automation hub when one is attached, so a save is not reported as a change from elsewhere."""
    extensions = getattr(source, "extensions", None)
    hub = extensions.get("automation") if isinstance(extensions, dict) else None
    return hub if hub is not None and hasattr(hub, "suppress") else None
