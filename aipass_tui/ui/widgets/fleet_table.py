"""The fleet table: one row per agent, for when there are too many agents for panes."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from aipass_tui.core import clock
from aipass_tui.core.models import AgentStatus
from aipass_tui.ui import describe
from aipass_tui.ui.model import CockpitModel
from aipass_tui.ui.text import format_bytes, format_cost, format_count, format_duration, shorten
from aipass_tui.ui.widgets.color_mode import mark_standard_colors

COLUMNS = (
    ("agent", "Agent"),
    ("status", "Status"),
    ("kind", "Kind"),
    ("subject", "Subject"),
    ("elapsed", "Time"),
    ("tokens", "Tokens"),
    ("cost", "Cost"),
    ("cpu", "CPU"),
    ("mem", "Mem"),
    ("queued", "Queue"),
    ("last", "Last line"),
)
NODE_COLUMN = ("node", "Node")
"""Column added after the kind column once any agent runs on a cluster node, so local fleets keep
their layout. It stays for the rest of the session once shown."""
OFF_SCREEN_ROWS = 10
"""Rows just above and below the visible ones that are kept current too, for smooth scrolling."""
STATUS_COLOURS = {
    AgentStatus.RUNNING: "success",
    AgentStatus.RETRYING: "warning",
    AgentStatus.STALLED: "warning",
    AgentStatus.FAILED: "error",
    AgentStatus.QUEUED: "primary",
}


class FleetTable(DataTable[Text]):
    """Rows keyed by agent name; ``sync`` rewrites only the cells whose text changed."""

    DEFAULT_CSS = """
    FleetTable { height: 1fr; }
    FleetTable.-standard-colors > .datatable--cursor { color: $background; }
    """
    """With 16 colours the cursor row becomes bright white on cyan, so its text takes the background colour."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._shown: dict[str, tuple[str, ...]] = {}
        self._columns: tuple[tuple[str, str], ...] = COLUMNS
        self._reselect: str | None = None
        self._model: CockpitModel | None = None
        self._catching_up = False

    def on_mount(self) -> None:
        mark_standard_colors(self)
        for key, label in self._columns:
            self.add_column(label, key=key)

    def _show_node_column(self) -> None:
        """Rebuild the table with the node column after the kind column.

        DataTable only appends columns, so the table is cleared and its rows are added again
        by the next pass of ``sync``, which moves the cursor back to the agent it was on.
        """
        selected = self.selected_agent()
        kind = [key for key, _ in COLUMNS].index("kind") + 1
        self._columns = COLUMNS[:kind] + (NODE_COLUMN,) + COLUMNS[kind:]
        self.clear(columns=True)
        self._shown = {}
        for key, label in self._columns:
            self.add_column(label, key=key)
        self._reselect = selected

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._model is not None and round(old_value) != round(new_value) and not self._catching_up:
            # Rows that scroll into view are brought up to date at once, not at the next tick.
            self._catching_up = True
            self.call_after_refresh(self._catch_up)

    def _catch_up(self) -> None:
        self._catching_up = False
        if self._model is not None:
            self.sync(self._model, clock.now())

    def selected_agent(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def sync(self, model: CockpitModel, now: float) -> None:
        """Bring the rows in line with the model: add, remove and update changed cells."""
        self._model = model
        if self._columns is COLUMNS and any(view.state.node for view in model.agents.values()):
            self._show_node_column()
        for name in [name for name in self._shown if name not in model.agents]:
            self.remove_row(name)
            del self._shown[name]
        # Rows out of view keep their text until they scroll in: with 1,000 agents, rewriting
        # every elapsed time once a second cost most of the cockpit's CPU while the fleet idled.
        first = int(self.scroll_offset.y) - OFF_SCREEN_ROWS
        last = int(self.scroll_offset.y) + self.size.height + OFF_SCREEN_ROWS
        for name, view in model.agents.items():
            old = self._shown.get(name)
            if old is not None and not first <= self.get_row_index(name) <= last:
                continue
            values = self._values(view.state, view.last_line, now)
            if old == values:
                continue
            cells = [self._cell(key, value, view.state.status) for (key, _), value in zip(self._columns, values)]
            if old is None:
                self.add_row(*cells, key=name)
            else:
                for (key, _), value, before, cell in zip(self._columns, values, old, cells):
                    if value != before:
                        self.update_cell(name, key, cell)
            self._shown[name] = values
        if self._reselect is not None and self._reselect in self._shown:
            self.move_cursor(row=self.get_row_index(self._reselect))
        self._reselect = None

    def _values(self, state, last_line: str, now: float) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
        tokens = state.input_tokens + state.output_tokens
        active = state.status in describe.ACTIVE_STATUSES
        node = (state.node or "",) if self._columns is not COLUMNS else ()
        return (
            state.name,
            state.status.value,
            state.kind,
            *node,
            shorten(describe.subject(state), 32),
            format_duration(describe.elapsed(state, now)) if describe.elapsed(state, now) is not None else "",
            format_count(tokens) if tokens else "",
            format_cost(state.cost_usd) if state.cost_usd else "",
            f"{state.cpu_percent:.0f}%" if active and state.cpu_percent is not None else "",
            format_bytes(state.rss_bytes) if active and state.rss_bytes is not None else "",
            str(state.queued) if state.queued else "",
            shorten(last_line, 40),
        )

    def _cell(self, key: str, value: str, status: AgentStatus) -> Text:
        if key == "status":
            colour = STATUS_COLOURS.get(status)
            variables = self.app.theme_variables
            if colour and colour in variables:
                return Text(value, style=Style(color=variables[colour], bold=True), justify="left")
            return Text(value, style="bold", justify="left")
        if key in ("elapsed", "tokens", "cost", "cpu", "mem", "queued"):
            return Text(value, justify="right")
        return Text(value)
