"""The plan editor: outline, form and TOML source of one plan file, kept in step as you type.

The TOML text in the source ``TextArea`` is the one truth. A form or outline edit changes the
tomlkit document and replaces only the changed part of the text, so comments and layout stay
and one undo history (the text area's) covers edits made anywhere. Text typed in the source is
parsed and validated on a worker thread ~300 ms after the last key. When it parses, the outline
and the form follow it. The file on disk is polled once a second: a change made elsewhere is
loaded at once when there are no unsaved edits, and otherwise offered for reload. The file's
side lives in ``plan_editor_file`` and the outline's actions in ``plan_editor_outline``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar, cast

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Label, OptionList, Static, TextArea, Tree
from textual.widgets.option_list import Option
from textual.widgets.text_area import TextAreaTheme

from aipass_tui.core.handlers import HandlerContext, HandlerError, run_handler
from aipass_tui.core.plans import Problem, plan_id_for, validate
from aipass_tui.core.plans.validation import tracked_files
from aipass_tui.ui import bindings
from aipass_tui.ui.plan_document import PlanDocument, StructureError, parse, text_edit
from aipass_tui.ui.screens.plan_editor_file import POLL_SECONDS, PlanFileMixin, Signature
from aipass_tui.ui.screens.plan_editor_outline import OutlineActionsMixin
from aipass_tui.ui.source import RecordedSource
from aipass_tui.ui.widgets.color_mode import uses_standard_colors
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from aipass_tui.ui.widgets.plan_outline import OutlineKey, PlanOutline
from aipass_tui.ui.widgets.task_form import TaskForm

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

log = logging.getLogger(__name__)

CHECK_DELAY = 0.3
"""Seconds after the last edit before the plan is parsed and validated again."""
WIDE = 120
"""From this many columns the form and the TOML source are shown side by side."""
OUTLINE_FIELDS = ("title", "name", "agent")
"""Fields that the outline shows (the plan's title, a phase's name, a task's agent)."""
FOOTER_SHORT = {
    "plan_next_problem": "Problem", "plan_add_task": "Task", "plan_add_phase": "Phase", "plan_duplicate": "Copy",
    "plan_move_up": "Up", "plan_move_down": "Down",
}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones."""
FOOTER_OPTIONAL = (
    "plan_progress", "plan_open", "plan_outline", "plan_toggle_view", "plan_next_problem",
    "plan_duplicate", "plan_move_up", "plan_move_down", "plan_rename",
)
"""Keys that leave the footer, in this order, when even the short descriptions do not fit. At 80
columns the footer keeps save, run, back, quit and the keys screen, and add task, add phase and
delete while the outline has the focus. Keys left out stay bound and listed in the command
palette and on the F1 keys screen."""
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


SOURCE_THEME = "monokai"
"""The TextArea theme of the TOML source (``TextArea.code_editor``'s default)."""
STANDARD_SOURCE_THEME = "aipass-monokai-16"


@functools.cache
def standard_colors_theme() -> TextAreaTheme:
    """Return the source's Monokai theme adjusted for terminals with 16 colours.

    Converted to 16 colours, Monokai's comment colour (#75715e) and its cursor line and selection
    backgrounds all become bright black (colour 8). Bright black is hard to read on black, and grey
    text, line numbers and keywords are hard to read on it. Here comments take the gutter's grey
    (colour 7), the cursor line has no background and a bold white line number, and a selection
    or matched bracket is drawn in reverse video. The syntax colours stay on top of a selection,
    and reverse video keeps each colour pair's contrast, which is readable on black.
    """
    monokai = TextAreaTheme.get_builtin_theme(SOURCE_THEME)
    assert monokai is not None, f"Textual has no built-in {SOURCE_THEME} TextArea theme"
    base = monokai.base_style or Style()
    gutter = monokai.gutter_style or Style()
    syntax_styles = dict(monokai.syntax_styles)
    syntax_styles["comment"] = Style(color=gutter.color, italic=True)
    return dataclasses.replace(
        monokai,
        name=STANDARD_SOURCE_THEME,
        cursor_line_style=Style(),
        cursor_line_gutter_style=Style(color=base.color, bgcolor=base.bgcolor, bold=True),
        selection_style=Style(reverse=True),
        bracket_matching_style=Style(reverse=True, bold=True),
        syntax_styles=syntax_styles,
    )


class PlanChecked(Message):
    """The result of parsing and validating ``text`` on a worker thread."""

    def __init__(self, text: str, document: PlanDocument | None, problems: list[Problem], tracked: list[str]) -> None:
        super().__init__()
        self.text = text
        self.document = document
        self.problems = problems
        self.tracked = tracked


class PlanStarted(Message):
    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__()
        self.summary = summary


class PlanRunFailed(Message):
    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class PlanEditorScreen(PlanFileMixin, OutlineActionsMixin, Screen[None]):
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
            yield TextArea.code_editor("", id="source", theme=SOURCE_THEME, tab_behavior="focus", soft_wrap=False)
        with Vertical(id="problems-panel"):
            yield Static("", id="problems-summary", markup=False)
            yield OptionList(id="problems", compact=True)
        yield FittingFooter(FOOTER_SHORT, FOOTER_OPTIONAL)

    def on_mount(self) -> None:
        if toml_highlighting():
            self.source.language = "toml"
        if uses_standard_colors(self.app):
            self.source.register_theme(standard_colors_theme())
            self.source.theme = STANDARD_SOURCE_THEME
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

