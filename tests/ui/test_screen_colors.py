"""The review, pull request and plan screens stay readable with only the 16 standard colours.

The app runs as on ``TERM=xterm`` without ``COLORTERM``, and the contrast of every text cell is
measured after converting its colours to 16, as tests/ui/test_standard_colors.py does for the
main and zoom screens. The true-colour tests check that the restyling stays off there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import textual.constants
from rich.color import Color, ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.app import App
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, TextArea

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.plans import create_plan
from aipass_tui.core.pulls import CheckResult, PullRequest, PullStatus
from aipass_tui.core.store import Paths
from aipass_tui.ui.app import AipassApp
from aipass_tui.ui.screens.plan_editor import SOURCE_THEME, STANDARD_SOURCE_THEME, PlanEditorScreen
from aipass_tui.ui.screens.plan_run import PlanRunScreen
from aipass_tui.ui.screens.pull import PullScreen
from aipass_tui.ui.screens.review import ReviewScreen, checks_label, status_label
from aipass_tui.ui.widgets.color_mode import STANDARD_COLORS
from aipass_tui.ui.widgets.file_list import FileList
from aipass_tui.ui.widgets.plan_outline import PlanOutline
from aipass_tui.ui.widgets.task_form import TaskForm
from tests.ui import scenes
from tests.ui.conftest import wait_for
from tests.ui.scenes import T0
from tests.ui.test_plan_editor_snapshots import PLAN
from tests.ui.test_review_support import frozen_review_app, review_scene
from tests.ui.test_standard_colors import text_cells, unreadable, visible_widgets

SIZES = [(130, 30), (80, 24)]


@pytest.fixture
def xterm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let Textual detect the colour system as on ``TERM=xterm`` without ``COLORTERM``."""
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("COLORTERM", raising=False)


@pytest.fixture
def true_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


@pytest.fixture(scope="module")
def review_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """Three pull requests in a real repository, built once: the tests only read it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        clock.freeze(T0)
        try:
            return review_scene(tmp_path_factory.mktemp("scene"), monkeypatch)
        finally:
            clock.unfreeze()


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def problems_on_screen(pilot: Pilot) -> list[str]:
    problems: list[str] = []
    for widget in visible_widgets(pilot):
        problems += unreadable(list(text_cells(widget)), type(widget).__name__)
    return problems


def lines_of(widget: Widget) -> list[Segment]:
    width, height = widget.outer_size
    return [segment for strip in widget.render_lines(Region(0, 0, width, height)) for segment in strip]


def rendered_text(widget: Widget) -> str:
    return "".join(text for text, _fg, _bg in text_cells(widget))


async def settle(pilot: Pilot) -> None:
    await pilot.pause(0.1)
    await pilot.wait_for_scheduled_animations()


# Review list and pull request ---------------------------------------------------------------


async def open_review_on_second_row(pilot: Pilot) -> ReviewScreen:
    await pilot.press("p")
    screen = pilot.app.screen
    assert isinstance(screen, ReviewScreen)
    await wait_for(pilot, lambda: screen.loaded, message="pull requests loaded")
    table = screen.query_one("#pulls", DataTable)
    await wait_for(pilot, lambda: table.row_count == 3, message="three pull requests listed")
    await pilot.press("down")
    await wait_for(pilot, lambda: table.cursor_row == 1, message="cursor on the second row")
    await settle(pilot)
    return screen


async def open_pull_on_file(pilot: Pilot, path: str) -> PullScreen:
    review = await open_review_on_second_row(pilot)
    table = review.query_one("#pulls", DataTable)
    table.move_cursor(row=table.get_row_index("1"), animate=False)
    await pilot.press("enter")
    screen = pilot.app.screen
    assert isinstance(screen, PullScreen)
    files = screen.query_one(FileList)
    files.move_cursor(files.index_of(path))
    await wait_for(pilot, lambda: screen.document is not None and screen.document.path == path, message="diff loaded")
    await settle(pilot)
    return screen


@pytest.mark.parametrize("size", SIZES)
async def test_review_list_readable(xterm: None, review_repo: tuple[Path, Settings], frozen_clock: float,
                                    size: tuple[int, int]) -> None:
    app = frozen_review_app(*review_repo)
    assert app.console.color_system == "standard"
    async with app.run_test(size=size) as pilot:
        screen = await open_review_on_second_row(pilot)
        table = screen.query_one("#pulls", DataTable)

        assert "#2" in rendered_text(table), "the cursor row rendered no text to measure"
        assert problems_on_screen(pilot) == []
        assert screen.has_class(STANDARD_COLORS)


@pytest.mark.parametrize("size", SIZES)
async def test_file_list_readable(xterm: None, review_repo: tuple[Path, Settings], frozen_clock: float,
                                  size: tuple[int, int]) -> None:
    app = frozen_review_app(*review_repo)
    async with app.run_test(size=size) as pilot:
        screen = await open_pull_on_file(pilot, "src/config.py")
        files = screen.query_one(FileList)
        files.focus()
        await settle(pilot)
        focused = unreadable(list(text_cells(files)), "FileList with focus")
        text = rendered_text(files)
        screen.diff_view.focus()
        await settle(pilot)
        blurred = unreadable(list(text_cells(files)), "FileList without focus")

        assert "config.py" in text, "the cursor row rendered no text to measure"
        assert focused == []
        assert blurred == []
        assert files.has_class(STANDARD_COLORS)


def pull_with(status: PullStatus, checks: list[CheckResult] | None = None) -> PullRequest:
    return PullRequest(id="1", agent="alpha", request="r-1", title="Add a login form", status=status, branch="aipass/x",
                       target="main", base="b" * 40, head="c" * 40, created_at=T0, updated_at=T0, checks=checks or [])


def standard_number(style: str | Style) -> int | None:
    """Return the 0-15 colour that a label's foreground becomes in the app, or None when it has none.

    Textual first turns ANSI colour names such as ``red`` into its ANSI theme's true colours.
    """
    color = Style.parse(style).color if isinstance(style, str) else style.color
    if color is None:
        return None
    if color.is_system_defined:
        color = Color.from_triplet(color.get_truecolor(App().ansi_theme))
    return color.downgrade(ColorSystem.STANDARD).number


@pytest.mark.parametrize("status", list(PullStatus))
def test_pull_status_word_readable(status: PullStatus) -> None:
    number = standard_number(status_label(pull_with(status), standard_colors=True).style)

    if number is not None:
        assert unreadable([(status.value, number, 0)], "status word") == []


def test_failed_checks_word_readable() -> None:
    failing = [CheckResult(command="make test", status="failed")]
    number = standard_number(checks_label(pull_with(PullStatus.OPEN, failing), standard_colors=True).style)

    assert number is not None
    assert unreadable([("failed 1/1", number, 0)], "checks word") == []


def test_merged_and_conflict_stay_apart() -> None:
    merged = standard_number(status_label(pull_with(PullStatus.MERGED), standard_colors=True).style)
    conflict = standard_number(status_label(pull_with(PullStatus.CONFLICT), standard_colors=True).style)

    assert merged != conflict


# Plan progress and plan editor --------------------------------------------------------------


def plan_settings() -> Settings:
    return scenes.settings_for({"claude-a": ("claude", "sonnet"), "codex-b": ("codex", None), "gemini-c": ("gemini", None)})


def empty_app(repo: Path, settings: Settings) -> AipassApp:
    return scenes.app_for(repo, settings, scenes.Snapshot(agents={}, requests=[], runs={}))


def write_plan(repo: Path) -> Path:
    paths = Paths(repo)
    paths.plans.mkdir(parents=True)
    plan_path = paths.plans / "FPLAN-0003_add-a-login-form.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    return plan_path


async def open_progress_on_second_row(pilot: Pilot, plan_path: Path) -> PlanRunScreen:
    screen = PlanRunScreen(plan_path)
    await pilot.app.push_screen(screen)
    await wait_for(pilot, lambda: screen.progress is not None, message="progress read")
    table = screen.query_one("#plan-tasks", DataTable)
    await wait_for(pilot, lambda: table.row_count == 4, message="four tasks listed")
    await pilot.press("down")
    await wait_for(pilot, lambda: table.cursor_row == 1, message="cursor on the second row")
    await settle(pilot)
    return screen


async def open_editor(pilot: Pilot, plan_path: Path) -> PlanEditorScreen:
    editor = PlanEditorScreen(plan_path)
    await pilot.app.push_screen(editor)
    await wait_for(pilot, lambda: editor.loaded and editor.checked_text == editor.source.text, message="plan checked")
    await settle(pilot)
    return editor


@pytest.mark.parametrize("size", SIZES)
async def test_plan_progress_readable(xterm: None, repo_dir: Path, frozen_clock: float, size: tuple[int, int]) -> None:
    plan_path = write_plan(repo_dir)
    app = empty_app(repo_dir, plan_settings())
    async with app.run_test(size=size) as pilot:
        screen = await open_progress_on_second_row(pilot, plan_path)
        table = screen.query_one("#plan-tasks", DataTable)

        assert "form" in rendered_text(table), "the cursor row rendered no text to measure"
        assert problems_on_screen(pilot) == []
        assert screen.has_class(STANDARD_COLORS)


@pytest.mark.parametrize("size", SIZES)
async def test_plan_outline_readable(xterm: None, repo_dir: Path, frozen_clock: float, size: tuple[int, int]) -> None:
    plan_path = write_plan(repo_dir)
    app = empty_app(repo_dir, plan_settings())
    async with app.run_test(size=size) as pilot:
        editor = await open_editor(pilot, plan_path)
        outline = editor.query_one(PlanOutline)
        outline.focus()
        await pilot.press("down", "down")
        await wait_for(pilot, lambda: outline.cursor_line == 2, message="cursor on the first task")
        await settle(pilot)
        focused = unreadable(list(text_cells(outline)), "PlanOutline with focus")
        text = rendered_text(outline)
        editor.query_one(TaskForm).focus()
        await settle(pilot)
        blurred = unreadable(list(text_cells(outline)), "PlanOutline without focus")

        assert "api" in text, "the highlighted task rendered no text to measure"
        assert focused == []
        assert blurred == []
        assert outline.has_class(STANDARD_COLORS)


async def test_plan_source_comments_readable(xterm: None, repo_dir: Path, frozen_clock: float) -> None:
    settings = plan_settings()
    created = create_plan(Paths(repo_dir), settings, "FPLAN", "Add a login form", date="2026-05-28")
    app = empty_app(repo_dir, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, created.path)
        await pilot.press("f4")
        source = editor.query_one("#source", TextArea)
        await wait_for(pilot, lambda: source.region.area > 0, message="TOML source shown")
        source.focus()
        await settle(pilot)
        text = rendered_text(source)
        problems = unreadable(list(text_cells(source)), "TOML source")
        source.select_all()
        await settle(pilot)
        selected = unreadable(list(text_cells(source)), "selected TOML source")
        reversed_cells = [segment.text for segment in lines_of(source) if segment.style and segment.style.reverse]

        assert source.theme == STANDARD_SOURCE_THEME
        assert "# How a plan runs" in text, "no comment line in view to measure"
        assert problems == []
        assert selected == []
        assert reversed_cells, "the selection drew no cell in reverse video"


async def test_plan_screens_keep_true_colors(true_color: None, repo_dir: Path, frozen_clock: float) -> None:
    plan_path = write_plan(repo_dir)
    app = empty_app(repo_dir, plan_settings())
    async with app.run_test(size=(80, 24)) as pilot:
        editor = await open_editor(pilot, plan_path)
        outline_marked = editor.query_one(PlanOutline).has_class(STANDARD_COLORS)
        source_theme = editor.source.theme
        editor.dismiss()
        await wait_for(pilot, lambda: not isinstance(app.screen, PlanEditorScreen), message="editor closed")
        progress = await open_progress_on_second_row(pilot, plan_path)

        assert not outline_marked
        assert source_theme == SOURCE_THEME
        assert not progress.has_class(STANDARD_COLORS)


async def test_review_screens_keep_true_colors(true_color: None, review_repo: tuple[Path, Settings],
                                               frozen_clock: float) -> None:
    app = frozen_review_app(*review_repo)
    async with app.run_test(size=(130, 30)) as pilot:
        pull = await open_pull_on_file(pilot, "src/config.py")
        review = next(screen for screen in app.screen_stack if isinstance(screen, ReviewScreen))
        status = review.query_one("#pulls", DataTable).get_cell("2", "status")

        assert not review.has_class(STANDARD_COLORS)
        assert status.style == "bold red"
        assert not pull.query_one(FileList).has_class(STANDARD_COLORS)


def test_status_words_read_as_words() -> None:
    assert status_label(pull_with(PullStatus.CHANGES_REQUESTED)).plain == "changes requested"
    assert status_label(pull_with(PullStatus.CONFLICT)).plain == "conflict"
