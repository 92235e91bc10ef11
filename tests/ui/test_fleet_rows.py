"""The fleet table keeps the rows in view current and catches up rows that scroll into view."""

from __future__ import annotations

from pathlib import Path

import pytest

from aipass_tui.core import clock
from aipass_tui.ui.widgets.fleet_table import FleetTable
from tests.ui import scenes
from tests.ui.conftest import wait_for


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def queued_cell(table: FleetTable, agent: str) -> str:
    return str(table.get_cell(agent, "queued"))


async def test_rows_out_of_view_catch_up_when_scrolled(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.many_agents(repo_dir, 150)
    async with app.run_test(size=(140, 30)) as pilot:
        # Above 100 agents the main screen opens on the fleet table.
        await wait_for(pilot, lambda: app.screen.fleet and app.screen.query(FleetTable), message="the fleet table")
        table = app.screen.query_one(FleetTable)
        await wait_for(pilot, lambda: table.row_count == 150 and table.size.height > 0, message="150 rows laid out")
        first, last = "agent-00", "agent-149"
        for name in (first, last):
            view = app.model.agents[name]
            view.state = view.state.model_copy(update={"queued": 7})
        table.sync(app.model, clock.now())

        assert queued_cell(table, first) == "7"
        assert queued_cell(table, last) != "7", "a row far out of view waits until it is shown"
        table.scroll_end(animate=False)
        await wait_for(pilot, lambda: queued_cell(table, last) == "7", message="the last row caught up after scrolling")
