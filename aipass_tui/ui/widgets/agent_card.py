"""A compact agent card: status, subject and last output line in three rows."""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from aipass_tui.core import clock
from aipass_tui.core.models import AgentState, AgentStatus
from aipass_tui.ui import describe
from aipass_tui.ui.text import sanitize_line, shorten

BOLD = Style(bold=True)
DIM = Style(dim=True)


class AgentCard(Widget, can_focus=True):
    """One agent in the card grid, used when full panes do not fit.

    The card renders itself from the state and last line it was given, so a change costs one
    repaint of three rows and never a layout pass. The rows are drawn with the line API (one
    strip per row): with 100 cards repainted every second, Textual's general text layout cost
    about half of the UI thread's time.
    """

    DEFAULT_CSS = """
    AgentCard {
        height: 5;
        border: round $foreground 40%;
        border-title-style: bold;
        border-title-color: $foreground;
        padding: 0 1;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    AgentCard:focus { border: heavy $accent; }
    AgentCard.-status-running { border: round $success; }
    AgentCard.-status-retrying, AgentCard.-status-stalled { border: round $warning; }
    AgentCard.-status-failed { border: round $error; }
    AgentCard.-status-running:focus, AgentCard.-status-retrying:focus,
    AgentCard.-status-stalled:focus, AgentCard.-status-failed:focus { border: heavy $accent; }
    """

    def __init__(self, state: AgentState, last_line: str = "") -> None:
        super().__init__(id=f"card-{state.name}", classes="agent-card")
        self.agent = state.name
        self._agent_state = state
        self._last_line = last_line
        self._shown: tuple[str, str, str] | None = None
        self._strips: tuple[object, list[Strip]] | None = None
        self._base_style = Style()
        self.border_title = state.name
        self.add_class(describe.status_class(state.status))

    @property
    def status(self) -> AgentStatus:
        return self._agent_state.status

    def show(self, state: AgentState, last_line: str) -> None:
        """Store the agent's state and last output line; repaint only when the text changed."""
        if state.status != self._agent_state.status:
            self.remove_class(*describe.STATUS_CLASSES)
            self.add_class(describe.status_class(state.status))
        self._agent_state = state
        self._last_line = last_line
        lines = self._lines()
        if lines != self._shown:
            self._shown = lines
            self.refresh()

    def _lines(self) -> tuple[str, str, str]:
        state = self._agent_state
        return (
            describe.subject(state),
            sanitize_line(self._last_line) or " ",
            self._stats_line(state),
        )

    @staticmethod
    def _stats_line(state: AgentState) -> str:
        """Return the compact stats, followed by ``· node ADDRESS`` while the run is on a cluster node."""
        stats = describe.stats(state, clock.now(), compact=True)
        return f"{stats} · node {state.node}" if state.node else stats

    def render_lines(self, crop: Region) -> list[Strip]:
        # Working out the style walks the ancestors, so it is done once per repaint, not per row.
        self._base_style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._base_style
        subject, last_line, stats = self._shown or self._lines()
        status = self._agent_state.status.value.upper()
        key = (width, base, status, subject, last_line, stats)
        if self._strips is None or self._strips[0] != key:
            rows = [
                [(status, base + BOLD), (" " + subject, base)],
                [(last_line, base + DIM)],
                [(stats, base)],
            ]
            self._strips = (key, [_row_strip(parts, width, base) for parts in rows])
        strips = self._strips[1]
        return strips[y] if 0 <= y < len(strips) else Strip.blank(width, base)


def _row_strip(parts: list[tuple[str, Style]], width: int, base: Style) -> Strip:
    """Return one row of styled parts cut to ``width`` cells (ending with ``…`` when cut) and padded."""
    segments: list[Segment] = []
    room = width
    for text, style in parts:
        if room <= 0:
            break
        cut = shorten(text, room)
        if cut != text:
            segments.append(Segment(cut, style))
            break
        segments.append(Segment(text, style))
        room -= cell_len(text)
    return Strip(segments).extend_cell_length(width, base)
