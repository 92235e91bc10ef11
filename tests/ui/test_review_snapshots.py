"""Snapshots of the review screens over a fixed scene: real commits, frozen clock and fixed ids."""

from __future__ import annotations

from pathlib import Path

import pytest
import textual.constants
from textual.pilot import Pilot

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.ui.screens.checks import ChecksScreen
from aipass_tui.ui.screens.pull import PullScreen
from aipass_tui.ui.screens.review import ReviewScreen
from aipass_tui.ui.widgets.file_list import FileList
from tests.ui.conftest import wait_for
from tests.ui.scenes import T0
from tests.ui.test_review_support import frozen_review_app, review_scene


@pytest.fixture(autouse=True)
def true_color_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render in true colour whatever TERM the tests run under, so snapshots match on every machine.

    With 16 colours the footer and some tables restyle themselves (tests/ui/test_standard_colors.py).
    """
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


@pytest.fixture(scope="module")
def scene_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """The scene, built once: the snapshot tests only read it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        clock.freeze(T0)
        try:
            return review_scene(tmp_path_factory.mktemp("scene"), monkeypatch)
        finally:
            clock.unfreeze()


@pytest.fixture
def scene(scene_repo: tuple[Path, Settings], frozen_clock: float):
    return frozen_review_app(*scene_repo)


async def _settle(pilot: Pilot) -> None:
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


async def _open_list(pilot: Pilot) -> ReviewScreen:
    await pilot.press("p")
    screen = pilot.app.screen
    assert isinstance(screen, ReviewScreen)
    await wait_for(pilot, lambda: screen.loaded, message="pull requests loaded")
    return screen


async def _open_pull(pilot: Pilot, pull_id: str, path: str | None = None) -> PullScreen:
    review = await _open_list(pilot)
    table = review.query_one("#pulls")
    table.move_cursor(row=table.get_row_index(pull_id), animate=False)
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, PullScreen)
    if path is not None:
        files = screen.query_one(FileList)
        files.move_cursor(files.index_of(path))
    await wait_for(pilot, lambda: screen.document is not None and screen.document.path == (path or screen.pull.files[0].path), message="diff loaded")
    await _settle(pilot)
    return screen


def test_review_list(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _open_list(pilot)
        await _settle(pilot)

    assert snap_compare(scene, terminal_size=(130, 24), run_before=run_before)


def test_unified_diff(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _open_pull(pilot, "1", "src/config.py")
        await pilot.press("n")
        await _settle(pilot)

    assert snap_compare(scene, terminal_size=(130, 36), run_before=run_before)


def test_split_diff(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        screen = await _open_pull(pilot, "1", "src/config.py")
        assert screen.diff_view.split
        await pilot.press("n", "down", "down")
        await _settle(pilot)

    assert snap_compare(scene, terminal_size=(170, 36), run_before=run_before)


def test_binary_file_row(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _open_pull(pilot, "1", "logo.png")

    assert snap_compare(scene, terminal_size=(130, 24), run_before=run_before)


def test_renamed_file(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _open_pull(pilot, "1", "docs/guide/settings.md")

    assert snap_compare(scene, terminal_size=(130, 24), run_before=run_before)


def test_conflict(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _open_pull(pilot, "2")

    assert snap_compare(scene, terminal_size=(130, 24), run_before=run_before)


def test_checks_failing(snap_compare, scene) -> None:
    async def run_before(pilot: Pilot) -> None:
        await _open_pull(pilot, "1")
        await pilot.press("t")
        screen = pilot.app.screen
        assert isinstance(screen, ChecksScreen)
        await wait_for(pilot, lambda: len(screen.query_one("#check-output").lines) > 1, message="check output read")
        await _settle(pilot)

    assert snap_compare(scene, terminal_size=(130, 24), run_before=run_before)


async def test_recorded_scene_rejects_commands(scene) -> None:
    async with scene.run_test(size=(130, 24), notifications=True) as pilot:
        screen = await _open_pull(pilot, "1")
        await pilot.press("a")
        await wait_for(pilot, lambda: "recorded snapshot" in "\n".join(str(toast.render()) for toast in scene.screen.query("Toast")), message="rejection shown")
        assert screen.pull.status.value == "open"
