"""The queue: every request with its status, and keys to cancel, reprioritise, retry or move it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from rich.cells import cell_len
from rich.text import Text
from textual import events
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
CELL_PADDING = 2
"""Cells around each column's text (DataTable's ``cell_padding`` of 1 on both sides)."""
FIXED_CELLS = {"id": 6, "priority": 3, "duplicates": 3, "age": 6}
"""Text widths reserved for the short columns: a ``clock.new_id`` suffix, the ``Pri`` and ``Dup``
headers, and ``format_duration`` up to 99 days (``59m59s``, ``23h59m``, ``99d23h``)."""
FULL_CELLS = {"subject": 36, "status": 32, "sender": 16}
"""Max text widths of the long columns when the table is wide enough for all of them."""
AGENT_MAX_CELLS = 16
NARROW_MIN_CELLS = 22
"""Text width of subject and status together below which the duplicates column leaves the table."""
WAITING = (RequestStatus.QUEUED, RequestStatus.HELD)
FOOTER_SHORT = {"priority_up": "Pri +", "priority_down": "Pri −", "dispatch": "New"}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones."""
FOOTER_OPTIONAL = ("dispatch",)
"""Keys that leave the footer, in this order, when even the short descriptions do not fit (at 80
columns). They stay bound and listed in the command palette and on the F1 keys screen."""


@dataclass(frozen=True)
class QueueLayout:
    """The queue table's columns for one width, with the max text width of each shortened column."""

    columns: tuple[tuple[str, str], ...]
    agent: int
    subject: int
    status: int
    sender: int

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.columns)


def queue_layout(width: int, agent_cells: int) -> QueueLayout:
    """Choose the columns and text widths that fit a table ``width`` cells wide.

    ``agent_cells`` is the width of the longest agent name. A table wide enough for every column
    at full width keeps them all. Otherwise the sender column leaves, then the duplicates column
    when subject and status would get less than ``NARROW_MIN_CELLS`` together, and subject and
    status share the rest, about 11 to 9. The detail box below the table shows the sender and
    the coalesced duplicates of the selected request.

    NOTE: subject and status keep at least 8 cells each, so below about 51 cells (with agent
    names of 8 cells) the table is wider than ``width``. An id longer than a ``clock.new_id``
    suffix or an age of 100 days or more widens its column by a cell or two.
    """
    agent = max(len("Agent"), min(agent_cells, AGENT_MAX_CELLS))
    fixed = agent + CELL_PADDING + sum(FIXED_CELLS[key] + CELL_PADDING for key in ("id", "priority", "age"))
    sender = FULL_CELLS["sender"] + CELL_PADDING
    duplicates = FIXED_CELLS["duplicates"] + CELL_PADDING
    full_room = FULL_CELLS["subject"] + FULL_CELLS["status"] + 2 * CELL_PADDING
    if width >= fixed + sender + duplicates + full_room:
        return QueueLayout(COLUMNS, agent, FULL_CELLS["subject"], FULL_CELLS["status"], FULL_CELLS["sender"])

    dropped = {"sender"}
    room = width - fixed - duplicates - 2 * CELL_PADDING
    if room < NARROW_MIN_CELLS:
        dropped.add("duplicates")
        room += duplicates
    subject = min(FULL_CELLS["subject"], max(8, room * 11 // 20))
    status = min(FULL_CELLS["status"], max(8, room - subject))
    columns = tuple(column for column in COLUMNS if column[0] not in dropped)
    return QueueLayout(columns, agent, subject, status, FULL_CELLS["sender"])


class QueueScreen(Screen[None]):
    """Requests in queue order: running, then waiting by priority and age, then finished."""

    CSS_PATH = "queue.tcss"
    BINDINGS = bindings.bindings(bindings.QUEUE)

    def __init__(self) -> None:
        super().__init__()
        self._shown: dict[str, tuple[str, ...]] = {}
        self.column_layout: QueueLayout | None = None
        """The table's current columns, chosen from the screen's width."""

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
        self._fit_columns(self.app.size.width)
        self.query_one(DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, width: int) -> None:
        """Set the table's columns for a screen ``width`` cells wide, keeping the selected request.

        The table spans the screen. Its vertical scrollbar's cells are always left free, so the
        columns still fit once the rows outgrow the table's height.
        """
        table = self.query_one(DataTable)
        agent_cells = max((cell_len(name) for name in self.cockpit.model.agents), default=0)
        layout = queue_layout(width - table.styles.scrollbar_size_vertical, agent_cells)
        if layout == self.column_layout:
            return
        selected = self.selected_request() if self.column_layout is not None else None
        self.column_layout = layout
        table.clear(columns=True)
        for key, label in layout.columns:
            table.add_column(label, key=key)
        self._shown = {}
        self._sync(keep=selected.id if selected is not None else None)

    def apply_changes(self, changes: Changes, tick: bool = False) -> None:
        if changes.queue or tick:
            self._sync()

    # Rows ----------------------------------------------------------------------------------

    def _values(self, request: Request, now: float) -> tuple[str, ...]:
        """Return the cells of ``request`` for the columns of the current layout."""
        layout = self.column_layout
        assert layout is not None, "the queue's columns are set when it mounts"
        values = {
            "id": describe.short_id(request.id),
            "agent": shorten(request.agent, layout.agent),
            "subject": shorten(sanitize_line(request.subject), layout.subject),
            "status": shorten(describe.request_status(request), layout.status),
            "priority": str(request.priority),
            "duplicates": f"+{request.duplicates}" if request.duplicates else "",
            "sender": shorten(sanitize_line(request.sender), layout.sender),
            "age": format_duration(now - request.created_at),
        }
        return tuple(values[key] for key in layout.keys)

    def _sync(self, keep: str | None = None) -> None:
        """Rebuild the rows when the order changed, else rewrite only changed cells.

        The cursor stays on the selected request, or on request ``keep`` when it is given.
        """
        if self.column_layout is None:
            return
        table = self.query_one(DataTable)
        model = self.cockpit.model
        now = clock.now()
        requests = model.request_list()
        order = [request.id for request in requests]
        selected = model.requests.get(keep) if keep is not None else self.selected_request()
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
                for key, value, before, cell in zip(self.column_layout.keys, values, old, self._cells(values)):
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

    def _cells(self, values: tuple[str, ...]) -> list[Text]:
        assert self.column_layout is not None
        return [Text(value, justify="right" if key in ("priority", "age") else "left") for key, value in zip(self.column_layout.keys, values)]

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
