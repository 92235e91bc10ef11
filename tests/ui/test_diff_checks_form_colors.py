"""The diff view, the checks screen and the plan editor's form stay readable with 16 colours.

The app runs as on ``TERM=xterm`` without ``COLORTERM``, and the contrast of every text cell is
measured after converting its colours to 16, with the helpers of tests/ui/test_standard_colors.py.
The true-colour tests check that the restyling stays off there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pygments.token import Comment, Keyword, Number, Operator, Text as TextToken
from rich.syntax import ANSI_DARK, Syntax
from textual.geometry import Region
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, SelectionList

from aipass_tui.config import Settings
from aipass_tui.ui.diff_rows import syntax_theme
from aipass_tui.ui.screens.checks import STATUS_STYLES, ChecksScreen, status_style
from aipass_tui.ui.widgets.color_mode import STANDARD_COLORS
from aipass_tui.ui.widgets.diff_view import DiffView
from aipass_tui.ui.widgets.plan_outline import PlanOutline
from aipass_tui.ui.widgets.task_form import TaskForm
from tests.ui.conftest import wait_for
from tests.ui.test_review_support import frozen_review_app
from tests.ui.test_screen_colors import (  # noqa: F401 - pytest fixtures
    empty_app,
    open_editor,
    open_pull_on_file,
    plan_settings,
    problems_on_screen,
    rendered_text,
    repo_dir,
    review_repo,
    settle,
    standard_number,
    true_color,
    write_plan,
    xterm,
)
from tests.ui.test_standard_colors import standard_number as color_number
from tests.ui.test_standard_colors import text_cells, unreadable

SIZES = [(130, 30), (80, 24)]


# Diff view -----------------------------------------------------------------------------------


def first_row(view: DiffView, kind: str) -> int:
    document = view.document
    assert document is not None and document.patch is not None
    return next(index for index, row in enumerate(document.patch.rows) if row.kind == kind)


@pytest.mark.parametrize("size", SIZES)
async def test_diff_view_readable(xterm: None, review_repo: tuple[Path, Settings], frozen_clock: float,
                                  size: tuple[int, int]) -> None:
    app = frozen_review_app(*review_repo)
    async with app.run_test(size=size) as pilot:
        screen = await open_pull_on_file(pilot, "src/config.py")
        view = screen.diff_view
        view.focus()
        view.move_cursor(first_row(view, "added"))
        await settle(pilot)
        focused = unreadable(list(text_cells(view)), "DiffView with focus")
        text = rendered_text(view)
        screen.query_one("FileList").focus()
        await settle(pilot)
        blurred = unreadable(list(text_cells(view)), "DiffView without focus")

        assert "def" in text, "no keyword in view to measure"
        assert "return" in text, "no keyword in view to measure"
        assert focused == []
        assert blurred == []


async def test_split_diff_readable(xterm: None, review_repo: tuple[Path, Settings], frozen_clock: float) -> None:
    app = frozen_review_app(*review_repo)
    async with app.run_test(size=(170, 36)) as pilot:
        screen = await open_pull_on_file(pilot, "src/config.py")
        view = screen.diff_view
        if not view.split:
            view.set_split(True)
        view.focus()
        view.move_cursor(view.layout_row(first_row(view, "removed")))
        await settle(pilot)

        assert view.split
        assert "def" in rendered_text(view), "no keyword in view to measure"
        assert problems_on_screen(pilot) == []


def test_syntax_colors_readable_on_black() -> None:
    theme = syntax_theme(dark=True, standard_colors=True)
    problems: list[str] = []
    for token in ANSI_DARK:
        if token in TextToken.Whitespace:
            continue  # whitespace is drawn as blank cells
        number = standard_number(theme.get_style_for_token(token))
        if number is not None:
            problems += unreadable([(str(token), number, 0)], "syntax colour of")

    assert problems == []


def test_keywords_numbers_and_operators_apart() -> None:
    theme = syntax_theme(dark=True, standard_colors=True)
    keyword = standard_number(theme.get_style_for_token(Keyword))
    number = standard_number(theme.get_style_for_token(Number.Integer))
    word_operator = standard_number(theme.get_style_for_token(Operator.Word))
    keyword_type = standard_number(theme.get_style_for_token(Keyword.Type))

    assert keyword is not None
    assert keyword != number
    assert keyword == word_operator
    assert keyword != keyword_type


def test_syntax_theme_unchanged_in_true_color() -> None:
    ansi_dark = Syntax.get_theme("ansi_dark")
    ansi_light = Syntax.get_theme("ansi_light")
    dark = syntax_theme(dark=True)
    light = syntax_theme(dark=False, standard_colors=True)

    for token in (*ANSI_DARK, Number.Integer, Comment.Single):
        assert dark.get_style_for_token(token) == ansi_dark.get_style_for_token(token), token
        assert light.get_style_for_token(token) == ansi_light.get_style_for_token(token), token


# Checks screen --------------------------------------------------------------------------------


async def open_checks(pilot: Pilot) -> ChecksScreen:
    await open_pull_on_file(pilot, "src/config.py")
    await pilot.press("t")
    screen = pilot.app.screen
    assert isinstance(screen, ChecksScreen)
    output = screen.query_one("#check-output")
    await wait_for(pilot, lambda: len(output.lines) > 1, message="check output read")
    await settle(pilot)
    return screen


@pytest.mark.parametrize("size", SIZES)
async def test_checks_screen_readable(xterm: None, review_repo: tuple[Path, Settings], frozen_clock: float,
                                      size: tuple[int, int]) -> None:
    app = frozen_review_app(*review_repo)
    async with app.run_test(size=size) as pilot:
        screen = await open_checks(pilot)
        table = screen.query_one("#checks", DataTable)
        failed_row = table.cursor_row
        on_failed = problems_on_screen(pilot)
        text_on_failed = rendered_text(table)
        other_row = 1 - failed_row
        table.move_cursor(row=other_row, animate=False)
        await wait_for(pilot, lambda: table.cursor_row == other_row, message="cursor on the passing check")
        await settle(pilot)
        on_passed = problems_on_screen(pilot)
        text_on_passed = rendered_text(table)

        assert table.row_count == 2
        assert "failed" in text_on_failed, "the cursor row rendered no status to measure"
        assert "failed" in text_on_passed, "the failed row rendered no status to measure"
        assert on_failed == []
        assert on_passed == []
        assert screen.has_class(STANDARD_COLORS)


@pytest.mark.parametrize("status", list(STATUS_STYLES))
def test_check_status_word_readable(status: str) -> None:
    number = standard_number(status_style(status, standard_colors=True))

    assert number is not None
    assert unreadable([(status, number, 0)], "status word") == []


def test_check_status_failed_and_passed_apart() -> None:
    assert standard_number(status_style("failed", True)) != standard_number(status_style("passed", True))


async def test_checks_screen_keeps_true_colors(true_color: None, review_repo: tuple[Path, Settings],
                                               frozen_clock: float) -> None:
    app = frozen_review_app(*review_repo)
    async with app.run_test(size=(130, 30)) as pilot:
        screen = await open_checks(pilot)
        table = screen.query_one("#checks", DataTable)
        styles = {str(table.get_row_at(row)[0]): table.get_row_at(row)[0].style for row in range(table.row_count)}

        assert not screen.has_class(STANDARD_COLORS)
        assert styles == {"failed": "bold red", "passed": "green"}


# Plan editor form -----------------------------------------------------------------------------


async def open_task(pilot: Pilot, plan_path: Path, task_line: int) -> TaskForm:
    """Open the editor with the outline's cursor on ``task_line`` (2 is the first task)."""
    editor = await open_editor(pilot, plan_path)
    outline = editor.query_one(PlanOutline)
    outline.focus()
    await pilot.press(*["down"] * task_line)
    await wait_for(pilot, lambda: outline.cursor_line == task_line, message=f"cursor on outline line {task_line}")
    form = editor.query_one(TaskForm)
    await wait_for(pilot, lambda: form.query_one("#depends", SelectionList).option_count == 2,
                   message="two tasks offered as dependencies")
    await settle(pilot)
    return form


def check_marks(depends: SelectionList[str]) -> dict[bool, set[tuple[int, int, bool]]]:
    """Return the colours and boldness of the check marks, keyed by whether the option is selected."""
    marks: dict[bool, set[tuple[int, int, bool]]] = {True: set(), False: set()}
    width, height = depends.outer_size
    for line, strip in enumerate(depends.render_lines(Region(0, 0, width, height))):
        if line >= depends.option_count:
            break
        selected = depends.get_option_at_index(line).value in depends.selected
        segment = next(segment for segment in strip if segment.text == "X")
        style = segment.style
        assert style is not None, f"check mark on line {line} has no style"
        assert style.color is not None, f"check mark on line {line} has no colour"
        assert style.bgcolor is not None, f"check mark on line {line} has no background"
        marks[selected].add((color_number(style.color), color_number(style.bgcolor), bool(style.bold)))
    return marks


@pytest.mark.parametrize("size", SIZES)
async def test_task_form_readable(xterm: None, repo_dir: Path, frozen_clock: float, size: tuple[int, int]) -> None:
    plan_path = write_plan(repo_dir)
    app = empty_app(repo_dir, plan_settings())
    async with app.run_test(size=size) as pilot:
        form = await open_task(pilot, plan_path, 4)
        if not form.region.area:
            await pilot.press("f4")
            await wait_for(pilot, lambda: form.region.area > 0, message="form shown")
            await settle(pilot)
        depends = form.query_one("#depends", SelectionList)
        blurred = unreadable(list(text_cells(form)), "TaskForm")
        for widget in form.query("*"):
            if widget.display and widget.region.area:
                blurred += unreadable(list(text_cells(widget)), type(widget).__name__)
        text = "".join(rendered_text(widget) for widget in form.query("*") if widget.region.area)
        glob_input = form.query_one("#glob-input", Input)
        glob_input.focus()
        await settle(pilot)
        focused = unreadable(list(text_cells(glob_input)), "focused glob input")
        depends.focus()
        await settle(pilot)
        focused += unreadable(list(text_cells(depends)), "focused depends list")
        marks = check_marks(depends)

        assert "add a glob" in text, "no placeholder in view to measure"
        assert "▼" in text, "no Select arrow in view to measure"
        assert depends.selected == ["api"]
        assert blurred == []
        assert focused == []
        assert marks[True], "no checked box rendered"
        assert marks[False], "no unchecked box rendered"
        assert marks[True].isdisjoint(marks[False]), f"checked and unchecked marks look alike: {marks}"
        assert form.has_class(STANDARD_COLORS)


async def test_task_form_keeps_true_colors(true_color: None, repo_dir: Path, frozen_clock: float) -> None:
    plan_path = write_plan(repo_dir)
    app = empty_app(repo_dir, plan_settings())
    async with app.run_test(size=(130, 30)) as pilot:
        form = await open_task(pilot, plan_path, 4)

        assert not form.has_class(STANDARD_COLORS)
