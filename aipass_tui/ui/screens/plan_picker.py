"""The plan list: open a plan in the editor, see its progress, or create one from a template."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from aipass_tui.core.plans import PlanError, create_plan, list_plans, list_templates
from aipass_tui.core.plans.files import PlanSummary
from aipass_tui.ui import bindings
from aipass_tui.ui.screens.plan_editor_file import automation_hub

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

log = logging.getLogger(__name__)

PICKER_MESSAGE = "Enter opens a plan · F9 progress · ctrl+n or Tab: new plan · Esc closes"
"""Hint line while the list has plans."""
EMPTY_MESSAGE = "Type a title, Enter creates the plan · Tab: template · Esc closes"
"""Hint line while there are no plans yet: the title field has the focus."""


@dataclass(frozen=True)
class PlanChoice:
    """A plan file the user picked, and whether to ``edit`` it or see its ``progress``."""

    path: Path
    action: Literal["edit", "progress"] = "edit"


class PlansListed(Message):
    def __init__(self, plans: list[PlanSummary], templates: list[str], error: str = "") -> None:
        super().__init__()
        self.plans = plans
        self.templates = templates
        self.error = error


class PlanCreated(Message):
    def __init__(self, path: Path | None, error: str = "") -> None:
        super().__init__()
        self.path = path
        self.error = error


def plan_line(summary: PlanSummary) -> str:
    """Format one plan for the list: id, status, progress, title and its problem count."""
    problems = f"  ({summary.problems} problem{'s' if summary.problems != 1 else ''})" if summary.problems else ""
    return f"{summary.plan_id:<12} {summary.status:<11} {summary.done}/{summary.total:<4} {summary.title}{problems}"


class PlanPickerScreen(ModalScreen[PlanChoice | None]):
    """Lists the plans of ``.aipass/plans/`` and creates new ones; dismisses with a PlanChoice, or None."""

    CSS_PATH = "plan_picker.tcss"
    BINDINGS = bindings.bindings(bindings.PLANS)
    BINDING_SCOPE = bindings.PLANS

    def __init__(self) -> None:
        super().__init__()
        self.plans: list[PlanSummary] = []

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Plans", id="picker-title")
            yield OptionList(id="plan-list", compact=True)
            yield Label("New plan from a template", id="new-title")
            with Horizontal(classes="picker-row"):
                yield Label("Template", classes="picker-label")
                yield Select([], id="template", allow_blank=True, compact=True, prompt="reading templates…")
            with Horizontal(classes="picker-row"):
                yield Label("Title", classes="picker-label")
                yield Input(id="new-title-input", placeholder="what the plan delivers, then Enter", compact=True)
            yield Static("", id="picker-error", markup=False)
            yield Label(PICKER_MESSAGE, id="picker-hint")

    def on_mount(self) -> None:
        # The title field has the focus until the plans are listed, so keys typed at once are kept.
        self.query_one("#new-title-input", Input).focus()
        self._list_worker()

    @work(thread=True, exclusive=True, group="plan-list", exit_on_error=False)
    def _list_worker(self) -> None:
        paths = self.cockpit.source.paths
        try:
            plans = list_plans(paths, self.cockpit.settings)
            templates = [template.name for template in list_templates(paths).values()]
        except OSError as exc:
            log.error("listing plans failed: %s", exc)
            self.post_message(PlansListed([], [], f"cannot list the plans in {paths.plans}: {exc}"))
            return
        self.post_message(PlansListed(plans, templates))

    def on_plans_listed(self, message: PlansListed) -> None:
        self.plans = message.plans
        listing = self.query_one("#plan-list", OptionList)
        listing.clear_options()
        if message.plans:
            listing.add_options([Option(Text(plan_line(plan), no_wrap=True, overflow="ellipsis"), id=str(plan.path)) for plan in message.plans])
            listing.highlighted = 0
            title = self.query_one("#new-title-input", Input)
            if self.focused in (None, title) and not title.value:
                listing.focus()
        else:
            # An empty list offers nothing to pick, so the title field keeps the focus.
            listing.add_option(Option("no plans yet: type a title below to create one", disabled=True))
            self.query_one("#picker-hint", Label).update(EMPTY_MESSAGE)
        select = self.query_one("#template", Select)
        select.set_options([(name, name) for name in message.templates])
        if message.templates:
            preferred = "FPLAN" if "FPLAN" in message.templates else message.templates[0]
            select.value = preferred
        if message.error:
            self.query_one("#picker-error", Static).update(message.error)

    def _highlighted(self) -> Path | None:
        listing = self.query_one("#plan-list", OptionList)
        if listing.highlighted is None or not self.plans:
            return None
        option = listing.get_option_at_index(listing.highlighted)
        return Path(option.id) if option.id else None

    @on(OptionList.OptionSelected, "#plan-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(PlanChoice(Path(event.option.id), "edit"))

    def action_progress(self) -> None:
        path = self._highlighted()
        if path is not None:
            self.dismiss(PlanChoice(path, "progress"))

    def action_new_plan(self) -> None:
        self.query_one("#template", Select).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#new-title-input")
    def _create(self, event: Input.Submitted) -> None:
        error = self.query_one("#picker-error", Static)
        template = self.query_one("#template", Select).value
        if not isinstance(template, str):
            error.update("choose a template first")
            self.query_one("#template", Select).focus()
            return
        error.update("")
        self._create_worker(template, event.value)

    @work(thread=True, exclusive=True, group="plan-create", exit_on_error=False)
    def _create_worker(self, template: str, title: str) -> None:
        hub = automation_hub(self.cockpit.source)
        try:
            created = create_plan(
                self.cockpit.source.paths, self.cockpit.settings, template, title,
                before_write=hub.suppress if hub is not None else None,
            )
        except PlanError as exc:
            self.post_message(PlanCreated(None, str(exc)))
            return
        log.info("created plan %s from template %s", created.path, template)
        self.post_message(PlanCreated(created.path))

    def on_plan_created(self, message: PlanCreated) -> None:
        if message.path is None:
            self.query_one("#picker-error", Static).update(message.error)
            self.query_one("#new-title-input", Input).focus()
            return
        self.dismiss(PlanChoice(message.path, "edit"))


def open_plan_picker(app: App[object]) -> None:
    """Show the plan list; open the chosen plan in the editor or on the progress screen."""
    from aipass_tui.ui.screens.plan_editor import PlanEditorScreen
    from aipass_tui.ui.screens.plan_run import PlanRunScreen

    def chosen(choice: PlanChoice | None) -> None:
        if choice is None:
            return
        if choice.action == "progress":
            app.push_screen(PlanRunScreen(choice.path))
        else:
            app.push_screen(PlanEditorScreen(choice.path))

    app.push_screen(PlanPickerScreen(), chosen)
