"""The pull request list fits the screen's width: narrower or fewer columns at 80 columns, all at 130."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.pulls import PullStatus, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.ui.screens.review import COLUMNS, ReviewScreen, review_layout, status_label
from tests.ui.conftest import wait_for
from tests.ui.scenes import T0
from tests.ui.test_review_support import frozen_review_app, review_scene

ALL_COLUMNS = [label for _key, label in COLUMNS]
LONG_AGENT = "refactoring-agent-with-a-long-name"
LONG_TITLE = "Accept units such as 5m and 2h in every timeout setting of the config file"
WIDE_CELLS = {"id": 2, "agent": 5, "title": 48, "files": 5, "lines": 9, "checks": 10, "status": 17, "violations": 7, "age": 6}
"""Text widths of a list with two-digit ids, a ``changes requested`` status and failing checks."""


@pytest.fixture(scope="module")
def scene_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """The review scene with pull request 1 asking for changes under a long title, and 2 by a long-named agent."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        clock.freeze(T0)
        try:
            repo, settings = review_scene(tmp_path_factory.mktemp("scene"), monkeypatch)
        finally:
            clock.unfreeze()
    store = PullStore(Paths(repo))
    first = store.load("1")
    first.status = PullStatus.CHANGES_REQUESTED
    first.title = LONG_TITLE
    first.violations = ["run.sh"]
    store.save(first)
    second = store.load("2")
    second.agent = LONG_AGENT
    store.save(second)
    return repo, settings


async def open_list(pilot: Pilot) -> tuple[ReviewScreen, DataTable]:
    await pilot.press("p")
    screen = pilot.app.screen
    assert isinstance(screen, ReviewScreen)
    await wait_for(pilot, lambda: screen.loaded, message="pull requests loaded")
    table = screen.query_one("#pulls", DataTable)
    await wait_for(pilot, lambda: table.row_count == 3, message="three pull request rows")
    await pilot.pause(0.1)
    return screen, table


async def select(pilot: Pilot, screen: ReviewScreen, table: DataTable, pull_id: str) -> None:
    """Move the cursor to pull request ``pull_id`` and wait until the detail box shows it."""
    table.move_cursor(row=table.get_row_index(pull_id), animate=False)
    await wait_for(pilot, lambda: detail_text(screen).startswith(f"#{pull_id} · "), message=f"detail of pull request {pull_id}")


def labels(table: DataTable) -> list[str]:
    return [column.label.plain for column in table.columns.values()]


def detail_text(screen: ReviewScreen) -> str:
    return str(screen.query_one("#pull-detail", Static).render())


def layout_cells(width: int, cells: dict[str, int]) -> int:
    """Return the cells the table of ``review_layout(width, cells)`` takes at most."""
    layout = review_layout(width, cells)
    texts = {**cells, "agent": layout.agent, "title": layout.title, "age": max(cells["age"], 6)}
    return sum(texts[key] + 2 for key in layout.keys)


def test_layout_keeps_every_column_when_wide() -> None:
    layout = review_layout(128, WIDE_CELLS)

    assert [label for _key, label in layout.columns] == ALL_COLUMNS
    assert layout.title == 48
    assert layout.agent == 5


@pytest.mark.parametrize(
    ("width", "missing"),
    [(100, []), (90, ["Files"]), (78, ["+/−", "Files"]), (68, ["+/−", "Age", "Files"]), (58, ["+/−", "Age", "Files", "Outside"]), (50, ["+/−", "Age", "Checks", "Files", "Outside"])],
)
def test_layout_drops_columns_in_order(width: int, missing: list[str]) -> None:
    layout = review_layout(width, WIDE_CELLS)
    shown = [label for _key, label in layout.columns]

    assert sorted(set(ALL_COLUMNS) - set(shown)) == missing
    assert shown == [label for label in ALL_COLUMNS if label not in missing], "columns keep their order"
    assert layout.title >= 12


@pytest.mark.parametrize("agent_cells", [5, 8, 16, 34])
def test_layout_fits_every_width(agent_cells: int) -> None:
    cells = {**WIDE_CELLS, "agent": agent_cells}
    too_wide = {width: layout_cells(width, cells) for width in range(58, 200) if layout_cells(width, cells) > width}

    assert too_wide == {}


def test_layout_shortens_agent_before_dropping_age() -> None:
    cells = {**WIDE_CELLS, "agent": 34}

    assert review_layout(128, cells).agent == 16
    assert review_layout(78, cells).agent == 10
    assert "age" in review_layout(78, cells).keys


@pytest.mark.parametrize("width", [60, 70, 80, 100, 130, 160, 200])
async def test_list_fits_width(scene_repo: tuple[Path, Settings], frozen_clock: float, width: int) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(width, 24)) as pilot:
        screen, table = await open_list(pilot)
        shown = labels(table)

        assert table.virtual_size.width <= table.scrollable_content_region.width, f"table too wide at {width}"
        assert not table.show_horizontal_scrollbar
        assert shown[:3] == ["#", "Agent", "Title"]
        assert "Status" in shown
        for pull_id, pull in screen.pulls.items():
            status = table.get_cell(pull_id, "status").plain
            assert status == status_label(pull).plain, f"status of #{pull_id} is cut at {width}"
        if width >= 130:
            assert shown == ALL_COLUMNS
        if width >= 80:
            assert "Outside" in shown
            assert "Age" in shown
            assert "Checks" in shown


async def test_detail_shows_left_out_columns(scene_repo: tuple[Path, Settings], frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_list(pilot)
        await select(pilot, screen, table, "1")
        pull = screen.pulls["1"]
        detail = detail_text(screen)
        title_cell = table.get_cell("1", "title").plain

        assert labels(table) == ["#", "Agent", "Title", "Checks", "Status", "Outside", "Age"]
        assert title_cell.endswith("…"), f"title {title_cell!r} is not shortened"
        assert f"alpha: {LONG_TITLE}" in detail
        assert f"{len(pull.files)} files" in detail
        assert f"+{pull.additions} −{pull.deletions}" in detail
        assert "outside the plan task's files: run.sh" in detail
        assert "checks" not in detail, "the checks column is shown, so the detail leaves it out"


async def test_detail_names_long_agent(scene_repo: tuple[Path, Settings], frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_list(pilot)
        await select(pilot, screen, table, "2")
        agent_cell = table.get_cell("2", "agent").plain

        assert cell_len(agent_cell) <= 10
        assert agent_cell.endswith("…")
        assert f"{LONG_AGENT}: " in detail_text(screen)


async def test_detail_at_60_lists_checks_and_age(scene_repo: tuple[Path, Settings], frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(60, 24)) as pilot:
        screen, table = await open_list(pilot)
        await select(pilot, screen, table, "1")
        detail = detail_text(screen)

        assert "Checks" not in labels(table)
        assert "Age" not in labels(table)
        assert "checks failed 1/2" in detail
        assert "opened " in detail


async def test_wide_detail_unchanged(scene_repo: tuple[Path, Settings], frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(130, 24)) as pilot:
        screen, table = await open_list(pilot)
        await select(pilot, screen, table, "3")
        detail = detail_text(screen)

        assert " · checks " not in detail
        assert "opened " not in detail
        assert "gamma: " not in detail


async def test_resize_keeps_cursor(scene_repo: tuple[Path, Settings], frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(130, 24)) as pilot:
        screen, table = await open_list(pilot)
        table.move_cursor(row=table.get_row_index("2"), animate=False)
        await wait_for(pilot, lambda: table.cursor_row == table.get_row_index("2"), message="cursor on pull 2")
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "Files" not in labels(table), message="narrow columns")
        narrow = screen.selected_pull()
        await pilot.resize_terminal(130, 24)
        await wait_for(pilot, lambda: "Files" in labels(table), message="wide columns")
        wide = screen.selected_pull()

        assert narrow is not None and narrow.id == "2"
        assert wide is not None and wide.id == "2"
        assert labels(table) == ALL_COLUMNS
