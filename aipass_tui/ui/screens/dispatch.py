"""The new-request dialog: agent, subject, multi-line body and priority."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from aipass_tui.core.models import Request
from aipass_tui.core.store import StateError
from aipass_tui.ui import bindings
from aipass_tui.ui.source import ReadOnlySource

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp


NO_AGENTS = (
    "no agents are configured, so there is no one to send a request to: add one under [agents] "
    "in .aipass/config.toml, or run aipass-tui init, then start aipass-tui again"
)


class DispatchScreen(ModalScreen[Request | None]):
    """Sends the request through ``orchestrator.dispatch``, the path ``aipass-tui dispatch`` takes.

    Dismisses with the queued (or coalesced) request, or None when cancelled. A refused
    request keeps the dialog open with the reason shown and nothing typed lost.
    """

    CSS_PATH = "dispatch.tcss"
    AUTO_FOCUS = "#subject"
    BINDINGS = bindings.bindings(bindings.DISPATCH)

    def __init__(self, agents: list[str], agent: str | None = None) -> None:
        super().__init__()
        self.agents = agents
        self.initial_agent: str | None = None
        if agent in agents:
            self.initial_agent = agent
        elif agents:
            self.initial_agent = agents[0]

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("New request", id="dialog-title")
            yield Label("Agent")
            yield Select(
                [(name, name) for name in self.agents],
                value=self.initial_agent if self.initial_agent else Select.NULL,
                allow_blank=not self.agents,
                prompt="Select" if self.agents else "no agents configured",
                id="agent",
            )
            yield Label("Subject")
            yield Input(placeholder="what the agent should do, in one line", id="subject")
            yield Label("Body (optional, several lines)")
            yield TextArea(id="body", soft_wrap=True, show_line_numbers=False)
            with Horizontal(id="dialog-foot"):
                yield Label("Priority")
                yield Input("0", type="integer", id="priority", tooltip="higher runs first; default 0")
                yield Button("Send", variant="primary", id="send")
                yield Button("Cancel", id="cancel")
            yield Static("" if self.agents else NO_AGENTS, id="error", markup=False)
            yield Label("ctrl+s sends · Tab moves between fields · Esc cancels", id="dialog-hint")

    def action_back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#send")
    @on(Input.Submitted, "#subject")
    def _send(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        error = self.query_one("#error", Static)
        agent = self.query_one("#agent", Select).value
        subject = self.query_one("#subject", Input).value.strip()
        body = self.query_one("#body", TextArea).text
        priority_text = self.query_one("#priority", Input).value.strip() or "0"
        if not self.agents:
            error.update(NO_AGENTS)
            return
        if not isinstance(agent, str):
            error.update("choose an agent")
            self.query_one("#agent", Select).focus()
            return
        if not subject:
            error.update("the subject is empty: say what the agent should do")
            self.query_one("#subject", Input).focus()
            return
        try:
            priority = int(priority_text)
        except ValueError:
            error.update(f"invalid priority {priority_text!r}: use a whole number such as 0, 5 or -1")
            self.query_one("#priority", Input).focus()
            return
        try:
            request = self.cockpit.source.dispatch(agent, subject, body, priority=priority, sender="user")
        except (ValueError, ReadOnlySource, StateError) as exc:
            error.update(f"not sent: {exc}")
            return
        self.dismiss(request)
