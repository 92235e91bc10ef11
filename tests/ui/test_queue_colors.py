"""The queue screen stays readable on terminals with only the 16 standard colours.

The app runs as on ``TERM=xterm`` without ``COLORTERM``, and the contrast of every text cell is
measured after converting its colours to 16, as tests/ui/test_standard_colors.py does for the
main and zoom screens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import textual.constants
from textual.pilot import Pilot
from textual.widgets import DataTable

from aipass_tui.ui.screens.queue import QueueScreen
from aipass_tui.ui.widgets.color_mode import STANDARD_COLORS
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from tests.ui import scenes
from tests.ui.conftest import wait_for
from tests.ui.test_standard_colors import text_cells, unreadable, visible_widgets
from tests.ui.test_footer_fit import settled_footer


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture
def xterm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let Textual detect the colour system as on ``TERM=xterm`` without ``COLORTERM``."""
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("COLORTERM", raising=False)


async def open_queue_on_second_row(pilot: Pilot) -> DataTable:
    await settled_footer(pilot)
    await pilot.press("q")
    await settled_footer(pilot, QueueScreen)
    table = pilot.app.screen.query_one("#requests", DataTable)
    await wait_for(pilot, lambda: table.row_count == 7, message="queue rows")
    await pilot.press("down")
    await wait_for(pilot, lambda: table.cursor_row == 1, message="cursor on the second row")
    await pilot.pause(0.1)
    return table


@pytest.mark.parametrize("size", [(140, 30), (80, 24)])
async def test_queue_readable_in_16_colors(xterm: None, repo_dir: Path, frozen_clock: float, size: tuple[int, int]) -> None:
    app = scenes.queue_scene(repo_dir)
    assert app.console.color_system == "standard"
    async with app.run_test(size=size) as pilot:
        table = await open_queue_on_second_row(pilot)
        screen = app.screen
        table_text = "".join(text for text, _fg, _bg in text_cells(table))
        problems: list[str] = []
        for widget in visible_widgets(pilot):
            problems += unreadable(list(text_cells(widget)), type(widget).__name__)

        assert screen.has_class(STANDARD_COLORS)
        assert screen.query_one(FittingFooter).has_class(STANDARD_COLORS)
        assert "codex-b" in table_text, "the cursor row rendered no text to measure"
        assert problems == []


async def test_queue_restyle_only_with_16_colors(repo_dir: Path, frozen_clock: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(140, 30)) as pilot:
        await open_queue_on_second_row(pilot)

        assert not app.screen.has_class(STANDARD_COLORS)
        assert not app.screen.query_one(FittingFooter).has_class(STANDARD_COLORS)
