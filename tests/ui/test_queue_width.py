"""The queue table fits the screen's width: narrower or fewer columns at 80 columns, all at 140."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from aipass_tui.core.models import AgentState, AgentStatus, RequestStatus
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.ui.app import AipassApp
from aipass_tui.ui.screens.queue import QueueScreen, queue_layout
from tests.ui import scenes
from tests.ui.conftest import wait_for

ALL_COLUMNS = ["Id", "Agent", "Subject", "Status", "Pri", "Dup", "Sender", "Age"]
TEXT_CELLS = {"id": 6, "priority": 3, "duplicates": 3, "age": 6}
"""Widest text of the short columns: an id suffix, ``Pri``, ``Dup`` and ages such as ``20m00s``."""
LONG_AGENT = "refactoring-agent-with-a-long-name"


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def layout_width(width: int, agent_cells: int) -> int:
    """Return the cells the table of ``queue_layout(width, agent_cells)`` takes at most."""
    layout = queue_layout(width, agent_cells)
    texts = {**TEXT_CELLS, "agent": layout.agent, "subject": layout.subject, "status": layout.status, "sender": layout.sender}
    return sum(texts[key] + 2 for key in layout.keys)


def many_requests(repo: Path, count: int = 30) -> AipassApp:
    """Build a queue of ``count`` requests for an agent with a 34-character name, more than fit at 24 rows."""
    settings = scenes.settings_for({LONG_AGENT: ("command", None), "codex-b": ("codex", None)})
    agents = {
        LONG_AGENT: AgentState(name=LONG_AGENT, kind="command", status=AgentStatus.QUEUED, queued=count),
        "codex-b": AgentState(name="codex-b", kind="codex", status=AgentStatus.IDLE),
    }
    requests = [
        scenes.request(f"{number:06x}", LONG_AGENT, f"Fix the flaky test number {number} in the merge suite",
                       RequestStatus.QUEUED, age=60 + number, sender="watch: tests changed")
        for number in range(count)
    ]
    snapshot = Snapshot(agents=agents, requests=requests, runs={}, metrics=scenes.metrics())
    return scenes.app_for(repo, settings, snapshot)


async def open_queue(pilot: Pilot, rows: int) -> DataTable:
    await pilot.press("q")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, QueueScreen), message="queue shown")
    table = pilot.app.screen.query_one("#requests", DataTable)
    await wait_for(pilot, lambda: table.row_count == rows, message=f"{rows} queue rows")
    await pilot.pause(0.1)
    return table


def labels(table: DataTable) -> list[str]:
    return [column.label.plain for column in table.columns.values()]


def table_width(table: DataTable) -> int:
    return sum(column.get_render_width(table) for column in table.columns.values())


def test_layout_keeps_every_column_when_wide() -> None:
    layout = queue_layout(138, 8)

    assert [label for _key, label in layout.columns] == ALL_COLUMNS
    assert (layout.subject, layout.status, layout.sender) == (36, 32, 16)


@pytest.mark.parametrize(
    ("width", "missing"),
    [(124, ["Sender"]), (98, ["Sender"]), (78, ["Sender"]), (59, ["Dup", "Sender"]), (52, ["Dup", "Sender"])],
)
def test_layout_drops_sender_then_duplicates(width: int, missing: list[str]) -> None:
    layout = queue_layout(width, 8)
    shown = [label for _key, label in layout.columns]

    assert sorted(set(ALL_COLUMNS) - set(shown)) == missing
    assert shown == [label for label in ALL_COLUMNS if label not in missing], "columns keep their order"


@pytest.mark.parametrize("agent_cells", [3, 8, 16, 34])
def test_layout_fits_every_width(agent_cells: int) -> None:
    too_wide = {width: layout_width(width, agent_cells) for width in range(60, 200) if layout_width(width, agent_cells) > width}

    assert too_wide == {}


def test_layout_shortens_long_agent_names() -> None:
    assert queue_layout(78, 34).agent == 16
    assert queue_layout(78, 3).agent == len("Agent")


async def test_queue_fits_80_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_queue(pilot, 7)
        await pilot.press("down")
        await wait_for(pilot, lambda: table.cursor_row == 1, message="cursor on the coalesced request")
        detail = str(app.screen.query_one("#request-detail", Static).render())
        subject = table.get_cell("r-20260528-201320-000002", "subject").plain
        selected = app.screen.selected_request()

        assert labels(table) == ["Id", "Agent", "Subject", "Status", "Pri", "Dup", "Age"]
        assert table_width(table) <= table.scrollable_content_region.width
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert not table.show_horizontal_scrollbar
        assert subject.endswith("…"), f"subject {subject!r} is not shortened"
        assert selected is not None
        assert f"from {selected.sender}" in detail, "the detail box names the sender"
        assert "Run the linters and fix what they find" in detail
        assert "coalesced 2 identical requests" in detail


async def test_queue_keeps_columns_at_140(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await open_queue(pilot, 7)

        assert labels(table) == ALL_COLUMNS
        assert table.get_cell("r-20260528-201320-000002", "subject").plain == "Run the linters and fix what they find"[:35] + "…"


async def test_queue_resize_keeps_cursor(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(140, 30)) as pilot:
        table = await open_queue(pilot, 7)
        await pilot.press("down", "down", "down")
        await wait_for(pilot, lambda: table.cursor_row == 3, message="cursor on the held request")
        held = app.screen.selected_request()
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "Sender" not in labels(table), message="narrow columns")
        await wait_for(pilot, lambda: table.row_count == 7, message="rows after the narrow layout")
        narrow = app.screen.selected_request()
        await pilot.resize_terminal(140, 30)
        await wait_for(pilot, lambda: "Sender" in labels(table), message="wide columns")
        wide = app.screen.selected_request()

        assert held is not None and held.status == RequestStatus.HELD
        assert narrow == held
        assert wide == held
        assert labels(table) == ALL_COLUMNS


async def test_queue_with_scrollbar_fits(repo_dir: Path, frozen_clock: float) -> None:
    app = many_requests(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        table = await open_queue(pilot, 30)
        agents = {table.get_cell(key, "agent").plain for key in table.rows}

        assert table.show_vertical_scrollbar, "30 rows should outgrow the table"
        assert table.virtual_size.width <= table.scrollable_content_region.width
        assert not table.show_horizontal_scrollbar
        assert all(cell_len(agent) <= 16 for agent in agents), f"agent cells {agents} are not shortened"
        assert "Sender" not in labels(table)
