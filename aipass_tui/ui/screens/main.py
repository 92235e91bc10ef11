"""The main screen: every agent as a pane, a card or a table row, with the CPU meter beside."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Label, Static

from aipass_tui.core import clock
from aipass_tui.core.models import RequestStatus
from aipass_tui.ui import bindings
from aipass_tui.ui.describe import request_status
from aipass_tui.ui.model import Changes
from aipass_tui.ui.text import shorten
from aipass_tui.ui.widgets.agent_card import AgentCard
from aipass_tui.ui.widgets.agent_grid import PANE_WRITES_PER_SECOND, AgentGrid
from aipass_tui.ui.widgets.agent_pane import AgentPane
from aipass_tui.ui.widgets.color_mode import mark_standard_colors
from aipass_tui.ui.widgets.cpu_meter import CpuMeter
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from aipass_tui.ui.widgets.fleet_table import FleetTable
from aipass_tui.ui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

NARROW_WIDTH = 100
"""Below this many columns the side panel collapses and the status bar shows the CPU."""
FLEET_BY_DEFAULT_ABOVE = 100
"""With more agents than this the main screen opens on the fleet table."""
WAITING_SHOWN = 8
FOOTER_SHORT = {"dispatch": "New", "fleet": "Table", "stop": "Stop", "review": "PRs"}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones."""
FOOTER_OPTIONAL = ("fleet", "retry", "stop")
"""Keys that leave the footer, in this order, when even the short descriptions do not fit (at 80
columns). They stay bound and listed in the command palette and on the F1 keys screen."""


class MainScreen(Screen[None]):
    """Agents, CPU meter and the head of the queue."""

    CSS_PATH = "main.tcss"
    BINDINGS = bindings.bindings(bindings.MAIN)

    fleet: reactive[bool] = reactive(False, init=False)

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def _compositor_refresh(self) -> None:
        # NOTE: Textual 8.2.8 internals. While the app starts, it batches updates and drops every
        # frame drawn in the batch, yet this screen's first layout renders the whole screen
        # there (about 50 ms on a 2-core machine). The render is left for the first update after
        # the batch, which repaints the whole screen because of the flag set here.
        if self.app._batch_count:
            self._repaint_required = True
            return
        super()._compositor_refresh()

    def compose(self) -> ComposeResult:
        cockpit = self.cockpit
        yield StatusBar(f"aipass-tui · {cockpit.source.repo.name}", id="status-bar")
        with Horizontal(id="body"):
            with ContentSwitcher(id="agents", initial="grid"):
                yield AgentGrid(cockpit.settings.ui.scrollback, id="grid")
                # The fleet table is built the first time it is shown: a hidden table costs about
                # 50 ms of the first frame.
                if self._opens_on_fleet():
                    yield FleetTable(id="fleet")
            with Vertical(id="side"):
                yield CpuMeter(id="cpu")
                yield Label("Waiting", classes="side-title")
                yield Static("", id="waiting", markup=False)
        yield FittingFooter(FOOTER_SHORT, FOOTER_OPTIONAL)

    def _opens_on_fleet(self) -> bool:
        return len(self.cockpit.model.agents) > FLEET_BY_DEFAULT_ABOVE

    async def on_mount(self) -> None:
        mark_standard_colors(self)
        self.fleet = self._opens_on_fleet()
        self.query_one(ContentSwitcher).current = "fleet" if self.fleet else "grid"
        await self._arrange()
        self.refresh_all()
        self._focus_first()

    # Layout --------------------------------------------------------------------------------

    async def on_resize(self) -> None:
        await self._arrange()

    async def _arrange(self) -> None:
        self.set_class(self.size.width < NARROW_WIDTH, "-narrow")
        if self.fleet:
            return
        grid = self.query_one(AgentGrid)
        # Estimate the grid's size from the screen: status bar, footer and side panel.
        side = 0 if self.size.width < NARROW_WIDTH else self.query_one("#side").outer_size.width or 34
        width = max(1, self.size.width - side)
        height = max(1, self.size.height - 2)
        # The no-agents hint wraps to its full height, which a grid cell does not allow.
        grid.set_class(not self.cockpit.model.agents, "-no-agents")
        if await grid.lay_out(self.cockpit.model, width, height):
            self.cockpit.model.set_live(self.live_agents())
            self.refresh_all()

    def live_agents(self) -> list[str]:
        """Return the agents whose output pane is on screen now."""
        if self.fleet or not self.is_current_base:
            return []
        return self.query_one(AgentGrid).pane_agents()

    @property
    def is_current_base(self) -> bool:
        """Tell whether this screen is on top, or only under a dialog."""
        return self.cockpit.base_screen() is self

    async def watch_fleet(self, fleet: bool) -> None:
        switcher = self.query_one(ContentSwitcher)
        if fleet and not switcher.query_children(FleetTable):
            await switcher.add_content(FleetTable(id="fleet"))
        switcher.current = "fleet" if fleet else "grid"
        if fleet:
            self.query_one(FleetTable).focus()
        else:
            await self._arrange()
        self.cockpit.model.set_live(self.live_agents())
        self.refresh_all()
        if not fleet:
            self._focus_first()

    def _focus_first(self) -> None:
        if self.fleet:
            self.query_one(FleetTable).focus()
            return
        focused = self.focused
        if isinstance(focused, (AgentPane, AgentCard)):
            return
        items = self.query_one(AgentGrid).items()
        if items:
            items[0].focus(scroll_visible=False)

    # Updates -------------------------------------------------------------------------------

    def refresh_all(self) -> None:
        """Redraw everything from the model (after a layout change or on return)."""
        model = self.cockpit.model
        changes = Changes(agents=set(model.agents), output=set(model.agents), queue=True, holding=True, metrics=True)
        self.apply_changes(changes, tick=True)

    def apply_changes(self, changes: Changes, tick: bool = False) -> None:
        """Refresh what ``changes`` names; ``tick`` (once a second) also redraws times and the table."""
        model = self.cockpit.model
        now = clock.now()
        if changes.roster:
            self.run_worker(self._arrange(), exclusive=True, group="arrange")
        if self.fleet:
            if tick or changes.roster:
                self.query_one(FleetTable).sync(model, now)
        else:
            self._update_grid(changes, tick, now)
        meter = self.query_one(CpuMeter)
        if changes.metrics or changes.holding:
            meter.show(model.metrics, model.holding)
        if changes or tick:
            self.query_one(StatusBar).show(model, meter.summary())
        if changes.queue:
            self._show_waiting()

    def _update_grid(self, changes: Changes, tick: bool, now: float) -> None:
        model = self.cockpit.model
        grid = self.query_one(AgentGrid)
        if grid.mode == "panes":
            panes = [item for item in grid.items() if isinstance(item, AgentPane) and item.agent in model.agents]
            for pane in panes:
                if tick or pane.agent in changes.agents:
                    pane.show_state(model.agents[pane.agent].state, now)
            self._write_panes(panes)
            return
        # A card shows one output line and a few numbers, so they follow the once-a-second tick;
        # only a change of status shows at once.
        for name in set(model.agents) if tick else changes.agents:
            card = grid.item(name)
            view = model.agents.get(name)
            if not isinstance(card, AgentCard) or view is None:
                continue
            if (tick or view.state.status != card.status) and self.can_view_partial(card):
                card.show(view.state, view.last_line)

    def _write_panes(self, panes: list[AgentPane]) -> None:
        """Write pending output to the panes that waited longest, within the write budget.

        Spreading the writes over flushes keeps each frame small: writing every pane in the same
        flush makes one large repaint, which is what users feel as lag.
        """
        model = self.cockpit.model
        budget = max(1, round(PANE_WRITES_PER_SECOND / self.cockpit.flush_hz))
        waiting = [pane for pane in panes if model.agents[pane.agent].live and
                   (model.agents[pane.agent].pending or model.agents[pane.agent].reset)]
        waiting.sort(key=lambda pane: (not model.agents[pane.agent].reset, pane.written_at))
        moment = time.monotonic()
        for pane in waiting[:budget]:
            pane.write_output(*model.take_output(pane.agent))
            pane.written_at = moment

    def _show_waiting(self) -> None:
        waiting = [r for r in self.cockpit.model.request_list() if r.status in (RequestStatus.QUEUED, RequestStatus.HELD)]
        lines = [shorten(f"{r.agent}: {r.subject} ({request_status(r)})", 60) for r in waiting[:WAITING_SHOWN]]
        if len(waiting) > WAITING_SHOWN:
            lines.append(f"… {len(waiting) - WAITING_SHOWN} more (q shows the queue)")
        self.query_one("#waiting", Static).update("\n".join(lines) or "nothing waiting")

    # Selection and actions -----------------------------------------------------------------

    def selected_agent(self) -> str | None:
        """Return the agent under the focus or the table cursor."""
        if self.fleet:
            return self.query_one(FleetTable).selected_agent()
        agent = getattr(self.focused, "agent", None)
        if agent is None:
            items = self.query_one(AgentGrid).items()
            agent = getattr(items[0], "agent", None) if items else None
        return agent

    def action_focus_neighbour(self, direction: str) -> None:
        grid = self.query_one(AgentGrid)
        target = grid.neighbour(getattr(self.focused, "agent", None), direction)
        if target is not None:
            target.focus()

    def action_toggle_fleet(self) -> None:
        self.fleet = not self.fleet

    def action_zoom(self) -> None:
        agent = self.selected_agent()
        if agent:
            self.cockpit.show_zoom(agent)

    def action_dispatch(self) -> None:
        self.cockpit.open_dispatch(self.selected_agent())

    def action_stop(self) -> None:
        agent = self.selected_agent()
        if agent:
            self.cockpit.confirm_stop(agent)

    def action_retry(self) -> None:
        agent = self.selected_agent()
        if agent:
            self.cockpit.retry_agent(agent)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.cockpit.show_zoom(str(event.row_key.value))

    def on_screen_resume(self) -> None:
        self.cockpit.model.set_live(self.live_agents())
        self.refresh_all()
