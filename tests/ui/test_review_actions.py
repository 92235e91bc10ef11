"""Pilot tests of the review screens against a real orchestrator whose agents edit files in worktrees."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static, TextArea

from aipass_tui.core.diff import LARGE_FILE_LINES
from aipass_tui.core.pulls import PullStatus, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.ui import bindings
from aipass_tui.ui.app import create_app
from aipass_tui.ui.screens.checks import ChecksScreen
from aipass_tui.ui.screens.comment import CommentScreen
from aipass_tui.ui.screens.confirm import ConfirmScreen
from aipass_tui.ui.screens.help import HelpScreen
from aipass_tui.ui.screens.main import MainScreen
from aipass_tui.ui.screens.pull import PullScreen
from aipass_tui.ui.screens.review import ReviewScreen
from tests.ui.conftest import start_orchestrator, wait_for
from tests.ui.test_review_support import git, review_repo, review_settings, stored_pull, stored_pulls

SIZE = (120, 34)


def start(tmp_path: Path, orchestrators: list, subject: str, checks: list[str] | None = None):
    """Start an orchestrator on a fresh repository and dispatch ``subject`` to alpha."""
    repo = review_repo(tmp_path)
    settings = review_settings(repo, checks)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    orchestrator.dispatch("alpha", subject)
    return repo, settings, orchestrator


async def open_pull(pilot, pull_id: str = "1") -> PullScreen:
    """From the main screen: wait for the pull request, open the list, then the pull request."""
    app = pilot.app
    await wait_for(pilot, lambda: any(p.id == pull_id for p in stored_pulls(app.source.repo)), message=f"pull request {pull_id} recorded")
    await pilot.press("p")
    review = app.screen
    assert isinstance(review, ReviewScreen)
    await wait_for(pilot, lambda: pull_id in review.pulls, message="pull request listed")
    table = review.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(pull_id), animate=False)
    await pilot.press("enter")
    screen = app.screen
    assert isinstance(screen, PullScreen)
    await wait_for(pilot, lambda: screen.document is not None, message="first diff loaded")
    return screen


async def wait_document(pilot, screen: PullScreen, path: str) -> None:
    await wait_for(pilot, lambda: screen.document is not None and screen.document.path == path, message=f"diff of {path}")


def toasts(app) -> str:
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


def requests_to(orchestrator, agent: str, sender: str = "review"):
    return [r for r in orchestrator.snapshot().requests if r.agent == agent and r.sender == sender]


async def test_list_shows_pull_and_opens_files(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Tidy up top=notes.txt edit=notes.txt edit=src/app.py edit=docs/new.md")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        review = app.screen_stack[-2]
        cells = [str(cell) for cell in review.query_one(DataTable).get_row("1")]
        assert cells[:5] == ["#1", "alpha", "Tidy up top=notes.txt edit=notes.txt edit=src/a…", "3", "+4 −0"]
        assert cells[5:7] == ["none", "open"]

        assert [f.path for f in screen.file_list.files] == ["docs/new.md", "notes.txt", "src/app.py"]
        assert screen.document.path == "docs/new.md"
        await pilot.press("right_square_bracket")
        await wait_document(pilot, screen, "notes.txt")
        view = screen.diff_view
        assert len(view.hunk_rows()) == 2
        assert view.cursor == 0

        await pilot.press("n")
        assert view.cursor == view.hunk_rows()[1]
        assert view.target().line is None
        assert view.target().hunk.startswith("@@ -")
        await pilot.press("down", "down", "down", "down")
        target = view.target()
        assert (target.path, target.side) == ("notes.txt", "new")
        assert target.preview == "change 32"

        await pilot.press("n")
        await wait_document(pilot, screen, "src/app.py")
        await pilot.press("N")
        await wait_document(pilot, screen, "notes.txt")
        assert view.cursor == view.hunk_rows()[-1]

        assert not view.split
        unified_rows = view.row_count
        await pilot.press("s")
        assert view.split
        assert view.row_count < unified_rows or view.row_count == len(view.document.ensure_split())
        await pilot.press("s")
        assert not view.split

        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_document(pilot, screen, "docs/new.md")
        await pilot.press("escape")
        assert isinstance(app.screen, ReviewScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_viewed_comment_and_request_changes(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        first_head = screen.pull.head
        await pilot.press("v")
        await wait_for(pilot, lambda: stored_pull(repo).is_viewed("src/app.py"), message="viewed mark stored")
        await wait_for(pilot, lambda: "src/app.py" in screen.file_list.viewed, message="viewed mark shown")

        await pilot.press("escape", "enter")
        reopened = app.screen
        assert isinstance(reopened, PullScreen) and reopened is not screen
        await wait_for(pilot, lambda: reopened.document is not None, message="diff loaded again")
        assert "src/app.py" in reopened.file_list.viewed
        screen = reopened

        await pilot.press("down", "down", "down")
        assert screen.diff_view.target().line == 3
        await pilot.press("c")
        dialog = app.screen
        assert isinstance(dialog, CommentScreen)
        dialog.query_one(TextArea).text = "   "
        await pilot.press("ctrl+s")
        assert app.screen is dialog
        assert "the comment is empty" in str(dialog.query_one("#comment-error", Static).render())
        assert stored_pull(repo).comments == []
        dialog.query_one(TextArea).text = "Return 2 here, not a new line"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: stored_pull(repo).comments, message="comment stored")
        [comment] = stored_pull(repo).comments
        assert (comment.path, comment.line, comment.side, comment.body) == ("src/app.py", 3, "new", "Return 2 here, not a new line")
        await wait_for(pilot, lambda: "not sent" in str(screen.query_one("#line-comments", Static).render()), message="comment shown under the diff")

        await pilot.press("R")
        dialog = app.screen
        assert isinstance(dialog, CommentScreen)
        assert "src/app.py:3" in str(dialog.query_one("#comment-context", Static).render())
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: requests_to(orchestrator, "alpha"), message="change request queued")
        [request] = requests_to(orchestrator, "alpha")
        assert "src/app.py:3: Return 2 here, not a new line" in request.body
        assert request.branch == "aipass/alpha/work-edit-src-app-py"

        # The agent runs the request on the same branch; the pull request updates and the file's mark resets.
        await wait_for(pilot, lambda: screen.pull.head != first_head, timeout=20, message="pull request updated by the agent")
        assert screen.pull.status == PullStatus.OPEN
        assert "src/app.py" not in screen.file_list.viewed
        assert not stored_pull(repo).is_viewed("src/app.py")
        await wait_for(pilot, lambda: screen.document is not None and screen.document.patch.file.additions == 2, message="new diff shown")


async def test_merge_leaves_user_files_alone(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        (repo / "notes.txt").write_text("my own edit, not committed\n")
        (repo / "scratch.txt").write_text("draft\n")
        main_before = git(repo, "rev-parse", "main")
        await pilot.press("m")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: stored_pull(repo).status == PullStatus.MERGED, message="merged")
        merged = stored_pull(repo)
        assert git(repo, "rev-parse", "main") == merged.merge_commit != main_before
        assert (repo / "src" / "app.py").read_text() == "def main():\n    return 1\nchange 3\n"
        assert (repo / "notes.txt").read_text() == "my own edit, not committed\n"
        assert (repo / "scratch.txt").read_text() == "draft\n"
        assert git(repo, "status", "--porcelain", "--", "notes.txt") == "M notes.txt"
        await wait_for(pilot, lambda: screen.pull.status == PullStatus.MERGED, message="screen shows merged")
        assert "merged into main" in str(screen.query_one("#pull-banner", Static).render())


async def test_merge_stopped_by_user_change(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        (repo / "src" / "app.py").write_text("def main():\n    return 42  # mine\n")
        main_before = git(repo, "rev-parse", "main")
        await pilot.press("m", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), message="merge problem shown")
        message = str(app.screen.query_one(".dialog-message", Static).render())
        assert "src/app.py" in message
        assert "would change files you have modified" in message
        await pilot.press("n")
        assert app.screen is screen
        assert git(repo, "rev-parse", "main") == main_before
        assert (repo / "src" / "app.py").read_text() == "def main():\n    return 42  # mine\n"
        assert stored_pull(repo).status == PullStatus.APPROVED
        assert requests_to(orchestrator, "alpha") == []


async def test_conflict_named_and_rebase_requested(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        (repo / "src" / "app.py").write_text("def main():\n    return 1\nuser line\n")
        git(repo, "commit", "-q", "-am", "User change")
        await pilot.press("m", "y")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), message="conflict shown")
        message = str(app.screen.query_one(".dialog-message", Static).render())
        assert "Conflicting files:\n  src/app.py" in message
        assert stored_pull(repo).conflict_files == ["src/app.py"]
        await wait_for(pilot, lambda: "Conflicts with main in: src/app.py" in str(screen.query_one("#pull-banner", Static).render()), message="conflict banner")
        assert screen.check_action("rebase_request", ()) is True
        await pilot.press("y")
        await wait_for(pilot, lambda: requests_to(orchestrator, "alpha"), message="rebase request queued")
        [request] = requests_to(orchestrator, "alpha")
        assert request.subject == "Rebase pull request #1 onto main and resolve conflicts"
        assert "- src/app.py" in request.body
        # The request marks it changes_requested; the agent's run, which changes nothing, reopens it.
        await wait_for(pilot, lambda: screen.pull.status in (PullStatus.CHANGES_REQUESTED, PullStatus.OPEN), message="conflict status cleared")
        assert screen.check_action("rebase_request", ()) is False
        assert git(repo, "status", "--porcelain") == ""


async def test_merge_with_violations_asks_first(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py edit=docs/extra.md")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: stored_pulls(repo), message="pull request recorded")
        store = PullStore(Paths(repo))
        pull = store.load("1")
        pull.violations = ["docs/extra.md"]
        store.save(pull)
        screen = await open_pull(pilot)
        assert "docs/extra.md" in screen.file_list.violations
        assert "1 files outside the plan task's files: docs/extra.md" in str(screen.query_one("#pull-banner", Static).render())
        await pilot.press("m")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert "outside the files the plan gave this task" in str(dialog.query_one(".dialog-message", Static).render())
        await pilot.press("y")
        await wait_for(pilot, lambda: stored_pull(repo).status == PullStatus.MERGED, message="merged with violations allowed")


async def test_close_keeps_branch(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = await open_pull(pilot)
        await pilot.press("R")
        dialog = app.screen
        assert isinstance(dialog, CommentScreen)
        await pilot.press("ctrl+s")
        assert app.screen is dialog
        assert "the comment is empty" in str(dialog.query_one("#comment-error", Static).render())
        await pilot.press("escape")
        assert requests_to(orchestrator, "alpha") == []

        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: screen.pull.status == PullStatus.CLOSED, message="closed")
        assert git(repo, "rev-parse", "--verify", "aipass/alpha/work-edit-src-app-py")
        assert screen.check_action("merge", ()) is None

        screen.action_approve()
        await wait_for(pilot, lambda: "is closed: it cannot be approved" in toasts(app), message="rejection shown")
        await pilot.press("escape")
        review = app.screen
        await wait_for(pilot, lambda: str(review.query_one(DataTable).get_row("1")[6]) == "closed", message="list shows closed")


async def test_checks_screen_shows_output(tmp_path: Path, orchestrators: list) -> None:
    checks = ["sh -c 'echo all good'", "sh -c 'echo boom from the test suite; exit 3'"]
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py", checks)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await open_pull(pilot)
        await pilot.press("escape")
        review = app.screen
        assert str(review.query_one(DataTable).get_row("1")[5]) == "failed 1/2"
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, ChecksScreen)
        output = screen.query_one("#check-output")
        await wait_for(pilot, lambda: "boom from the test suite" in "\n".join(output.lines), message="failing check output")
        await pilot.press("up")
        await wait_for(pilot, lambda: "all good" in "\n".join(output.lines), message="passing check output")
        await pilot.press("escape")
        assert app.screen is review


async def test_large_file_summary_then_full(tmp_path: Path, orchestrators: list) -> None:
    lines = LARGE_FILE_LINES + 10
    repo, settings, orchestrator = start(tmp_path, orchestrators, f"Generate lines=data/big.txt:{lines}")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_pull(pilot)
        document = screen.document
        assert document.patch.summary_only
        assert "press f to load the whole diff" in " ".join(document.lines).lower()
        assert screen.check_action("load_full", ()) is True
        await pilot.press("f")
        await wait_for(pilot, lambda: screen.document is not document and screen.document.has_rows, message="whole file loaded")
        view = screen.diff_view
        assert view.row_count == lines + 1
        await pilot.press("end")
        assert view.target().line == lines
        assert view.target().preview == f"generated line {lines - 1}"


async def test_list_updates_live(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: stored_pulls(repo), message="first pull request")
        await pilot.press("p")
        review = app.screen
        await wait_for(pilot, lambda: review.query_one(DataTable).row_count == 1, message="one row")
        orchestrator.dispatch("beta", "More work edit=notes.txt")
        await wait_for(pilot, lambda: review.query_one(DataTable).row_count == 2, message="second pull request listed live")
        assert str(review.query_one(DataTable).get_row("2")[1]) == "beta"


async def test_keys_in_help_and_palette(tmp_path: Path, orchestrators: list) -> None:
    repo, settings, orchestrator = start(tmp_path, orchestrators, "Work edit=src/app.py")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        main_commands = [command.title for command in app.get_system_commands(app.screen)]
        assert "Pull requests" in main_commands
        screen = await open_pull(pilot)
        titles = [command.title for command in app.get_system_commands(screen)]
        for title in ("Merge", "Request changes", "Comment", "Viewed", "Split", "Next hunk", "Checks"):
            assert title in titles
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        rows = [[str(cell) for cell in app.screen.query_one(DataTable).get_row_at(i)] for i in range(app.screen.query_one(DataTable).row_count)]
        assert ["Pull request", "m", "Approve and merge into the target branch (asks first)", "merge"] in rows
        assert ["Agents", "p", "Review the agents' pull requests: files, diffs, comments, merge", "review"] in rows
        assert all(action.id for action in bindings.actions(bindings.PULL))
