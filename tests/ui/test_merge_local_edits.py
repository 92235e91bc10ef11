"""The merge dialog after the user's own uncommitted edits stop a merge.

A real orchestrator runs an agent that edits files in its worktree. Each test then edits the
same files in the main checkout without committing them, as a user would, and merges from the
pull request screen. The dialog must name the files, say what to do, and offer to merge again
instead of a rebase request, which cannot help with edits that are not committed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Static

from aipass_tui.core.pulls import PullStatus
from aipass_tui.ui.app import create_app
from aipass_tui.ui.screens.confirm import ConfirmScreen
from aipass_tui.ui.screens.pull_actions import LISTED_FILES, listed_files
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from tests.ui.conftest import wait_for
from tests.ui.test_footer_fit import footer_keys
from tests.ui.test_review_actions import SIZE, open_pull, requests_to, start
from tests.ui.test_review_support import git, stored_pull

MINE = "def main():\n    return 1\nmy own line, not committed\n"
"""The user's edit of src/app.py: the agent appends "change 3" at the same place."""


def dialog_text(dialog: ConfirmScreen) -> str:
    return str(dialog.query_one(".dialog-message", Static).render())


def button_labels(dialog: ConfirmScreen) -> list[str]:
    return [str(button.label) for button in dialog.query(Button)]


async def next_dialog(pilot: Pilot, previous: object = None) -> ConfirmScreen:
    """Wait for a dialog other than ``previous`` and return it."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen is not previous, message="merge dialog")
    dialog = app.screen
    assert isinstance(dialog, ConfirmScreen)
    return dialog


async def merge_stopped(pilot: Pilot) -> ConfirmScreen:
    """Merge from the pull request screen and return the dialog that shows why it stopped."""
    await pilot.press("m")
    confirm = await next_dialog(pilot)
    assert confirm.confirm_label == "Merge"
    await pilot.press("y")
    return await next_dialog(pilot, confirm)


async def test_dialog_names_files_and_offers_merge_again(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        (repo / "src" / "app.py").write_text(MINE)
        main_before = git(repo, "rev-parse", "main")

        dialog = await merge_stopped(pilot)
        text = dialog_text(dialog)

        assert dialog.title_text == "#1 not merged: your uncommitted edits"
        assert f"files you have modified or created in {repo}" in text
        assert "commit or stash your edits to src/app.py, then merge again" in text
        assert "Files in your checkout that the merge would overwrite:\n  src/app.py\n" in text
        assert text.endswith("Your files and main were left as they were.")
        assert button_labels(dialog) == ["Merge again (y)", "Cancel (n)"]
        assert git(repo, "rev-parse", "main") == main_before
        assert (repo / "src" / "app.py").read_text() == MINE
        assert stored_pull(repo).status == PullStatus.APPROVED

        git(repo, "stash", "push", "-q", "--", "src/app.py")
        await pilot.press("y")
        await wait_for(pilot, lambda: stored_pull(repo).status == PullStatus.MERGED, message="merged after the stash")

        assert app.screen is screen
        assert git(repo, "rev-parse", "main") == stored_pull(repo).merge_commit
        assert "my own line" in git(repo, "stash", "show", "-p")
        assert requests_to(orchestrator, "alpha") == []


async def test_merge_again_with_edits_in_place(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        (repo / "src" / "app.py").write_text(MINE)
        main_before = git(repo, "rev-parse", "main")
        first = await merge_stopped(pilot)

        await pilot.press("y")
        second = await next_dialog(pilot, first)

        assert second.title_text == "#1 not merged: your uncommitted edits"
        assert "commit or stash your edits to src/app.py, then merge again" in dialog_text(second)
        await pilot.press("n")
        assert app.screen is screen
        assert git(repo, "rev-parse", "main") == main_before
        assert (repo / "src" / "app.py").read_text() == MINE
        assert "commit or stash your edits to src/app.py" in str(screen.query_one("#pull-banner", Static).render())

        # The pull request screen does not offer a rebase request either.
        assert screen.check_action("rebase_request", ()) is False
        assert "b" not in footer_keys(screen.query_one(FittingFooter))[0]
        await pilot.press("b")
        await pilot.pause(0.2)
        assert app.screen is screen
        assert requests_to(orchestrator, "alpha") == []


async def test_commit_then_merge_offers_rebase(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await open_pull(pilot)
        (repo / "src" / "app.py").write_text(MINE)
        stopped = await merge_stopped(pilot)

        git(repo, "commit", "-q", "-am", "My own line")
        await pilot.press("y")
        conflict = await next_dialog(pilot, stopped)

        assert conflict.title_text == "#1 not merged: conflict"
        assert "Conflicting files:\n  src/app.py\n" in dialog_text(conflict)
        assert button_labels(conflict) == ["Send rebase request (y)", "Cancel (n)"]
        await pilot.press("y")
        await wait_for(pilot, lambda: requests_to(orchestrator, "alpha"), message="rebase request queued")
        [request] = requests_to(orchestrator, "alpha")
        assert request.subject == "Rebase pull request #1 onto main and resolve conflicts"


@pytest.mark.parametrize("size", [SIZE, (80, 24)])
async def test_dialog_lists_many_and_ignored_files(tmp_path: Path, orchestrators: list, size: tuple[int, int]) -> None:
    names = [f"data/file{number:02d}.txt" for number in range(1, 14)]
    subject = "Many " + " ".join(f"edit={name}" for name in names) + " edit=notes/todo.txt"
    repo, settings, orchestrator = start(tmp_path, orchestrators, subject)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=size) as pilot:
        await open_pull(pilot)
        for name in names:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text("my draft\n")
        # An ignore rule only the user's checkout has: the agent's branch still adds the file.
        (repo / "notes").mkdir()
        (repo / "notes" / ".gitignore").write_text("*\n")
        (repo / "notes" / "todo.txt").write_text("my private notes\n")

        dialog = await merge_stopped(pilot)
        text = dialog_text(dialog)
        listed = text.split("would overwrite:\n", 1)[1].split("\n\n", 1)[0].splitlines()

        assert stored_pull(repo).message in text
        assert "commit or stash your edits to data/file01.txt, data/file02.txt, data/file03.txt, data/file04.txt, data/file05.txt and 8 more" in text
        assert "(git ignores them), then merge again" in text
        named = len(listed) - 1
        if size == SIZE:
            assert named == LISTED_FILES
        assert named >= 1
        assert listed[0] == "  data/file01.txt"
        assert listed[-1] == f"  … and {len(names) + 1 - named} more"
        assert button_labels(dialog) == ["Merge again (y)", "Cancel (n)"]
        for button in dialog.query(Button):
            assert dialog.region.contains_region(button.region), f"{button.label} is off the screen at {size}"
        assert (repo / "notes" / "todo.txt").read_text() == "my private notes\n"
        for name in names:
            assert (repo / name).read_text() == "my draft\n"


@pytest.mark.parametrize(
    ("count", "rows", "expected"),
    [
        (3, 13, ["  f1", "  f2", "  f3"]),
        (12, 13, [f"  f{n}" for n in range(1, 13)]),
        (13, 13, [f"  f{n}" for n in range(1, 13)] + ["  … and 1 more"]),
        (14, 4, ["  f1", "  f2", "  f3", "  … and 11 more"]),
        (5, 0, ["  f1", "  … and 4 more"]),
        (1, 0, ["  f1"]),
    ],
)
def test_listed_files_fit_rows(count: int, rows: int, expected: list[str]) -> None:
    names = [f"f{n}" for n in range(1, count + 1)]

    assert listed_files(names, rows).splitlines() == expected
