"""Pilot tests of the cockpit with no agents configured: the whole hint, and a dispatch form that explains why."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from textual.geometry import Region
from textual.widgets import Input, Select, Static

from aipass_tui.core.store import Paths
from aipass_tui.ui.app import create_app
from aipass_tui.ui.screens.dispatch import NO_AGENTS as DISPATCH_NO_AGENTS
from aipass_tui.ui.screens.dispatch import DispatchScreen
from aipass_tui.ui.widgets.agent_grid import NO_AGENTS, AgentGrid
from tests.ui.conftest import cockpit_config, start_orchestrator, wait_for


def screen_text(app) -> str:
    """Return the characters on screen, with the rows joined by spaces so wrapped text stays searchable."""
    svg = app.export_screenshot()
    lines = re.findall(r"<text [^>]*>(.*?)</text>", svg)
    text = html.unescape(" ".join(lines)).replace("\xa0", " ")
    return re.sub(r"\s+", " ", text)


def widget_text(widget) -> str:
    """Return the lines a widget draws in its current size, joined by spaces."""
    strips = widget.render_lines(Region(0, 0, widget.region.width, widget.region.height))
    return re.sub(r"\s+", " ", " ".join(strip.text for strip in strips))


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_no_agents_hint_shown_whole(repo: Path, orchestrators: list, size: tuple[int, int]) -> None:
    settings = cockpit_config(repo, agents=())
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=size) as pilot:
        grid = app.screen.query_one(AgentGrid)
        await wait_for(pilot, lambda: grid.query(".no-agents"), message="no-agents hint mounted")
        await pilot.pause()
        hint = grid.query_one(".no-agents", Static)

        assert grid.has_class("-no-agents")
        assert hint.region.height > 5
        assert grid.region.contains_region(hint.region)
        assert app.screen.region.contains_region(grid.region)
        drawn = widget_text(hint)
        assert "No agents are configured." in drawn
        assert '[agents.claude-a] kind = "claude"' in drawn
        assert "or run aipass-tui init" in drawn
        assert drawn.strip().endswith("then start aipass-tui again.")
        assert "or run aipass-tui init" in screen_text(app)


async def test_dispatch_without_agents_explains(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo, agents=())
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(".no-agents"), message="no-agents hint mounted")
        await pilot.press("n")
        dialog = await wait_for(pilot, lambda: isinstance(app.screen, DispatchScreen) and app.screen, message="dispatch form")
        error = dialog.query_one("#error", Static)

        assert str(error.content) == DISPATCH_NO_AGENTS
        assert "[agents]" in DISPATCH_NO_AGENTS
        assert "aipass-tui init" in DISPATCH_NO_AGENTS
        assert dialog.query_one("#agent", Select).value is Select.NULL
        assert app.screen.region.contains_region(error.region)
        assert widget_text(error).strip() == DISPATCH_NO_AGENTS
        assert "no agents are configured" in screen_text(app)

        await pilot.press(*"Fix the build")
        assert dialog.query_one("#subject", Input).value == "Fix the build"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is dialog
        assert str(error.content) == DISPATCH_NO_AGENTS
        assert dialog.query_one("#subject", Input).value == "Fix the build"
        assert list(Paths(repo).inbox.glob("*.json")) == []
