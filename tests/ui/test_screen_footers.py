"""The footers of the queue, review, plan and automation screens fit 80 columns.

Each check reads the laid-out footer keys, so the widths that FittingFooter computes are checked
against Textual's real layout. Keys a footer leaves out must still work and stay in the command
palette and on the F1 keys screen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import ContentSwitcher, DataTable

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.automation import attach_automation
from aipass_tui.core.diff import LARGE_FILE_LINES
from aipass_tui.core.plans import create_plan
from aipass_tui.core.store import Paths
from aipass_tui.ui import bindings
from aipass_tui.ui.app import AipassApp, create_app
from aipass_tui.ui.screens import plan_editor, pull, queue
from aipass_tui.ui.screens.automation import AutomationScreen
from aipass_tui.ui.screens.checks import ChecksScreen
from aipass_tui.ui.screens.dispatch import DispatchScreen
from aipass_tui.ui.screens.help import HelpScreen
from aipass_tui.ui.screens.plan_editor import PlanEditorScreen
from aipass_tui.ui.screens.plan_run import PlanRunScreen
from aipass_tui.ui.screens.pull import PullScreen
from aipass_tui.ui.screens.queue import QueueScreen
from aipass_tui.ui.screens.review import ReviewScreen
from aipass_tui.ui.widgets.fitting_footer import FittingFooter, FooterFit
from aipass_tui.ui.widgets.plan_outline import PlanOutline
from aipass_tui.ui.widgets.task_form import TaskForm
from tests.ui import scenes
from tests.ui.conftest import cockpit_config, start_orchestrator, wait_for
from tests.ui.scenes import T0
from tests.ui.test_footer_fit import footer_keys, settled_footer
from tests.ui.test_review_support import frozen_review_app, review_repo, review_scene, review_settings, stored_pulls

WIDTHS = [80, 90, 110, 130]


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def scene_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """The review scene, built once: pull request 1 is open, 2 has a conflict, 3 is merged."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        clock.freeze(T0)
        try:
            return review_scene(tmp_path_factory.mktemp("scene"), monkeypatch)
        finally:
            clock.unfreeze()


def assert_fits(footer: FittingFooter, required: tuple[str, ...], where: str) -> dict[str, str]:
    """Check that the ``required`` keys are shown and no key is cut, and return the descriptions by key."""
    keys, palette = footer_keys(footer)
    for key in required:
        assert key in keys, f"{key} missing from the footer of {where}"
    for key, widget in keys.items():
        assert footer.region.contains_region(widget.region), f"{key} is cut on {where}"
        assert widget.region.right <= palette.region.x, f"{key} runs under the palette key on {where}"
    assert footer.region.contains_region(palette.region), f"the palette key is cut on {where}"
    return {key: widget.description for key, widget in keys.items()}  # type: ignore[attr-defined]


def palette_titles(app: AipassApp) -> list[str]:
    return [command.title for command in app.get_system_commands(app.screen)]


async def help_ids(pilot: Pilot) -> set[str]:
    """Open the F1 keys screen and return the binding ids it lists, then close it."""
    app = pilot.app
    await pilot.press("f1")
    await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), message="keys screen open")
    table = app.screen.query_one("#keys", DataTable)
    ids = {str(table.get_row_at(row)[3]) for row in range(table.row_count)}
    await pilot.press("escape")
    return ids


# The queue ----------------------------------------------------------------------------------------

QUEUE_REQUIRED = ("escape", "c", "plus", "minus", "r", "m", "ctrl+q", "f1")
"""Keys the queue footer shows from 80 columns up: back, cancel, priority up and down, retry, move,
quit and the keys screen."""


async def open_queue(pilot: Pilot) -> FittingFooter:
    await settled_footer(pilot)
    await pilot.press("q")
    return await settled_footer(pilot, QueueScreen)


@pytest.mark.parametrize("width", WIDTHS + [140])
async def test_queue_footer_fits(repo_dir: Path, frozen_clock: float, width: int) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(width, 24)) as pilot:
        footer = await open_queue(pilot)

        assert_fits(footer, QUEUE_REQUIRED, f"the queue at {width} columns")


async def test_queue_footer_at_80_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        footer = await open_queue(pilot)
        descriptions = assert_fits(footer, QUEUE_REQUIRED, "the queue at 80 columns")

        assert footer.fit == FooterFit(compact=True, left_out=frozenset(queue.FOOTER_OPTIONAL))
        assert descriptions == {
            "escape": "Back", "c": "Cancel", "plus": "Pri +", "minus": "Pri −", "r": "Retry", "m": "Move",
            "ctrl+q": "Quit", "f1": "Keys",
        }


async def test_queue_footer_at_140_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(140, 30)) as pilot:
        footer = await open_queue(pilot)
        descriptions = assert_fits(footer, QUEUE_REQUIRED + ("n",), "the queue at 140 columns")

        assert footer.fit == FooterFit()
        assert descriptions["plus"] == "Priority +"
        assert descriptions["n"] == "New request"


async def test_queue_left_out_key_works(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        footer = await open_queue(pilot)
        assert "n" not in footer_keys(footer)[0]

        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, DispatchScreen), message="new request dialog after n")


async def test_queue_actions_in_palette_and_help(repo_dir: Path, frozen_clock: float) -> None:
    app = scenes.queue_scene(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_queue(pilot)
        titles = palette_titles(app)
        ids = await help_ids(pilot)

        for action in bindings.actions(bindings.QUEUE):
            assert action.description in titles, f"{action.description} missing from the palette"
            assert action.id in ids, f"{action.id} missing from the keys screen"


# Pull requests --------------------------------------------------------------------------------------

PULL_REQUIRED = ("escape", "n", "m", "R", "ctrl+q", "f1")
"""Keys the pull request footer shows at every width from 80 columns: back, next hunk, merge,
request changes, quit and the keys screen."""


async def open_review(pilot: Pilot) -> ReviewScreen:
    await settled_footer(pilot)
    await pilot.press("p")
    review = pilot.app.screen
    assert isinstance(review, ReviewScreen)
    await wait_for(pilot, lambda: review.loaded, message="pull requests loaded")
    return review


async def open_pull(pilot: Pilot, pull_id: str) -> tuple[PullScreen, FittingFooter]:
    review = await open_review(pilot)
    table = review.query_one("#pulls", DataTable)
    table.move_cursor(row=table.get_row_index(pull_id), animate=False)
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, PullScreen)
    await wait_for(pilot, lambda: screen.document is not None, message="first diff loaded")
    return screen, await settled_footer(pilot, PullScreen)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("pull_id", "extra"), [("1", ()), ("2", ("b",))], ids=["open", "conflict"])
async def test_pull_footer_fits(scene_repo, frozen_clock: float, width: int, pull_id: str, extra: tuple[str, ...]) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(width, 24)) as pilot:
        _screen, footer = await open_pull(pilot, pull_id)

        assert_fits(footer, PULL_REQUIRED + extra, f"pull request {pull_id} at {width} columns")


async def test_pull_footer_at_80_columns(scene_repo, frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        _screen, footer = await open_pull(pilot, "1")
        descriptions = assert_fits(footer, PULL_REQUIRED, "pull request 1 at 80 columns")

        assert footer.fit.compact
        assert descriptions == {
            "escape": "Back", "n": "Hunk", "c": "Comment", "m": "Merge", "R": "Changes", "x": "Close",
            "ctrl+q": "Quit", "f1": "Keys",
        }
        assert footer.fit.left_out == {"split", "next_file", "approve", "checks", "viewed"}


async def test_conflict_footer_at_80_columns(scene_repo, frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        _screen, footer = await open_pull(pilot, "2")
        descriptions = assert_fits(footer, PULL_REQUIRED + ("b",), "pull request 2 at 80 columns")

        assert descriptions["b"] == "Rebase"
        assert footer.fit.left_out == set(pull.FOOTER_OPTIONAL)


async def test_pull_left_out_keys_work(scene_repo, frozen_clock: float) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, footer = await open_pull(pilot, "1")
        keys = footer_keys(footer)[0]
        assert "s" not in keys
        assert "right_square_bracket" not in keys

        split = screen.diff_view.split
        await pilot.press("s")
        assert screen.diff_view.split is not split
        first = screen.file_list.cursor
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: screen.file_list.cursor == first + 1, message="next file after ]")

        titles = palette_titles(app)
        for action in bindings.actions(bindings.PULL):
            if action.id in pull.FOOTER_OPTIONAL:
                assert action.description in titles, f"{action.description} missing from the palette"


async def test_large_file_footer_at_80_columns(tmp_path: Path, orchestrators: list) -> None:
    repo = review_repo(tmp_path)
    settings = review_settings(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    orchestrator.dispatch("alpha", f"Generate lines=data/big.txt:{LARGE_FILE_LINES + 10}")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: stored_pulls(repo), message="pull request recorded")
        screen, _footer = await open_pull(pilot, "1")
        assert screen.check_action("load_full", ()) is True
        footer = screen.query_one(FittingFooter)
        await wait_for(pilot, lambda: "f" in footer_keys(footer)[0], message="whole file key in the footer")
        footer = await settled_footer(pilot, PullScreen)

        descriptions = assert_fits(footer, PULL_REQUIRED + ("f",), "a large file at 80 columns")
        assert descriptions["f"] == "Whole"


@pytest.mark.parametrize("width", [80, 130])
async def test_review_list_and_checks_fit(scene_repo, frozen_clock: float, width: int) -> None:
    app = frozen_review_app(*scene_repo)
    async with app.run_test(size=(width, 24)) as pilot:
        await open_review(pilot)
        footer = await settled_footer(pilot, ReviewScreen)
        assert_fits(footer, ("escape", "t", "ctrl+r", "ctrl+q", "f1"), f"the pull request list at {width} columns")
        assert footer.fit == FooterFit()

        await pilot.press("t")
        footer = await settled_footer(pilot, ChecksScreen)
        assert_fits(footer, ("escape", "ctrl+q", "f1"), f"the checks at {width} columns")
        assert footer.fit == FooterFit()


# Plans ----------------------------------------------------------------------------------------------

EDITOR_REQUIRED = ("ctrl+s", "f5", "escape", "ctrl+q", "f1")
"""Keys the plan editor footer shows at 80 columns wherever the focus is: save, run, back, quit and
the keys screen."""


def plan_app(repo: Path) -> tuple[AipassApp, Path]:
    settings = scenes.settings_for({"claude-a": ("claude", "sonnet"), "codex-b": ("codex", None)})
    created = create_plan(Paths(repo), settings, "FPLAN", "Add a login form", date="2026-05-28")
    app = scenes.app_for(repo, settings, scenes.Snapshot(agents={}, requests=[], runs={}))
    return app, created.path


async def open_editor(pilot: Pilot, path: Path) -> PlanEditorScreen:
    """Open the plan editor on ``path`` with the first task selected in the outline."""
    editor = PlanEditorScreen(path)
    await pilot.app.push_screen(editor)
    await wait_for(pilot, lambda: editor.loaded, message="plan loaded")
    editor.query_one(PlanOutline).focus()
    await pilot.press("down", "down")
    form = editor.query_one(TaskForm)
    await wait_for(pilot, lambda: form.query_one(ContentSwitcher).current == "task-form", message="first task shown")
    return editor


async def settle_focus(pilot: Pilot, widget) -> FittingFooter:
    """Focus ``widget`` and wait for the footer to show the keys of the new focus."""
    widget.focus()
    await wait_for(pilot, lambda: pilot.app.focused is widget, message=f"{widget!r} focused")
    await pilot.pause(0.1)
    return await settled_footer(pilot, PlanEditorScreen)


@pytest.mark.parametrize("width", WIDTHS)
async def test_plan_editor_footer_fits(repo_dir: Path, frozen_clock: float, width: int) -> None:
    app, path = plan_app(repo_dir)
    async with app.run_test(size=(width, 24)) as pilot:
        editor = await open_editor(pilot, path)

        footer = await settle_focus(pilot, editor.query_one(PlanOutline))
        assert_fits(footer, EDITOR_REQUIRED + ("a", "p", "d"), f"the plan editor outline at {width} columns")

        footer = await settle_focus(pilot, editor.query_one("#task-title"))
        assert_fits(footer, EDITOR_REQUIRED + ("f8", "f4"), f"the plan editor form at {width} columns")

        footer = await settle_focus(pilot, editor.query_one("#glob-items"))
        assert_fits(footer, EDITOR_REQUIRED + ("delete",), f"the glob list at {width} columns")

        if not editor.has_class("-wide"):
            await pilot.press("f4")
            await wait_for(pilot, lambda: editor.view == "source", message="TOML source shown")
        footer = await settle_focus(pilot, editor.source)
        assert_fits(footer, EDITOR_REQUIRED + ("f8", "f4"), f"the TOML source at {width} columns")


async def test_plan_editor_footer_at_80_columns(repo_dir: Path, frozen_clock: float) -> None:
    app, path = plan_app(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, path)

        footer = await settle_focus(pilot, editor.query_one(PlanOutline))
        descriptions = assert_fits(footer, EDITOR_REQUIRED, "the plan editor outline at 80 columns")
        assert descriptions == {
            "a": "Task", "p": "Phase", "d": "Delete", "ctrl+s": "Save", "f5": "Run", "escape": "Back",
            "ctrl+q": "Quit", "f1": "Keys",
        }

        footer = await settle_focus(pilot, editor.query_one("#task-title"))
        descriptions = assert_fits(footer, EDITOR_REQUIRED, "the plan editor form at 80 columns")
        assert descriptions == {
            "ctrl+s": "Save", "f5": "Run", "f8": "Problem", "f4": "Form/TOML", "escape": "Back",
            "ctrl+q": "Quit", "f1": "Keys",
        }
        assert footer.fit.left_out == {"plan_progress", "plan_open", "plan_outline"}


async def test_plan_editor_left_out_keys_work(repo_dir: Path, frozen_clock: float) -> None:
    app, path = plan_app(repo_dir)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, path)
        footer = await settle_focus(pilot, editor.query_one(PlanOutline))
        assert "f4" not in footer_keys(footer)[0]
        assert editor.view == "form"

        await pilot.press("f4")
        await wait_for(pilot, lambda: editor.view == "source", message="TOML source after f4")

        titles = palette_titles(app)
        for action in bindings.actions(bindings.PLAN_EDITOR):
            if action.id in plan_editor.FOOTER_OPTIONAL and action.palette:
                assert action.description in titles, f"{action.description} missing from the palette"


@pytest.mark.parametrize("width", WIDTHS)
async def test_plan_progress_footer_fits(repo_dir: Path, frozen_clock: float, width: int) -> None:
    app, path = plan_app(repo_dir)
    async with app.run_test(size=(width, 24)) as pilot:
        screen = PlanRunScreen(path)
        await app.push_screen(screen)
        await wait_for(pilot, lambda: screen.progress is not None, message="progress read")
        footer = await settled_footer(pilot, PlanRunScreen)

        descriptions = assert_fits(footer, ("escape", "r", "s", "x", "e", "f5", "ctrl+q", "f1"), f"plan progress at {width} columns")
        if width == 80:
            assert footer.fit == FooterFit(compact=True)
            assert (descriptions["r"], descriptions["s"], descriptions["x"]) == ("Retry", "Skip", "Abort")


# Automation -----------------------------------------------------------------------------------------

RULE = """
[[automation]]
name = "docs"
paths = ["docs/*.md"]
action = "notify"
subject = "docs changed: {paths}"
"""


@pytest.mark.parametrize("width", [80, 130])
async def test_automation_footer_fits(repo: Path, orchestrators: list, width: int) -> None:
    settings = cockpit_config(repo, RULE)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    hub = attach_automation(orchestrator)
    app = create_app(repo, settings, orchestrator)
    try:
        async with app.run_test(size=(width, 24)) as pilot:
            await settled_footer(pilot)
            await pilot.press("a")
            footer = await settled_footer(pilot, AutomationScreen)

            assert_fits(footer, ("escape", "space", "f", "ctrl+q", "f1"), f"automation at {width} columns")
            assert footer.fit == FooterFit()
    finally:
        hub.close()
