"""The footers of the main and zoom screens fit narrow terminals: short descriptions, then fewer keys.

Rendered from recorded scenes with a frozen clock. Each check reads the laid-out
footer keys, so the widths FittingFooter computes are checked against Textual's real layout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable

from aipass_tui.ui.app import AipassApp
from aipass_tui.ui.screens.help import HelpScreen
from aipass_tui.ui.screens import zoom
from aipass_tui.ui.screens.main import FOOTER_OPTIONAL, MainScreen
from aipass_tui.ui.screens.zoom import ZoomScreen
from aipass_tui.ui.widgets.fitting_footer import FittingFooter, FooterFit
from tests.ui import scenes
from tests.ui.conftest import wait_for

REQUIRED_KEYS = ("n", "enter", "q", "p", "P", "a", "ctrl+q", "f1")
"""Keys the main footer shows at every width from 80 columns up: new request, zoom, queue, pull
requests, plans, automation, quit and the keys screen."""
FULL_DESCRIPTIONS = {
    "n": "New request", "enter": "Zoom", "q": "Queue", "t": "Fleet table", "x": "Stop run", "r": "Retry",
    "p": "Pull requests", "P": "Plans", "a": "Automation", "ctrl+q": "Quit", "f1": "Keys",
}


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


async def settled_footer(pilot: Pilot, screen_type: type = MainScreen) -> FittingFooter:
    """Wait until the footer of a ``screen_type`` screen shows its keys, and return it."""
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen_type), message=f"{screen_type.__name__} shown")
    footer = pilot.app.screen.query_one(FittingFooter)
    await pilot.pause(0.1)
    # The footer composes its keys again whenever the bindings change (focus moves, for one),
    # so wait until the keys it shows now have been laid out.
    await wait_for(pilot, lambda: footer.query("FooterKey") and all(key.region.width for key in footer.query("FooterKey")),
                   message="footer keys laid out")
    return footer


def footer_keys(footer: FittingFooter) -> tuple[dict[str, Widget], Widget]:
    """Return the footer's keys by key name, and the command palette key docked on the right."""
    keys: dict[str, Widget] = {}
    palette = None
    for widget in footer.query("FooterKey"):
        if widget.has_class("-command-palette"):
            palette = widget
        else:
            keys[widget.key] = widget  # type: ignore[attr-defined]
    assert palette is not None, "the footer shows no command palette key"
    return keys, palette


def main_app(repo: Path) -> AipassApp:
    return scenes.three_agents(repo)


@pytest.mark.parametrize("width", [80, 86, 92, 99, 100, 120, 138, 139, 140, 160])
async def test_footer_keys_fully_visible(repo_dir: Path, frozen_clock: float, width: int) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(width, 24)) as pilot:
        footer = await settled_footer(pilot)
        keys, palette = footer_keys(footer)

        for key in REQUIRED_KEYS:
            assert key in keys, f"{key} missing from the footer at {width} columns"
        for key, widget in keys.items():
            assert footer.region.contains_region(widget.region), f"{key} is cut at {width} columns"
            assert widget.region.right <= palette.region.x, f"{key} runs under the palette key at {width} columns"
        assert footer.region.contains_region(palette.region)


async def test_footer_at_80_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        footer = await settled_footer(pilot)
        keys, _palette = footer_keys(footer)
        descriptions = {key: widget.description for key, widget in keys.items()}  # type: ignore[attr-defined]

        assert footer.fit == FooterFit(compact=True, left_out=frozenset(FOOTER_OPTIONAL))
        assert footer.has_class("-compact")
        assert descriptions == {
            "n": "New", "enter": "Zoom", "q": "Queue", "p": "PRs", "P": "Plans", "a": "Automation",
            "ctrl+q": "Quit", "f1": "Keys",
        }


async def test_footer_at_100_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(100, 24)) as pilot:
        footer = await settled_footer(pilot)
        keys, _palette = footer_keys(footer)

        assert footer.fit == FooterFit(compact=True)
        assert set(keys) == set(FULL_DESCRIPTIONS)
        assert keys["t"].description == "Table"  # type: ignore[attr-defined]
        assert keys["x"].description == "Stop"  # type: ignore[attr-defined]


async def test_footer_at_140_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        footer = await settled_footer(pilot)
        keys, _palette = footer_keys(footer)
        descriptions = {key: widget.description for key, widget in keys.items()}  # type: ignore[attr-defined]

        assert footer.fit == FooterFit()
        assert not footer.has_class("-compact")
        assert descriptions == FULL_DESCRIPTIONS


async def test_footer_follows_resize(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        footer = await settled_footer(pilot)
        assert footer.fit == FooterFit()

        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "t" not in footer_keys(footer)[0], message="fleet key left out at 80 columns")
        assert footer.fit.compact
        assert footer_keys(footer)[0]["n"].description == "New"  # type: ignore[attr-defined]

        await pilot.resize_terminal(140, 40)
        await wait_for(pilot, lambda: "t" in footer_keys(footer)[0], message="fleet key back at 140 columns")
        assert footer.fit == FooterFit()
        assert footer_keys(footer)[0]["n"].description == "New request"  # type: ignore[attr-defined]


async def test_left_out_keys_still_work(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        footer = await settled_footer(pilot)
        main = app.screen
        assert isinstance(main, MainScreen)
        assert "t" not in footer_keys(footer)[0]

        await pilot.press("t")
        await wait_for(pilot, lambda: main.fleet, message="fleet table after t")
        await pilot.press("t")
        await wait_for(pilot, lambda: not main.fleet, message="agent panes after t again")


async def test_left_out_keys_in_help_and_palette(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled_footer(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Fleet table", "Stop run", "Retry"):
            assert title in titles

        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), message="keys screen open")
        table = app.screen.query_one("#keys", DataTable)
        ids = {str(table.get_row_at(row)[3]) for row in range(table.row_count)}
        for binding_id in FOOTER_OPTIONAL:
            assert binding_id in ids


async def test_remapped_key_still_fits(repo_dir: Path, frozen_clock: float) -> None:
    app = main_app(repo_dir)
    app.settings.ui.keys["review"] = "ctrl+e"
    async with app.run_test(size=(80, 24)) as pilot:
        footer = await settled_footer(pilot)
        keys, palette = footer_keys(footer)

        assert "p" not in keys
        assert "ctrl+e" in keys
        assert str(keys["ctrl+e"].render()).startswith("^e PRs")
        for key, widget in keys.items():
            assert widget.region.right <= palette.region.x, f"{key} runs under the palette key"


ZOOM_REQUIRED_KEYS = ("escape", "f", "slash", "n", "s", "x", "ctrl+q", "f1")
"""Keys the zoom footer shows at 80 columns: back, follow, search, next match, side panel, stop,
quit and the keys screen."""


@pytest.mark.parametrize("width", [80, 90, 120, 140])
async def test_zoom_footer_keys_fully_visible(repo_dir: Path, frozen_clock: float, width: int) -> None:
    app = scenes.zoom_scene(repo_dir)
    async with app.run_test(size=(width, 24)) as pilot:
        await settled_footer(pilot)
        await pilot.press("enter")
        footer = await settled_footer(pilot, ZoomScreen)
        keys, palette = footer_keys(footer)

        for key in ZOOM_REQUIRED_KEYS:
            assert key in keys, f"{key} missing from the zoom footer at {width} columns"
        for key, widget in keys.items():
            assert footer.region.contains_region(widget.region), f"{key} is cut at {width} columns"
            assert widget.region.right <= palette.region.x, f"{key} runs under the palette key at {width} columns"
        assert footer.region.contains_region(palette.region)


async def test_zoom_footer_at_80_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.zoom_scene(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled_footer(pilot)
        await pilot.press("enter")
        footer = await settled_footer(pilot, ZoomScreen)
        keys, _palette = footer_keys(footer)

        assert footer.fit == FooterFit(compact=True, left_out=frozenset(zoom.FOOTER_OPTIONAL[:1]))
        assert "N" not in keys
        assert keys["n"].description == "Next"  # type: ignore[attr-defined]
        assert keys["s"].description == "Side"  # type: ignore[attr-defined]
