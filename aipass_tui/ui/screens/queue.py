"""The queue: every request with its status, and keys to cancel, reprioritise, retry or move it."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from aipass_tui.core import clock
from aipass_tui.core.models import Request, RequestStatus
from aipass_tui.ui import bindings, describe
from aipass_tui.ui.model import Changes
from aipass_tui.ui.text import format_duration, sanitize_line, shorten
from aipass_tui.ui.widgets.color_mode import mark_standard_colors
from aipass_tui.ui.widgets.fitting_footer import FittingFooter

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

COLUMNS = (
    ("id", "Id"),
    ("agent", "Agent"),
    ("subject", "Subject"),
    ("status", "Status"),
    ("priority", "Pri"),
    ("duplicates", "Dup"),
    ("sender", "Sender"),
    ("age", "Age"),
)
WAITING = (RequestStatus.QUEUED, RequestStatus.HELD)
FOOTER_SHORT = {"priority_up": "Pri +", "priority_down": "Pri −", "dispatch": "New"}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones."""
FOOTER_OPTIONAL = ("dispatch",)
"""Keys that leave the footer, in this order, when even the short descriptions do not fit (at 80
columns). They stay bound and listed in the command palette and on the F1 keys screen."""


class QueueScreen(Screen[None]):
    """Requests in queue order: running, then waiting by priority and age, then finished."""

    CSS_PATH = "queue.tcss"
    BINDINGS = bindings.bindings(bindings.QUEUE)

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, tuple[str, ...]] = {}

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def compose(self) -> ComposeResult:
        yield Label("", id="queue-title")
        yield DataTable(id="requests", cursor_type="row", zebra_stripes=True)
        yield Static("", id="request-detail", markup=False)
        yield FittingFooter(FOOTER_SHORT, FOOTER_OPTIONAL)

    def on_mount(self) -> None:
        mark_standard_colors(self)
        table = self.query_one(DataTable)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        self._sync()
        table.focus()

    def apply_changes(self, changes: Changes, tick: bool = False) -> None:
        if changes.queue or tick:
            self._sync()

    # Rows ----------------------------------------------------------------------------------

    def _values(self, request: Request, now: float) -> tuple[str, ...]:
        return (
            describe.short_id(request.id),
            request.agent,
            shorten(sanitize_line(request.subject), 36),
            shorten(describe.request_status(request), 32),
            str(request.priority),
            f"+{request.duplicates}" if request.duplicates else "",
            shorten(sanitize_line(request.sender), 16),
            format_duration(now - request.created_at),
        )

    def _sync(self) -> None:
        """Rebuild the rows when the order changed, else rewrite only changed cells."""
        table = self.query_one(DataTable)
        model = self.cockpit.model
        now = clock.now()
        requests = model.request_list()
        order = [request.id for request in requests]
        selected = self.selected_request()
        if order != list(self._shown):
            table.clear()
            self._shown = {}
            for request in requests:
                values = self._values(request, now)
                table.add_row(*self._cells(values), key=request.id)
                self._shown[request.id] = values
            if selected is not None and selected.id in self._shown:
                table.move_cursor(row=order.index(selected.id), animate=False)
        else:
            for request in requests:
                values = self._values(request, now)
                old = self._shown[request.id]
                for (key, _), value, before, cell in zip(COLUMNS, values, old, self._cells(values)):
                    if value != before:
                        table.update_cell(request.id, key, cell)
                self._shown[request.id] = values
        waiting = sum(1 for r in requests if r.status == RequestStatus.QUEUED)
        held = sum(1 for r in requests if r.status == RequestStatus.HELD)
        running = sum(1 for r in requests if r.status == RequestStatus.RUNNING)
        self.query_one("#queue-title", Label).update(
            f"Queue · {running} running · {waiting} queued · {held} held · {len(requests)} requests in all"
        )
        self._show_detail()

    @staticmethod
    def _cells(values: tuple[str, ...]) -> list[Text]:
        return [Text(value, justify="right" if key in ("priority", "age") else "left") for (key, _), value in zip(COLUMNS, values)]

    def selected_request(self) -> Request | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self.cockpit.model.requests.get(str(row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        request = self.selected_request()
        detail = self.query_one("#request-detail", Static)
        if request is None:
            detail.update("no requests yet: n sends one")
            return
        lines = [f"{request.id} · {request.agent} · {describe.request_status(request)} · from {request.sender}"]
        lines.append(f"subject: {sanitize_line(request.subject)}")
        if request.body:
            lines.append(f"body: {shorten(sanitize_line(request.body), 400)}")
        if request.duplicates:
            senders = ", ".join(sanitize_line(sender) for sender in request.duplicate_senders[-5:])
            lines.append(f"coalesced {request.duplicates} identical request{'s' if request.duplicates != 1 else ''} (from {senders})")
        if request.message:
            lines.append(f"message: {sanitize_line(request.message)}")
        detail.update("\n".join(lines))

    # Actions -------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_dispatch(self) -> None:
        request = self.selected_request()
        self.cockpit.open_dispatch(request.agent if request else None)

    def action_cancel(self) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        request = self.selected_request()
        if request is None:
            return
        if request.status in WAITING:
            self._cancel(request.id)
        elif request.status == RequestStatus.RUNNING:
            self.app.push_screen(
                ConfirmScreen(
                    f"Cancel running request {describe.short_id(request.id)}?",
                    f"{request.agent}'s run is stopped (its whole process tree) and the request is marked cancelled.",
                    "Cancel request",
                ),
                lambda confirmed: self._cancel(request.id) if confirmed else None,
            )
        else:
            self.notify(f"request {request.id} is {request.status.value}; only queued, held or running requests can be cancelled",
                        title="Cancel", severity="warning")

    def _cancel(self, request_id: str) -> None:
        result = self.cockpit.run_command("Cancel", self.cockpit.source.cancel, request_id)
        if result is not None:
            self._apply_local(result)

    def action_priority(self, delta: int) -> None:
        request = self.selected_request()
        if request is None:
            return
        result = self.cockpit.run_command("Priority", self.cockpit.source.set_priority, request.id, request.priority + delta)
        if result is not None:
            self._apply_local(result)

    def action_retry(self) -> None:
        request = self.selected_request()
        if request is not None:
            self.cockpit.retry_request(request.id)

    def action_move(self) -> None:
        from aipass_tui.ui.screens.confirm import AgentPickerScreen

        request = self.selected_request()
        if request is None:
            return
        if request.status not in WAITING:
            self.notify(f"request {request.id} is {request.status.value}; only queued or held requests can be moved",
                        title="Move", severity="warning")
            return
        agents = [name for name in self.cockpit.model.agents if name != request.agent]
        if not agents:
            self.notify("there is no other agent to move it to", title="Move", severity="warning")
            return

        def move(agent: str | None) -> None:
            if agent:
                result = self.cockpit.run_command("Move", self.cockpit.source.move, request.id, agent)
                if result is not None:
                    self._apply_local(result)
                    self.notify(f"{describe.short_id(request.id)} moved to {agent}", title="Move")

        self.app.push_screen(AgentPickerScreen(f"Move {describe.short_id(request.id)} to", agents), move)

    def _apply_local(self, request: Request) -> None:
        """Show a command's result at once; the orchestrator's notice confirms it shortly after."""
        self.cockpit.model.requests[request.id] = request
        self._sync()
