"""Snapshot tests of every screen and state, rendered from recorded scenes with a frozen clock."""

from __future__ import annotations

from pathlib import Path

import pytest
import textual.constants
from textual.pilot import Pilot

from aipass_tui.ui.widgets.transcript_view import TranscriptView
from tests.ui import scenes
from tests.ui.conftest import wait_for


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A folder named ``repo``, so the title bar reads the same in every test."""
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def true_color_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render in true colour whatever TERM the tests run under, so snapshots match on every machine.

    Textual passes ``textual.constants.COLOR_SYSTEM`` (``TEXTUAL_COLOR_SYSTEM``) to the app's
    console, and with 16 colours some widgets restyle themselves (tests/ui/test_standard_colors.py).
    """
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


async def _settle(pilot: Pilot) -> None:
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


async def _transcript_loaded(pilot: Pilot) -> None:
    view = pilot.app.screen.query_one(TranscriptView)
    await wait_for(pilot, lambda: view.row_count > 0 and not view.indexing, message="transcript indexed")
    await _settle(pilot)


def test_three_agents(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    assert snap_compare(scenes.three_agents(repo_dir), terminal_size=(140, 40), run_before=_settle)


def test_forty_agents_as_cards(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    assert snap_compare(scenes.many_agents(repo_dir, 40), terminal_size=(140, 40), run_before=_settle)


def test_fleet_table(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    assert snap_compare(scenes.many_agents(repo_dir, 40), terminal_size=(140, 40), press=["t"], run_before=_settle)


def test_zoomed_agent_with_subagents(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.zoom_scene(repo_dir)

    async def open_subagents(pilot: Pilot) -> None:
        await pilot.press("enter")
        await _transcript_loaded(pilot)
        pilot.app.screen.query_one("#zoom-side").active = "tab-subagents"
        await _settle(pilot)

    assert snap_compare(app, terminal_size=(140, 40), run_before=open_subagents)


def test_queue_with_duplicate_and_held(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    assert snap_compare(scenes.queue_scene(repo_dir), terminal_size=(140, 30), press=["q", "down"], run_before=_settle)


def test_dispatch_dialog(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    async def type_request(pilot: Pilot) -> None:
        await pilot.press("n")
        await _settle(pilot)
        await pilot.press(*"Fix the flaky test")
        await _settle(pilot)

    assert snap_compare(scenes.three_agents(repo_dir), terminal_size=(120, 36), run_before=type_request)


def test_cpu_meter_holding_starts(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.three_agents(repo_dir, holding="CPU 97% above 90% for 5 s")
    assert snap_compare(app, terminal_size=(140, 40), run_before=_settle)


def test_whole_screen_at_80x24(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    assert snap_compare(scenes.three_agents(repo_dir), terminal_size=(80, 24), run_before=_settle)


def test_hostile_output_keeps_borders(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    assert snap_compare(scenes.hostile_output(repo_dir), terminal_size=(100, 24), run_before=_settle)
