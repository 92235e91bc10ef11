"""The keys screen shows every column whole at 80 and 120 columns. Long texts wrap and binding ids never do."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable

from aipass_tui.ui import bindings
from aipass_tui.ui.screens.help import CELL_PADDING, PALETTE_ROW, HelpScreen, help_columns
from tests.ui import scenes
from tests.ui.conftest import wait_for

ROWS = [PALETTE_ROW, *bindings.help_rows({})]
LONGEST_ID = max(len(row[3]) for row in ROWS)


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


async def open_keys(pilot: Pilot) -> tuple[HelpScreen, DataTable]:
    await pilot.press("f1")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), message="keys screen open")
    screen = pilot.app.screen
    table = screen.query_one("#keys", DataTable)
    await wait_for(pilot, lambda: table.row_count == len(ROWS), message="every key row")
    await pilot.pause(0.1)
    return screen, table


def wrapped_lines(text: str, width: int) -> int:
    """Return how many lines ``text`` takes when wrapped at ``width`` cells."""
    return len(Text(text).wrap(Console(width=200), width))


@pytest.mark.parametrize("width", range(68, 201))
def test_columns_fit_width(width: int) -> None:
    columns = help_columns(width, ROWS)
    widths = columns.widths()

    assert sum(widths.values()) + CELL_PADDING * len(widths) <= width
    assert columns.id == LONGEST_ID


def test_columns_at_80() -> None:
    columns = help_columns(74, ROWS)

    assert columns.scope >= 12
    assert columns.action >= 16
    assert columns.keys == max(len(row[1]) for row in ROWS)


def test_columns_keep_short_texts_whole() -> None:
    rows = [("Agents", "n", "Send a request", "dispatch")]
    columns = help_columns(200, rows)

    assert columns.widths() == {"scope": len("Agents"), "keys": len("Keys"), "action": len("Send a request"), "id": len("Binding id")}


@pytest.mark.parametrize(("width", "height"), [(80, 24), (120, 30), (200, 40)])
async def test_keys_fit_width(repo_dir: Path, frozen_clock: float, width: int, height: int) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(width, height)) as pilot:
        screen, table = await open_keys(pilot)
        columns = {column.key.value: column for column in table.columns.values()}
        action_width = columns["action"].width
        scope_width = columns["scope"].width

        assert table.virtual_size.width <= table.scrollable_content_region.width, f"table too wide at {width}"
        assert not table.show_horizontal_scrollbar
        assert columns["id"].width >= LONGEST_ID, "binding ids are whole"
        for index, (scope, _keys, description, binding_id) in enumerate(ROWS):
            cells = table.get_row_at(index)
            row = table.ordered_rows[index]
            needed = max(wrapped_lines(description, action_width), wrapped_lines(scope, scope_width))
            assert cells[3].plain == binding_id
            assert cells[2].plain == description
            assert row.height >= needed, f"row {binding_id!r} cuts its text at {width}"


async def test_keys_wrap_long_actions_at_80(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_keys(pilot)
        index = next(i for i, row in enumerate(ROWS) if row[3] == "merge")

        assert table.ordered_rows[index].height > 1
        assert table.get_row_at(index)[2].plain == "Approve and merge into the target branch (asks first)"


async def test_keys_resize_keeps_cursor(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(120, 30)) as pilot:
        screen, table = await open_keys(pilot)
        await pilot.press("down", "down", "down")
        await wait_for(pilot, lambda: table.cursor_row == 3, message="cursor on the fourth row")
        wide_action = screen.column_widths.action
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: screen.column_widths.action < wide_action, message="narrow columns")

        assert table.cursor_row == 3
        assert table.row_count == len(ROWS)
        assert table.virtual_size.width <= table.scrollable_content_region.width


async def test_remapped_keys_wrap(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    app.settings.ui.keys["dispatch"] = "ctrl+n,f2,ctrl+shift+d,f12"
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_keys(pilot)
        index = next(i for i, row in enumerate(screen.key_rows) if row[3] == "dispatch")
        keys = table.get_row_at(index)[1].plain

        assert keys == bindings.display_keys("ctrl+n,f2,ctrl+shift+d,f12")
        assert screen.column_widths.keys == 14
        assert table.ordered_rows[index].height >= wrapped_lines(keys, 14)
        assert table.virtual_size.width <= table.scrollable_content_region.width
