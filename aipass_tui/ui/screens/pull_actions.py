"""Review actions of the pull request screen.

Viewed marks, comments, approve, merge, close and the requests sent back to the agent.
``PullActions`` is mixed into ``PullScreen``. Each action calls one of the core's review commands
through ``PullCommands`` (on a worker), asking first where the action cannot be undone, and
shows the outcome: the updated record, a notification, or the merge problem with its files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from rich.text import Text

from aipass_tui.core.pulls import ACTIVE_STATUSES, PullRequest
from aipass_tui.ui.diff_rows import CommentTarget
from aipass_tui.ui.screens.review import PullCommands
from aipass_tui.ui.text import sanitize_line, shorten

if TYPE_CHECKING:
    from textual.app import App

    from aipass_tui.ui.app import AipassApp
    from aipass_tui.ui.widgets.diff_view import DiffView
    from aipass_tui.ui.widgets.file_list import FileList


LISTED_FILES = 12
"""File names a merge dialog lists at most before it counts the rest."""
DIALOG_WIDTH = 64
"""Columns of a ConfirmScreen dialog, border and padding included (``.dialog`` in confirm.tcss)."""
DIALOG_ROWS = 8
"""Rows of a ConfirmScreen dialog besides its message text: border, title, the message's margins
and the buttons (confirm.tcss)."""


def listed_files(names: list[str], rows: int = LISTED_FILES + 1) -> str:
    """Return one indented line per file name, in at most ``rows`` lines.

    At most ``LISTED_FILES`` names are listed, and at least one. When some are left out, the
    last line counts them.
    """
    if len(names) <= min(rows, LISTED_FILES):
        listed = names
    else:
        listed = names[: max(1, min(rows - 1, LISTED_FILES))]
    lines = [f"  {name}" for name in listed]
    if len(listed) < len(names):
        lines.append(f"  … and {len(names) - len(listed)} more")
    return "\n".join(lines)


def files_message(app: "App[Any]", before: str, names: list[str], after: str) -> str:
    """Join ``before``, the list of ``names`` and ``after`` into a dialog message that fits the terminal.

    The list gets the rows that the wrapped text leaves free, so the dialog's buttons stay on
    screen however many files there are, unless the text alone is taller than the terminal.
    """
    width = max(1, min(DIALOG_WIDTH, app.size.width) - 4)
    text_rows = len(Text(before).wrap(app.console, width)) + 1 + len(Text(after).wrap(app.console, width))
    rows = app.size.height - DIALOG_ROWS - text_rows
    return f"{before}\n{listed_files(names, rows)}\n\n{after}"


def viewed_paths(pull: PullRequest) -> set[str]:
    """Return the paths marked viewed at their current content (a changed file loses its mark)."""
    return {entry.path for entry in pull.files if entry.blob is not None and pull.viewed.get(entry.path) == entry.blob}


class PullActions(PullCommands):
    """Review actions on ``self.pull``; the screen provides the widgets and ``apply_pull``."""

    pull: PullRequest
    file_list: "FileList"
    diff_view: "DiffView"
    cockpit: "AipassApp"
    apply_pull: Callable[[PullRequest], None]

    def _open_comment(self, target: CommentTarget | None) -> None:
        from aipass_tui.ui.screens.comment import CommentScreen

        if target is None or not target.path:
            self.notify("select a file first", title="Comment", severity="warning")
            return
        context = target.preview if target.preview else "the whole file"

        def saved(result: dict[str, Any]) -> None:
            self.notify(f"comment #{result['comment']} saved on {target.describe()}", title="Comment")

        def save(body: str | None) -> None:
            if body:
                args = {"pull_id": self.pull.id, "body": body, "path": target.path, "line": target.line, "side": target.side, "hunk": target.hunk}
                self.call_pull_command("Comment", "pr.comment", args, saved)

        self.app.push_screen(CommentScreen(f"Comment on {target.describe()}", context), save)

    def action_toggle_viewed(self) -> None:
        entry = self.file_list.selected
        if entry is None:
            return
        viewed = entry.path not in viewed_paths(self.pull)
        args = {"pull_id": self.pull.id, "path": entry.path, "viewed": viewed}
        self.call_pull_command("Viewed", "pr.viewed", args, self._after_command)

    def action_comment(self) -> None:
        self._open_comment(self.diff_view.target())

    def action_comment_hunk(self) -> None:
        self._open_comment(self.diff_view.hunk_target())

    def action_approve(self) -> None:
        self.call_pull_command("Approve", "pr.approve", {"pull_id": self.pull.id}, self._after_approve)

    def _after_approve(self, result: dict[str, Any]) -> None:
        self._after_command(result)
        self.notify(f"#{self.pull.id} approved; m merges it", title="Approve")

    def action_merge(self) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        pull = self.pull
        if pull.violations:
            title = f"Merge #{pull.id} with files outside its plan task?"
            before = f"{len(pull.violations)} changed files are outside the files the plan gave this task:"
            message = files_message(self.app, before, pull.violations, f"Merge into {pull.target} anyway?")
            label = "Merge anyway"
        else:
            title = f"Approve and merge #{pull.id}?"
            message = f"{pull.branch} is merged into {pull.target} ({self.cockpit.settings.git.merge_strategy}). Files you changed in your checkout stop the merge; nothing of yours is overwritten."
            label = "Merge"

        def merge(confirmed: bool | None) -> None:
            if confirmed:
                self._merge()

        self.app.push_screen(ConfirmScreen(title, message, label), merge)

    def _merge(self) -> None:
        """Send the merge command, which the user confirmed in a dialog that named any files outside the plan task."""
        args = {"pull_id": self.pull.id, "allow_violations": bool(self.pull.violations)}
        self.call_pull_command("Merge", "pr.merge", args, self._after_merge)

    def _after_merge(self, result: dict[str, Any]) -> None:
        self._after_command(result)
        if result.get("merged"):
            self.notify(result.get("message", "merged"), title=f"Merged #{self.pull.id}")
            return
        message = str(result.get("message") or "the merge did not happen")
        conflicts = list(result.get("conflicts") or [])
        local_changes = list(result.get("local_changes") or [])
        if self.pull.status in ACTIVE_STATUSES and result.get("reason") == "conflict" and conflicts:
            self._offer_rebase(message, conflicts)
        elif self.pull.status in ACTIVE_STATUSES and local_changes:
            self._offer_merge_again(message, local_changes)
        else:
            self.notify(message, title=f"#{self.pull.id} not merged", severity="error", timeout=12)

    def _offer_rebase(self, message: str, conflicts: list[str]) -> None:
        """Show the conflicting files and offer to send the agent a rebase request."""
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        pull = self.pull
        title = f"#{pull.id} not merged: conflict"
        question = f"Send {pull.agent} a request to rebase {pull.branch} onto {pull.target} and resolve them?"
        text = files_message(self.app, f"{message}\n\nConflicting files:", conflicts, question)

        def send(confirmed: bool | None) -> None:
            if confirmed:
                self.action_rebase_request()

        self.app.push_screen(ConfirmScreen(title, text, "Send rebase request"), send)

    def _offer_merge_again(self, message: str, files: list[str]) -> None:
        """Show the user's files that stopped the merge and offer to merge again.

        The core's message names the steps (commit or stash them, or move away files that git
        ignores). A rebase request is not offered, because the agent cannot take in edits that
        were never committed and ``pr.rebase-request`` rejects it while they are in the way.
        """
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        pull = self.pull
        title = f"#{pull.id} not merged: your uncommitted edits"
        before = f"{message}\n\nFiles in your checkout that the merge would overwrite:"
        text = files_message(self.app, before, files, f"Your files and {pull.target} were left as they were.")

        def merge_again(confirmed: bool | None) -> None:
            if confirmed:
                self._merge()

        self.app.push_screen(ConfirmScreen(title, text, "Merge again"), merge_again)

    def action_request_changes(self) -> None:
        from aipass_tui.ui.screens.comment import CommentScreen

        unsent = [c for c in self.pull.comments if not c.sent]
        if unsent:
            listed = "\n".join(f"#{c.id} {c.path or 'pull request'}{':' + str(c.line) if c.line else ''}: {shorten(sanitize_line(c.body), 60)}" for c in unsent[-6:])
            context = f"{len(unsent)} comments go to {self.pull.agent}:\n{listed}"
        else:
            context = f"No comments yet: write what {self.pull.agent} should change."

        def send(message: str | None) -> None:
            if message is None:
                return
            args = {"pull_id": self.pull.id, "message": message}
            self.call_pull_command("Request changes", "pr.request-changes", args, self._after_request)

        screen = CommentScreen(f"Request changes from {self.pull.agent}", context, allow_empty=bool(unsent), send_label="Send to agent")
        self.app.push_screen(screen, send)

    def _after_request(self, result: dict[str, Any]) -> None:
        self._after_command(result)
        request = result.get("request") or {}
        self.notify(f"sent to {request.get('agent')} as request {request.get('id') or '(queued)'} on {request.get('branch')}", title="Changes requested")

    def action_close_pull(self) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        def close(confirmed: bool | None) -> None:
            if confirmed:
                self.call_pull_command("Close", "pr.close", {"pull_id": self.pull.id}, self._after_command)

        message = f"#{self.pull.id} is closed without merging. Its branch {self.pull.branch} and commits are kept."
        self.app.push_screen(ConfirmScreen(f"Close #{self.pull.id}?", message, "Close"), close)

    def action_rebase_request(self) -> None:
        self.call_pull_command("Rebase request", "pr.rebase-request", {"pull_id": self.pull.id}, self._after_request)

    def action_show_checks(self) -> None:
        from aipass_tui.ui.screens.checks import ChecksScreen

        self.app.push_screen(ChecksScreen(self.pull))

    def _after_command(self, result: dict[str, Any]) -> None:
        record = result.get("pull")
        if isinstance(record, dict):
            self.apply_pull(PullRequest.model_validate(record))
