"""The grid of agents on the main screen: full panes when they fit, compact cards otherwise."""

from __future__ import annotations

import math
from typing import Literal

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from aipass_tui.ui.model import CockpitModel
from aipass_tui.ui.widgets.agent_card import AgentCard
from aipass_tui.ui.widgets.agent_pane import AgentPane

MIN_PANE_WIDTH = 36
MIN_PANE_HEIGHT = 9
MAX_PANES = 9
"""Streaming panes on screen at most: each visible pane repaints on every flush."""
PANE_WRITES_PER_SECOND = 24.0
"""Pane flushes per second shared by all panes, so nine busy panes get about 2.7 each.

A scrolling pane repaints every visible line when written, so the cost of output grows with
panes × flushes, not with lines. Measured on a 2-core machine with 12 panes of 50 lines/s at
8 flushes per second each: the UI thread used 59% of a core and timer lag reached 88 ms (p95).
"""
NO_AGENTS = (
    "No agents are configured. Add one to .aipass/config.toml, for example\n\n"
    '[agents.claude-a]\nkind = "claude"\n\n'
    "or run aipass-tui init, which adds an agent for each agent CLI it finds, then start aipass-tui again."
)
CARD_WIDTH = 30
CARD_HEIGHT = 5

Mode = Literal["panes", "cards"]


def pane_grid(count: int, width: int, height: int) -> tuple[int, int] | None:
    """Return ``(columns, rows)`` for ``count`` panes in ``width``×``height`` cells, or None.

    None means panes would be smaller than the minimum (or more than ``MAX_PANES``), so the
    agents are shown as cards. Among layouts that fit, the one whose panes are closest to
    three times wider than high (a readable shape for log lines) wins.
    """
    if count == 0 or count > MAX_PANES:
        return None
    best: tuple[float, int, int] | None = None
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        pane_width = width / columns
        pane_height = height / rows
        if pane_width < MIN_PANE_WIDTH or pane_height < MIN_PANE_HEIGHT:
            continue
        score = abs(math.log((pane_width / pane_height) / 3))
        if best is None or score < best[0]:
            best = (score, columns, rows)
    return None if best is None else (best[1], best[2])


class AgentGrid(VerticalScroll):
    """Holds one AgentPane or AgentCard per agent and lays them out for the space it has."""

    DEFAULT_CSS = """
    AgentGrid { layout: grid; grid-gutter: 0 1; height: 1fr; scrollbar-size-vertical: 1; }
    /* A grid cell is one card high, too short for the hint, so the main screen makes an empty grid vertical. */
    AgentGrid.-no-agents { layout: vertical; }
    AgentGrid > .no-agents { padding: 1 2; width: 1fr; height: auto; }
    """

    def __init__(self, scrollback: int, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.scrollback = scrollback
        self.mode: Mode | None = None
        self.columns = 1
        self._names: list[str] = []
        self._by_agent: dict[str, AgentPane | AgentCard] = {}

    def items(self) -> list[Widget]:
        """Return the panes or cards in agent order."""
        return [child for child in self.children if isinstance(child, (AgentPane, AgentCard))]

    def item(self, agent: str) -> AgentPane | AgentCard | None:
        """Return the agent's pane or card from a dictionary.

        Each update looks up every agent, and a DOM query would walk all the widgets each time.
        """
        return self._by_agent.get(agent)

    def pane_agents(self) -> list[str]:
        return list(self._names) if self.mode == "panes" else []

    async def lay_out(self, model: CockpitModel, width: int, height: int) -> bool:
        """Choose panes or cards for the current size; return True when widgets were replaced."""
        names = list(model.agents)
        layout = pane_grid(len(names), width, height)
        mode: Mode = "cards" if layout is None else "panes"
        replaced = False
        if mode != self.mode or names != self._names:
            focused_agent = getattr(self.screen.focused, "agent", None)
            self._by_agent = {}
            await self.remove_children()
            if not names:
                widgets: list[Widget] = [Static(NO_AGENTS, classes="no-agents", markup=False)]
            elif mode == "panes":
                widgets = [AgentPane(model.agents[name].state, self.scrollback) for name in names]
            else:
                widgets = [AgentCard(model.agents[name].state, model.agents[name].last_line) for name in names]
            await self.mount_all(widgets)
            self._by_agent = {widget.agent: widget for widget in widgets if isinstance(widget, (AgentPane, AgentCard))}
            self.mode = mode
            self._names = names
            replaced = True
            if focused_agent in names:
                item = self.item(focused_agent)
                if item is not None:
                    item.focus(scroll_visible=False)
        if layout is not None:
            self.columns, rows = layout
            self.styles.grid_size_columns = self.columns
            self.styles.grid_size_rows = rows
            self.styles.grid_rows = "1fr"
        else:
            self.columns = max(1, width // CARD_WIDTH)
            self.styles.grid_size_columns = self.columns
            self.styles.grid_size_rows = 0
            self.styles.grid_rows = str(CARD_HEIGHT)
        return replaced

    def neighbour(self, agent: str | None, direction: str) -> Widget | None:
        """Return the pane or card next to ``agent`` in ``direction`` (left, right, up, down)."""
        items = self.items()
        if not items:
            return None
        index = next((i for i, item in enumerate(items) if getattr(item, "agent", None) == agent), None)
        if index is None:
            return items[0]
        step = {"left": -1, "right": 1, "up": -self.columns, "down": self.columns}[direction]
        target = index + step
        if 0 <= target < len(items):
            return items[target]
        return None
