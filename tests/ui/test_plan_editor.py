"""Pilot tests of the plan editor, the plan list and the plan progress screen, on real repositories."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.widgets import Input, OptionList, Select, SelectionList

from aipass_tui.core.plans import create_plan, load_state
from aipass_tui.core.store import Paths
from aipass_tui.ui import bindings
from aipass_tui.ui.app import create_app
from aipass_tui.ui.screens.confirm import ConfirmScreen
from aipass_tui.ui.screens.main import MainScreen
from aipass_tui.ui.screens.plan_editor import PlanEditorScreen
from aipass_tui.ui.screens.plan_editor_outline import NameDialog
from aipass_tui.ui.screens.plan_picker import PlanPickerScreen
from aipass_tui.ui.screens.plan_run import PhaseBar, PlanRunScreen
from aipass_tui.ui.widgets.plan_outline import OutlineKey, PlanOutline
from tests.ui.conftest import cockpit_config, start_orchestrator, wait_for

SIZE = (80, 24)
TWO_PHASES = '''\
# A plan written by hand; this comment must survive every edit.
title = "Ship the widget"
goal = "The widget ships"

[[phases]]
name = "Build"
goal = "Both halves exist"

[[phases.tasks]]
id = "left"
agent = "alpha"  # the left half
title = "lines=2 left half"
prompt = "Build the left half"
files = ["left/**"]

[[phases.tasks]]
id = "right"
agent = "beta"
title = "lines=2 right half"
prompt = "Build the right half"
files = ["right/**"]

[[phases]]
name = "Join"
goal = "The halves are joined"

[[phases.tasks]]
id = "join"
agent = "alpha"
title = "lines=1 join them"
prompt = "Join the halves"
files = ["joined.txt"]
depends_on = ["left"]
'''


def write_plan(repo: Path, text: str, name: str = "FPLAN-0001_widget.toml") -> Path:
    folder = repo / ".aipass" / "plans"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def toasts(app) -> str:
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


def problem_text(editor: PlanEditorScreen) -> list[str]:
    return [str(problem) for problem in editor.problems]


async def open_editor(app, pilot, path: Path) -> PlanEditorScreen:
    editor = PlanEditorScreen(path)
    await app.push_screen(editor)
    await wait_for(pilot, lambda: editor.loaded and editor.checked_text == editor.source.text, message="plan loaded and checked")
    return editor


async def settled(pilot, editor: PlanEditorScreen) -> None:
    """Wait until the problems belong to the text now in the source."""
    await wait_for(pilot, lambda: editor.checked_text == editor.source.text, message="validation caught up")


def plan_check(repo: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aipass_tui", "plan", "check", str(path), "--repo", str(repo)],
        capture_output=True, text=True, timeout=60, cwd=repo,
    )


async def test_build_plan_with_keyboard_only(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("P")
        picker = app.screen
        assert isinstance(picker, PlanPickerScreen)
        await wait_for(pilot, lambda: picker.query_one("#template", Select).value == "FPLAN", message="templates listed")
        await pilot.press("ctrl+n", "tab")
        await pilot.press(*"Login form")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanEditorScreen), message="editor opened")
        editor = app.screen
        await wait_for(pilot, lambda: editor.loaded and editor.checked_text == editor.source.text, message="loaded")
        assert editor.path.name == "FPLAN-0001_login-form.toml"
        outline = editor.query_one(PlanOutline)
        assert outline.has_focus

        # The template's placeholders are problems until each is replaced: F8 jumps to one, and
        # the keys below select the rest of its line and type it again with "Done" in its place.
        assert len(editor.problems) == 11
        assert all("placeholder '<" in problem.message for problem in editor.problems)
        while editor.problems:
            count = len(editor.problems)
            await pilot.press("f8")
            assert editor.source.has_focus
            row, column = editor.source.cursor_location
            line = editor.source.document.get_line(row)
            assert line[column] == "<", line
            rest = line[line.index(">", column) + 1:]
            await pilot.press("shift+end", *"Done", *rest)
            await settled(pilot, editor)
            assert len(editor.problems) == count - 1, problem_text(editor)
        assert "<" not in editor.source.text.split("\ntitle = ", 1)[1]
        await pilot.press("f3", "home")
        assert outline.has_focus
        assert outline.selected == OutlineKey("plan")

        # A new phase after "Build", named and given a goal in the form.
        await pilot.press("down", "p")
        assert outline.selected == OutlineKey("phase", 1)
        await pilot.press("enter", "ctrl+u", *"Ship", "tab", *"Go")
        # Its first task: title, prompt and one glob.
        await pilot.press("f3", "a")
        assert outline.selected == OutlineKey("task", 1, 0)
        await pilot.press("enter", *"Notes", "tab", *"Add notes", "tab")
        await pilot.press(*"NEWS", "enter")
        # The second task depends on the first.
        await pilot.press("f3", "a")
        assert outline.selected == OutlineKey("task", 1, 1)
        await pilot.press("enter", *"Tag", "tab", *"Bump it", "tab", *"VERSION", "enter", "tab")
        depends = editor.query_one("#depends", SelectionList)
        assert depends.has_focus
        await pilot.press("end", "space")
        await settled(pilot, editor)
        assert editor.problems == [], problem_text(editor)
        assert editor.dirty

        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not editor.dirty, message="saved")

    saved = editor.path.read_text(encoding="utf-8")
    assert "# A task is one request to one agent." in saved  # the template's comments are kept
    assert 'name = "Ship"' in saved
    assert 'goal = "Go"' in saved
    assert 'title = "Tag"' in saved
    assert 'prompt = "Bump it"' in saved
    assert 'files = ["VERSION"]' in saved
    assert 'depends_on = ["task-4"]' in saved
    result = plan_check(repo, editor.path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK (2 phase(s), 5 task(s))" in result.stdout


async def test_jump_to_problem_and_fix_it(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, TWO_PHASES)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(app, pilot, path)
        assert editor.problems == []
        await pilot.press("f4")
        source = editor.source
        assert source.has_focus
        row = source.text.split("\n").index('agent = "beta"')
        source.move_cursor((row, 9))
        await pilot.press("delete", "delete", "delete", "delete", *"ghost")
        await settled(pilot, editor)
        assert problem_text(editor) == [
            f".aipass/plans/{path.name}:{row + 1}:9: phases[0].tasks[1].agent: unknown agent 'ghost': "
            "use one of alpha, beta, or add [agents.ghost] to .aipass/config.toml"
        ]
        assert editor.query_one("#problems", OptionList).option_count == 1
        assert str(editor.query_one(PlanOutline).root.children[0].children[1].label).startswith("! right")

        await pilot.press("f3", "home", "f8")
        assert source.has_focus
        assert source.cursor_location == (row, 8)
        assert editor.query_one(PlanOutline).selected == OutlineKey("task", 0, 1)
        await pilot.press("right", *(["delete"] * 5), *"beta")
        await settled(pilot, editor)
        assert editor.problems == []
        assert editor.has_class("-clean")
        assert editor.query_one("#problems", OptionList).option_count == 0
        assert source.text == TWO_PHASES


async def test_form_edit_keeps_comments_and_undo(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, TWO_PHASES)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(app, pilot, path)
        await pilot.press("down", "down", "enter")
        title = editor.query_one("#task-title", Input)
        assert title.has_focus
        assert title.value == "lines=2 left half"
        await pilot.press("end", *" now")
        assert 'title = "lines=2 left half now"' in editor.source.text
        assert 'agent = "alpha"  # the left half' in editor.source.text
        assert "# A plan written by hand" in editor.source.text

        # The agent select writes the agent, keeping the line's comment.
        editor.query_one("#agent", Select).value = "beta"
        await pilot.pause()
        assert 'agent = "beta"  # the left half' in editor.source.text

        await pilot.press("ctrl+z")
        await settled(pilot, editor)
        assert 'agent = "alpha"  # the left half' in editor.source.text
        assert editor.query_one("#agent", Select).value == "alpha"
        await pilot.press("ctrl+y")
        await settled(pilot, editor)
        assert editor.query_one("#agent", Select).value == "beta"

        # A TOML edit shows in the form once it parses.
        source = editor.source
        row = source.text.split("\n").index('title = "lines=2 left half now"')
        source.replace('"typed in the source"', (row, 8), (row, len(source.document.get_line(row))))
        await settled(pilot, editor)
        assert title.value == "typed in the source"


async def test_outline_structure_keys(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, TWO_PHASES)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators), low_bandwidth=False)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        editor = await open_editor(app, pilot, path)
        outline = editor.query_one(PlanOutline)

        def tasks() -> list[list[str]]:
            return [[entry.id for entry in phase.tasks] for phase in editor._current_document().outline()]

        await pilot.press("down", "down")  # task "left"
        await pilot.press("c")
        assert tasks() == [["left", "left-copy", "right"], ["join"]]
        assert outline.selected == OutlineKey("task", 0, 1)
        await pilot.press("J", "J")
        assert tasks() == [["left", "right"], ["left-copy", "join"]]
        assert outline.selected == OutlineKey("task", 1, 0)
        await pilot.press("r")
        assert isinstance(app.screen, NameDialog)
        await pilot.press("ctrl+u", *"right", "enter")
        await wait_for(pilot, lambda: "already used" in toasts(app), message="duplicate id refused")
        assert tasks() == [["left", "right"], ["left-copy", "join"]]
        await pilot.press("r", "ctrl+u", *"glue", "enter")
        assert tasks() == [["left", "right"], ["glue", "join"]]
        await pilot.press("down", "r", "ctrl+u", *"joint", "enter")
        await pilot.press("up", "up", "up", "up", "d")  # delete task "left": "joint" no longer depends on it
        assert tasks() == [["right"], ["glue", "joint"]]
        assert "depends_on" not in editor.source.text
        await pilot.press("ctrl+z")
        assert 'depends_on = ["left"]' in editor.source.text
        await settled(pilot, editor)
        assert tasks() == [["left", "right"], ["glue", "joint"]]
        await pilot.press("home", "down", "c")  # duplicate phase "Build"
        await settled(pilot, editor)
        assert tasks() == [["left", "right"], ["left-copy", "right-copy"], ["glue", "joint"]]
        assert "# A plan written by hand" in editor.source.text
        assert editor.problems == [], problem_text(editor)


async def test_run_plan_from_editor(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, TWO_PHASES)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(app, pilot, path)
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanRunScreen), message="progress screen")
        progress_screen = app.screen

        def status() -> str:
            progress = progress_screen.progress
            return progress.status if progress else ""

        await wait_for(pilot, lambda: status() == "completed", timeout=30, message="plan completed")
        progress = progress_screen.progress
        assert [(row.id, row.status, row.agent) for row in progress.tasks] == [
            ("left", "succeeded", "alpha"), ("right", "succeeded", "beta"), ("join", "succeeded", "alpha"),
        ]
        bars = progress_screen.query(PhaseBar)
        assert [str(bar.query_one(".phase-count").render()) for bar in bars] == ["2/2 tasks done", "1/1 tasks done"]
        state = load_state(Paths(repo), "FPLAN-0001")
        assert state is not None
        assert state.status.value == "completed"
        await pilot.press("e")
        assert app.screen is editor


FAILING = '''\
title = "Two tasks that fail"
goal = "Recover from failures"

[[phases]]
name = "Only"
goal = "Both tasks end"

[[phases.tasks]]
id = "bad"
agent = "alpha"
title = "exit=3 first"
prompt = "Fail until fixed"
files = ["a.txt"]

[[phases.tasks]]
id = "worse"
agent = "beta"
title = "exit=4 second"
prompt = "Fail, then get skipped"
files = ["b.txt"]
'''


async def test_progress_retry_and_skip(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, FAILING, "FPLAN-0005_failing.toml")
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        progress_screen = PlanRunScreen(path)
        await app.push_screen(progress_screen)
        await wait_for(pilot, lambda: progress_screen.progress is not None, message="progress read")
        assert progress_screen.progress.status == "not started"
        await pilot.press("f5")

        def statuses() -> dict[str, str]:
            progress = progress_screen.progress
            return {row.id: row.status for row in progress.tasks} if progress else {}

        await wait_for(pilot, lambda: statuses() == {"bad": "failed", "worse": "failed"}, timeout=30, message="both failed")
        assert progress_screen.progress.status == "paused"
        detail = str(progress_screen.query_one("#task-detail").render())
        assert detail.startswith("bad · alpha · failed · request ")
        assert detail.endswith("failed: command failed: exit code 3")

        await pilot.press("down", "s")
        await wait_for(pilot, lambda: statuses()["worse"] == "skipped", message="skipped")
        path.write_text(FAILING.replace("exit=3 first", "lines=1 first"), encoding="utf-8")
        await pilot.press("up", "r")
        await wait_for(pilot, lambda: progress_screen.progress.status == "completed", timeout=30, message="completed")
        assert statuses() == {"bad": "succeeded", "worse": "skipped"}
        assert [row.attempts for row in progress_screen.progress.tasks] == [2, 1]


async def test_external_change_is_offered_for_reload(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, TWO_PHASES)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        editor = await open_editor(app, pilot, path)

        # Without unsaved edits, a change on disk is loaded at once.
        elsewhere = TWO_PHASES.replace('goal = "The widget ships"', 'goal = "Changed elsewhere"')
        _write_elsewhere(path, elsewhere)
        await wait_for(pilot, lambda: editor.source.text == elsewhere, message="reloaded")
        assert not editor.dirty

        # With unsaved edits, the user is asked; "n" keeps them.
        await pilot.press("enter", "end", *" (mine)")
        assert editor.dirty
        mine = editor.source.text
        second = elsewhere.replace("Changed elsewhere", "Changed again")
        _write_elsewhere(path, second)
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), message="reload offered")
        assert editor.source.text == mine
        await pilot.press("n")
        assert editor.source.text == mine
        assert editor.dirty

        # Saving now replaces the file: the user chose so.
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: path.read_text(encoding="utf-8") == mine, message="saved over")

        # A save that meets a change made meanwhile writes nothing and offers the reload; "y" loads it.
        await pilot.press(*" again")
        third = second.replace("Changed again", "Changed a third time")
        _write_elsewhere(path, third)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), message="reload offered on save")
        assert path.read_text(encoding="utf-8") == third
        await pilot.press("y")
        assert editor.source.text == third
        await pilot.press("ctrl+z")
        assert editor.source.text == mine.replace("(mine)", "(mine) again")


def _write_elsewhere(path: Path, text: str) -> None:
    """Save the plan as another editor would: a new file renamed over the old one, with a new mtime."""
    temp = path.with_name(path.name + ".other")
    temp.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.replace(temp, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def test_unreadable_plan_and_bad_title(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    broken = write_plan(repo, "", "FPLAN-0002_broken.toml")
    broken.write_bytes(b'title = "caf\xe9"\n')
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await app.push_screen(PlanEditorScreen(broken))
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen), message="editor closed")
        await wait_for(pilot, lambda: "not UTF-8" in toasts(app), message="reason shown")
        assert broken.read_bytes() == b'title = "caf\xe9"\n'

        await pilot.press("P")
        picker = app.screen
        await wait_for(pilot, lambda: picker.query_one("#template", Select).value == "FPLAN", message="templates listed")
        await wait_for(pilot, lambda: picker.plans, message="plans listed")
        assert [plan.plan_id for plan in picker.plans] == ["FPLAN-0002"]
        await pilot.press("ctrl+n", "tab", "space", "enter")
        await wait_for(pilot, lambda: "empty plan title" in str(picker.query_one("#picker-error").render()), message="error shown")
        assert app.screen is picker
        assert sorted(p.name for p in (repo / ".aipass" / "plans").glob("*.toml")) == ["FPLAN-0002_broken.toml"]


async def test_run_refused_while_plan_has_problems(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = create_plan(Paths(repo), settings, "FPLAN", "Needs work").path
    text = path.read_text(encoding="utf-8")
    filled = re.sub(r"<([^<>]+)>", lambda match: re.sub(r"\W+", " ", match.group(1)).strip(), text)
    path.write_text(filled.replace('files = ["tests/**"]', 'files = ["../outside/**"]'), encoding="utf-8")
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        editor = await open_editor(app, pilot, path)
        assert len(editor.problems) == 1
        assert "phases[0].tasks[1].files[0]" in str(editor.problems[0])
        await pilot.press("f5")
        await wait_for(pilot, lambda: "fix them first" in toasts(app), message="run refused")
        assert app.screen is editor
        assert load_state(Paths(repo), editor.plan_id) is None
        assert orchestrator.snapshot().requests == []


async def test_run_rejected_with_placeholders(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = create_plan(Paths(repo), settings, "FPLAN", "Untouched").path
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        editor = await open_editor(app, pilot, path)
        assert len(editor.problems) == 11
        summary = str(editor.query_one("#problems-summary").render())
        assert summary.startswith("11 problems")
        first = str(editor.query_one("#problems", OptionList).get_option_at_index(0).prompt)
        assert first.startswith(f".aipass/plans/{path.name}:17:1: goal: placeholder '<Who can do what")
        await pilot.press("f5")
        await wait_for(pilot, lambda: "the plan has 11 problem(s): fix them first" in toasts(app), message="run refused")
        assert app.screen is editor
        assert load_state(Paths(repo), editor.plan_id) is None
        assert orchestrator.snapshot().requests == []


async def test_palette_runs_outline_actions(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    path = write_plan(repo, TWO_PHASES)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_editor(app, pilot, path)
        outline = editor.query_one(PlanOutline)
        outline.focus()
        await pilot.press("down", "down")  # task "left"
        assert outline.selected == OutlineKey("task", 0, 0)

        # With the outline focused, the palette lists each of its actions with its description.
        await pilot.press("ctrl+p")
        palette = app.screen
        assert isinstance(palette, CommandPalette)
        commands = palette.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, message="palette lists commands")
        listed = "\n".join(str(commands.get_option_at_index(index).prompt) for index in range(commands.option_count))
        for action in bindings.actions(bindings.PLAN_OUTLINE):
            assert action.description in listed, action.id
            assert action.help in listed, action.id

        # Choosing one runs it on the outline's selection, as its key would.
        await pilot.press(*"Duplicate")
        await wait_for(pilot, lambda: "Duplicate" in str(commands.get_option_at_index(0).prompt), message="palette finds Duplicate")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is editor, message="palette closed")
        await settled(pilot, editor)
        tasks = [[entry.id for entry in phase.tasks] for phase in editor._current_document().outline()]
        assert tasks == [["left", "left-copy", "right"], ["join"]]
        assert outline.selected == OutlineKey("task", 0, 1)
        assert outline.has_focus

        # With the source focused, the outline's actions are not offered.
        await pilot.press("f4")
        assert editor.source.has_focus
        await pilot.press("ctrl+p")
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, message="palette lists commands")
        listed = "\n".join(str(commands.get_option_at_index(index).prompt) for index in range(commands.option_count))
        assert "Duplicate" not in listed
        assert "Save" in listed
        await pilot.press("escape")
