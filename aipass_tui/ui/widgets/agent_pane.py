"""A full agent pane: identity, status, subject, live numbers and the agent's output."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Size
from textual.reactive import Reactive
from textual.widgets import Label, Log

from aipass_tui.core import clock
from aipass_tui.core.models import AgentState
from aipass_tui.ui import describe
from aipass_tui.ui.widgets.status_badge import StatusBadge


def meta_line(state: AgentState) -> str:
    """Return ``kind · model``, followed by ``· node ADDRESS`` while the run is on a cluster node."""
    identity = describe.identity(state)
    return f"{identity} · node {state.node}" if state.node else identity


class PaneLog(Log):
    """A Log whose growth repaints only itself.

    ``Widget.virtual_size`` is a reactive with ``layout=True``, so every write that adds lines
    to a plain Log lays out the whole screen again. Measured on a 2-core machine (Textual 8.2.8)
    with nine panes of 50 lines/s: 146 screen layouts in 10 s and timer lag up to 430 ms (p95).
    The pane's size never depends on its content, so here the reactive only repaints. The
    scrollbar, which a layout would update, is hidden; the mouse wheel still scrolls.
    """

    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.following = True
        """Whether new output scrolls into view; the mouse wheel turns it off and on."""

    def add_lines(self, lines: list[str]) -> None:
        """Append ``lines`` and, while following, keep the last one in view.

        Log scrolls only when it was at the end before the write, judged from its laid-out size,
        so a pane written before its first layout looked scrolled up from then on. Here the
        scroll waits for the next refresh, when the size is known.
        """
        self.write_lines(lines, scroll_end=False)
        self.keep_end()

    def keep_end(self) -> None:
        if self.following:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)

    def on_mouse_scroll_up(self) -> None:
        self.following = False

    def on_mouse_scroll_down(self) -> None:
        self.call_after_refresh(self._follow_at_end)

    def _follow_at_end(self) -> None:
        self.following = self.is_vertical_scroll_end

    def on_resize(self) -> None:
        self.keep_end()


class AgentPane(Vertical, can_focus=True):
    """One agent in the pane grid.

    The pane never reads the orchestrator: the screen calls ``show_state`` when the agent's
    state changed and ``write_output`` with lines batched by the model, a few times a second.
    """

    DEFAULT_CSS = """
    AgentPane {
        height: 1fr;
        border: round $foreground 40%;
        border-title-color: $foreground;
        border-title-style: bold;
        border-subtitle-color: $foreground 70%;
        padding: 0 1;
    }
    AgentPane:focus { border: heavy $accent; }
    AgentPane.-status-running { border: round $success; }
    AgentPane.-status-retrying, AgentPane.-status-stalled { border: round $warning; }
    AgentPane.-status-failed { border: round $error; }
    AgentPane.-status-running:focus, AgentPane.-status-retrying:focus,
    AgentPane.-status-stalled:focus, AgentPane.-status-failed:focus { border: heavy $accent; }
    AgentPane > .pane-head { height: 1; }
    AgentPane .pane-subject { width: 1fr; padding: 0 0 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    AgentPane .pane-stats { height: 1; width: 1fr; color: $foreground 70%; text-wrap: nowrap; text-overflow: ellipsis; }
    AgentPane > PaneLog {
        height: 1fr;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 0;
        background: transparent;
    }
    """

    def __init__(self, state: AgentState, scrollback: int) -> None:
        super().__init__(id=f"pane-{state.name}", classes="agent-pane")
        self.agent = state.name
        self._agent_state = state
        self._scrollback = scrollback
        self._subject = ""
        self._stats = ""
        self.written_at = 0.0
        """``time.monotonic()`` of the last output written, to space out flushes."""
        self.border_title = state.name
        self.border_subtitle = meta_line(state)
        # Set before mounting: a class changed on a mounted pane restyles it and its children.
        self.add_class(describe.status_class(state.status))

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pane-head"):
            yield StatusBadge(self._agent_state.status)
            yield Label("", classes="pane-subject", markup=False)
        yield Label("", classes="pane-stats", markup=False)
        log = PaneLog(max_lines=self._scrollback, auto_scroll=False)
        log.can_focus = False
        yield log

    def on_mount(self) -> None:
        self.show_state(self._agent_state, force=True)

    def show_state(self, state: AgentState, now: float | None = None, *, force: bool = False) -> None:
        """Update the head lines from the agent's state; ``now`` recomputes the elapsed time.

        The head lines have a fixed size, so their new text is drawn without a layout pass.
        """
        self._agent_state = state
        if not self.is_mounted:
            return
        status_class = describe.status_class(state.status)
        if not self.has_class(status_class):
            self.remove_class(*describe.STATUS_CLASSES)
            self.add_class(status_class)
        self.query_one(StatusBadge).show_status(state.status)
        self.border_subtitle = meta_line(state)
        subject = describe.subject(state)
        if subject != self._subject or force:
            self._subject = subject
            self.query_one(".pane-subject", Label).update(subject, layout=False)
        stats = describe.stats(state, clock.now() if now is None else now)
        if stats != self._stats or force:
            self._stats = stats
            self.query_one(".pane-stats", Label).update(stats, layout=False)

    def write_output(self, clear: bool, lines: list[str]) -> None:
        """Write one batch of output lines; ``clear`` first empties the log."""
        log = self.query_one(PaneLog)
        if clear:
            log.clear()
            log.following = True
        if lines:
            log.add_lines(lines)
