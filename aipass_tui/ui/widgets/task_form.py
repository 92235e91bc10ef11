"""The plan editor's form: the fields of the task, phase or plan selected in the outline.

The form never writes the plan itself. Every change a user makes becomes one ``Edited``
message naming the entry, the field and the new value; the editor writes it into the TOML. The
``show_*`` methods fill the fields without posting messages, so showing an entry is not an edit.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import ContentSwitcher, Input, Label, OptionList, Select, SelectionList, Static, TextArea
from textual.widgets.option_list import Option

from aipass_tui.ui import bindings
from aipass_tui.ui.widgets.color_mode import mark_standard_colors
from aipass_tui.ui.widgets.plan_outline import OutlineKey

REVIEW_CHOICES = [("manual: a person merges it", "manual"), ("auto: merged when its checks pass", "auto")]
FORM_MESSAGES = (Input.Changed, TextArea.Changed, Select.Changed, SelectionList.SelectedChanged)


class GlobOptions(OptionList):
    """The globs of a task; Delete removes the highlighted one, Enter edits it."""

    BINDINGS = bindings.bindings(bindings.PLAN_FORM)

    class RemoveRequested(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def action_remove_highlighted(self) -> None:
        if self.highlighted is not None:
            self.post_message(self.RemoveRequested(self.highlighted))


class GlobList(Vertical):
    """A list editor for file globs: the input below the list adds a glob or replaces the one being edited."""

    class Changed(Message):
        def __init__(self, globs: list[str]) -> None:
            super().__init__()
            self.globs = globs

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.globs: list[str] = []
        self.editing: int | None = None

    def compose(self) -> ComposeResult:
        yield GlobOptions(id="glob-items", compact=True)
        yield Input(placeholder="add a glob, such as src/login/** (Enter)", id="glob-input", compact=True)

    def on_mount(self) -> None:
        self._fill()

    def set_globs(self, globs: list[str]) -> None:
        """Show ``globs`` without posting Changed; an edit in progress is dropped if the list changed."""
        if globs == self.globs:
            return
        self.globs = list(globs)
        self.editing = None
        self._fill()

    def _fill(self) -> None:
        options = self.query_one(GlobOptions)
        highlighted = options.highlighted
        options.clear_options()
        options.add_options([Option(Text(glob, no_wrap=True)) for glob in self.globs])
        options.set_class(not self.globs, "-empty")
        if self.globs:
            options.highlighted = min(highlighted or 0, len(self.globs) - 1)

    @on(Input.Submitted, "#glob-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        glob = event.value.strip()
        field = self.query_one("#glob-input", Input)
        if not glob:
            return
        if self.editing is not None and self.editing < len(self.globs):
            self.globs[self.editing] = glob
        elif glob not in self.globs:
            self.globs.append(glob)
        self.editing = None
        field.value = ""
        field.placeholder = "add a glob, such as src/login/** (Enter)"
        self._fill()
        self.post_message(self.Changed(list(self.globs)))

    @on(Input.Changed, "#glob-input")
    def _typing(self, event: Input.Changed) -> None:
        event.stop()

    @on(OptionList.OptionSelected, "#glob-items")
    def _edit(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.editing = event.option_index
        field = self.query_one("#glob-input", Input)
        field.value = self.globs[event.option_index]
        field.placeholder = "edit the glob (Enter replaces it)"
        field.focus()

    @on(GlobOptions.RemoveRequested)
    def _remove(self, event: GlobOptions.RemoveRequested) -> None:
        event.stop()
        if 0 <= event.index < len(self.globs):
            del self.globs[event.index]
            self.editing = None
            self._fill()
            self.post_message(self.Changed(list(self.globs)))


class TaskForm(Vertical):
    """Fields of the selected entry: title and goal of the plan or a phase, or a task's fields."""

    DEFAULT_CSS = """
    TaskForm {
        height: 1fr;
    }
    TaskForm > ContentSwitcher, TaskForm VerticalScroll {
        height: 1fr;
    }
    TaskForm VerticalScroll {
        padding: 0 1;
    }
    TaskForm #form-message {
        padding: 1 2;
        color: $text-muted;
    }
    TaskForm #task-heading, TaskForm #header-heading {
        text-style: bold;
        width: 1fr;
    }
    TaskForm .form-row {
        height: 1;
        margin-top: 1;
    }
    TaskForm .form-label {
        width: 8;
        color: $text-muted;
    }
    TaskForm .form-caption {
        margin-top: 1;
        color: $text-muted;
    }
    TaskForm Input, TaskForm Select {
        width: 1fr;
    }
    TaskForm Input:focus, TaskForm TextArea:focus {
        background: $boost;
    }
    TaskForm #prompt {
        height: 6;
    }
    TaskForm #header-goal {
        height: 4;
    }
    TaskForm #depends {
        height: auto;
        max-height: 6;
    }
    TaskForm #depends.-empty {
        display: none;
    }
    GlobList {
        height: auto;
    }
    GlobList #glob-items {
        height: auto;
        max-height: 5;
    }
    GlobList #glob-items.-empty {
        display: none;
    }
    TaskForm.-standard-colors Input > .input--placeholder,
    TaskForm.-standard-colors SelectCurrent .arrow {
        color: $foreground 60%;
    }
    TaskForm.-standard-colors SelectionList > .selection-list--button,
    TaskForm.-standard-colors SelectionList > .selection-list--button-highlighted {
        color: $foreground 60%;
        background: $background;
    }
    TaskForm.-standard-colors SelectionList > .selection-list--button-selected,
    TaskForm.-standard-colors SelectionList > .selection-list--button-selected-highlighted {
        color: $foreground;
        background: $background;
        text-style: bold;
    }
    """
    """With 16 colours Textual's faint greys (placeholders, the Select arrow, an unchecked box)
    become bright black, which is hard to read on black. There they take a grey that becomes
    colour 7, and a checked box is drawn bold in the full foreground colour so it stays distinct."""

    class Edited(Message):
        """The user changed ``field`` of the entry ``key`` to ``value``."""

        def __init__(self, key: OutlineKey, field: str, value: Any) -> None:
            super().__init__()
            self.key = key
            self.field = field
            self.value = value

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.key: OutlineKey | None = None
        self._candidates: list[str] = []
        self._agent_options: list[tuple[str, str]] = []

    def on_mount(self) -> None:
        mark_standard_colors(self)

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial="form-message", id="form-switcher"):
            yield Static("", id="form-message", markup=False)
            with VerticalScroll(id="header-form"):
                yield Label("", id="header-heading", markup=False)
                with Horizontal(classes="form-row"):
                    yield Label("Name", id="header-name-label", classes="form-label")
                    yield Input(id="header-name", compact=True)
                yield Label("Goal", classes="form-caption")
                yield TextArea(id="header-goal", soft_wrap=True, tab_behavior="focus", compact=True)
            with VerticalScroll(id="task-form"):
                yield Label("", id="task-heading", markup=False)
                with Horizontal(classes="form-row"):
                    yield Label("Agent", classes="form-label")
                    yield Select([], id="agent", allow_blank=True, compact=True, prompt="choose an agent")
                with Horizontal(classes="form-row"):
                    yield Label("Title", classes="form-label")
                    yield Input(id="task-title", placeholder="one line: the subject of the request", compact=True)
                yield Label("Prompt", classes="form-caption")
                yield TextArea(id="prompt", soft_wrap=True, tab_behavior="focus", compact=True)
                yield Label("Files (globs)", classes="form-caption")
                yield GlobList(id="files")
                yield Label("Depends on", classes="form-caption")
                yield SelectionList[str](id="depends", compact=True)
                with Horizontal(classes="form-row"):
                    yield Label("Review", classes="form-label")
                    yield Select(REVIEW_CHOICES, id="review", allow_blank=False, value="manual", compact=True)

    # Showing ---------------------------------------------------------------------------------

    def show_message(self, message: str) -> None:
        self.key = None
        self.query_one("#form-message", Static).update(message)
        self.query_one(ContentSwitcher).current = "form-message"

    def show_plan(self, fields: dict[str, str]) -> None:
        self._show_header(OutlineKey("plan"), "Plan", "Title", fields["title"], fields["goal"])

    def show_phase(self, key: OutlineKey, fields: dict[str, str]) -> None:
        self._show_header(key, f"Phase {key.phase + 1}", "Name", fields["name"], fields["goal"])

    def _show_header(self, key: OutlineKey, heading: str, name_label: str, name: str, goal: str) -> None:
        self.key = key
        with self.prevent(*FORM_MESSAGES):
            self.query_one("#header-heading", Label).update(heading)
            self.query_one("#header-name-label", Label).update(name_label)
            _set_input(self.query_one("#header-name", Input), name)
            _set_text(self.query_one("#header-goal", TextArea), goal)
        self.query_one(ContentSwitcher).current = "header-form"

    def show_task(self, key: OutlineKey, fields: dict[str, Any], phase_name: str, agents: list[str], candidates: list[str]) -> None:
        """Show a task. ``candidates`` are the ids it may depend on (tasks of its phase and earlier ones)."""
        self.key = key
        with self.prevent(*FORM_MESSAGES, GlobList.Changed):
            heading = f"Task {fields['id'] or '(no id)'} · phase {key.phase + 1} {phase_name}".rstrip()
            self.query_one("#task-heading", Label).update(heading)
            self._show_agent(fields["agent"], agents)
            _set_input(self.query_one("#task-title", Input), fields["title"])
            _set_text(self.query_one("#prompt", TextArea), fields["prompt"])
            self.query_one(GlobList).set_globs(fields["files"])
            self._show_dependencies(candidates, fields["depends_on"])
            review = self.query_one("#review", Select)
            value = fields["review"] if fields["review"] in ("manual", "auto") else "manual"
            if review.value != value:
                review.value = value
        self.query_one(ContentSwitcher).current = "task-form"

    def _show_agent(self, agent: str, agents: list[str]) -> None:
        select = self.query_one("#agent", Select)
        options = [(name, name) for name in agents]
        if agent and agent not in agents:
            options.append((f"{agent} (not configured)", agent))
        if options != self._agent_options:
            select.set_options(options)
            self._agent_options = options
        value = agent if agent else Select.BLANK
        if select.value != value:
            select.value = value

    def _show_dependencies(self, candidates: list[str], selected: list[str]) -> None:
        depends = self.query_one("#depends", SelectionList)
        choices = candidates + [dep for dep in selected if dep not in candidates]
        if choices != self._candidates:
            depends.clear_options()
            depends.add_options([(_dependency_label(task_id, candidates), task_id, task_id in selected) for task_id in choices])
            self._candidates = choices
        else:
            for task_id in choices:
                if task_id in selected and task_id not in depends.selected:
                    depends.select(task_id)
                elif task_id not in selected and task_id in depends.selected:
                    depends.deselect(task_id)
        depends.set_class(not choices, "-empty")

    def focus_first(self) -> None:
        """Focus the first field of the entry shown."""
        current = self.query_one(ContentSwitcher).current
        if current == "task-form":
            self.query_one("#task-title", Input).focus()
        elif current == "header-form":
            self.query_one("#header-name", Input).focus()

    # Edits -----------------------------------------------------------------------------------

    def _edited(self, field: str, value: Any) -> None:
        if self.key is not None:
            self.post_message(self.Edited(self.key, field, value))

    @on(Input.Changed, "#header-name")
    def _header_name(self, event: Input.Changed) -> None:
        event.stop()
        if self.key is not None:
            self._edited("title" if self.key.kind == "plan" else "name", event.value)

    @on(TextArea.Changed, "#header-goal")
    def _header_goal(self, event: TextArea.Changed) -> None:
        event.stop()
        self._edited("goal", event.text_area.text)

    @on(Select.Changed, "#agent")
    def _agent(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self._edited("agent", event.value)

    @on(Input.Changed, "#task-title")
    def _title(self, event: Input.Changed) -> None:
        event.stop()
        self._edited("title", event.value)

    @on(TextArea.Changed, "#prompt")
    def _prompt(self, event: TextArea.Changed) -> None:
        event.stop()
        self._edited("prompt", event.text_area.text)

    @on(GlobList.Changed)
    def _files(self, event: GlobList.Changed) -> None:
        event.stop()
        self._edited("files", event.globs)

    @on(SelectionList.SelectedChanged, "#depends")
    def _depends(self, event: SelectionList.SelectedChanged) -> None:
        event.stop()
        chosen = set(event.selection_list.selected)
        self._edited("depends_on", [task_id for task_id in self._candidates if task_id in chosen])

    @on(Select.Changed, "#review")
    def _review(self, event: Select.Changed) -> None:
        event.stop()
        if isinstance(event.value, str):
            self._edited("review", event.value)


def _dependency_label(task_id: str, candidates: list[str]) -> str:
    return task_id if task_id in candidates else f"{task_id} (not in this or an earlier phase)"


def _set_input(field: Input, value: str) -> None:
    if field.value != value:
        field.value = value


def _set_text(area: TextArea, value: str) -> None:
    # Loading text resets the area's cursor and history, so it happens only on a real change.
    if area.text != value:
        area.load_text(value)
