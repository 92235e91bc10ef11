"""The fleet table: one row per agent, for when there are too many agents for panes."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widgets import DataTable

from aipass_tui.core.models import AgentStatus
from aipass_tui.ui import describe
from aipass_tui.ui.model import CockpitModel
from aipass_tui.ui.text import format_bytes, format_cost, format_count, format_duration, shorten

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
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._shown: dict[str, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def selected_agent(self) -> str | None:
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def sync(self, model: CockpitModel, now: float) -> None:
        """Bring the rows in line with the model: add, remove and update changed cells."""
        for name in [name for name in self._shown if name not in model.agents]:
            self.remove_row(name)
            del self._shown[name]
        for name, view in model.agents.items():
            values = self._values(view.state, view.last_line, now)
            old = self._shown.get(name)
            if old == values:
                continue
            cells = [self._cell(key, value, view.state.status) for (key, _), value in zip(COLUMNS, values)]
            if old is None:
                self.add_row(*cells, key=name)
            else:
                for (key, _), value, before, cell in zip(COLUMNS, values, old, cells):
                    if value != before:
                        self.update_cell(name, key, cell)
            self._shown[name] = values

    def _values(self, state, last_line: str, now: float) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
        tokens = state.input_tokens + state.output_tokens
        active = state.status in describe.ACTIVE_STATUSES
        return (
            state.name,
            state.status.value,
            state.kind,
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
