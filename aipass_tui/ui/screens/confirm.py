"""Small dialogs: a yes/no confirmation, the quit choice and an agent picker."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static
from textual.widgets.option_list import Option

from aipass_tui.ui import bindings


class ConfirmScreen(ModalScreen[bool]):
    """Asks before something that cannot be undone; dismisses with True only on confirm."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = bindings.bindings(bindings.CONFIRM)

    def __init__(self, title: str, message: str, confirm_label: str) -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.message, classes="dialog-message", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.confirm_label} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_choose(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class QuitScreen(ModalScreen[str | None]):
    """Quit leaving the agents running (the default) or stopping them; dismisses with the choice."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = bindings.bindings(bindings.QUIT)

    def __init__(self, running: int) -> None:
        super().__init__()
        self.running = running

    def compose(self) -> ComposeResult:
        runs = f"{self.running} run{'s' if self.running != 1 else ''} running"
        with Vertical(classes="dialog"):
            yield Label("Quit aipass-tui?", classes="dialog-title")
            yield Static(
                f"{runs}. Agents left running keep working and the next aipass-tui re-attaches to them.",
                classes="dialog-message",
                markup=False,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Leave running (l)", variant="primary", id="leave")
                yield Button("Stop all (s)", variant="error", id="stop")
                yield Button("Stay (Esc)", id="stay")

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "stay" else event.button.id)


class AgentPickerScreen(ModalScreen[str | None]):
    """Pick one agent from a list; dismisses with its name, or None on Escape."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = bindings.bindings(bindings.PICKER)

    def __init__(self, title: str, agents: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.agents = agents

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title", markup=False)
            yield OptionList(*[Option(name, id=name) for name in self.agents], id="agents")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
