"""One pull request: its changed files, the diff of the selected file, comments and actions.

The file list comes from the stored record, so it shows at once whatever the size of the pull
request. A file's patch is loaded on a thread worker (one ``git diff`` of that path) and at most
one load runs at a time: moving quickly through the list loads only the file the cursor rests
on. The review actions live in ``pull_actions``; their results update this screen and every
other open review screen.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import get_current_worker

from aipass_tui.core.diff import DiffError, PullDiff
from aipass_tui.core.gitflow_git import GitError
from aipass_tui.core.pulls import ACTIVE_STATUSES, PullNotFound, PullRequest, PullStatus, PullStore
from aipass_tui.core.store import StateError
from aipass_tui.ui import bindings
from aipass_tui.ui.diff_rows import LETTERS, CommentTarget, DiffDocument, file_notice, lexer_for, number_width
from aipass_tui.ui.screens.pull_actions import PullActions, viewed_paths
from aipass_tui.ui.screens.review import checks_label
from aipass_tui.ui.text import sanitize_line, shorten
from aipass_tui.ui.widgets.diff_view import DiffView
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from aipass_tui.ui.widgets.file_list import FileList, file_label

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

log = logging.getLogger(__name__)

SPLIT_MIN_WIDTH = 160
"""Terminal columns from which the diff opens side by side (the split key overrides it)."""
_ACTIVE_ONLY = {"approve", "merge", "request_changes", "close_pull", "rebase_request"}
FOOTER_SHORT = {
    "next_file": "File", "next_hunk": "Hunk", "request_changes": "Changes", "rebase_request": "Rebase", "full_file": "Whole",
}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones."""
FOOTER_OPTIONAL = ("split", "next_file", "approve", "checks", "viewed", "close_pull", "comment")
"""Keys that leave the footer, in this order, when even the short descriptions do not fit. At 80
columns the footer keeps back, next hunk, merge, request changes, quit and the keys screen, plus
rebase request on a conflict and whole file on a large file. Keys left out stay bound and listed
in the command palette and on the F1 keys screen."""


class PatchLoaded(Message):
    """A file's patch was loaded (or failed to load) on a worker."""

    def __init__(self, head: str, path: str, full: bool, document: DiffDocument) -> None:
        super().__init__()
        self.head = head
        self.path = path
        self.full = full
        self.document = document


class PullReloaded(Message):
    """The pull request record was read from disk again (None: it is gone or unreadable)."""

    def __init__(self, pull: PullRequest | None, problem: str | None) -> None:
        super().__init__()
        self.pull = pull
        self.problem = problem


class PullScreen(PullActions, Screen[None]):
    """Files, diff, comments and the review actions of one pull request."""

    CSS_PATH = "pull.tcss"
    BINDINGS = bindings.bindings(bindings.PULL)
    BINDING_SCOPE = bindings.PULL

    def __init__(self, pull: PullRequest) -> None:
        super().__init__()
        self.pull = pull
        self.split_preference: bool | None = None
        self.document: DiffDocument | None = None
        self._diff: PullDiff | None = None
        self._diff_lock = threading.Lock()
        self._loading = False
        self._next_load: tuple[str, bool] | None = None
        self._land_on_last_hunk = False
        self._shown_lines: dict[str | None, str] = {}

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    @property
    def file_list(self) -> FileList:
        return self.query_one(FileList)

    @property
    def diff_view(self) -> DiffView:
        return self.query_one(DiffView)

    def compose(self) -> ComposeResult:
        yield Static("", id="pull-head", markup=False)
        yield Static("", id="pull-banner", markup=False)
        with Horizontal(id="pull-body"):
            yield FileList(id="files")
            with Vertical(id="diff-pane"):
                yield Static("", id="file-head", markup=False)
                yield DiffView(id="diff")
                yield Static("", id="line-comments", markup=False)
        yield FittingFooter(FOOTER_SHORT, FOOTER_OPTIONAL)

    def on_mount(self) -> None:
        self.diff_view.split = self.effective_split()
        self._show_pull()
        self.file_list.set_files(self.pull.files, viewed_paths(self.pull), set(self.pull.violations))
        if not self.pull.files:
            self.diff_view.show(DiffDocument("", lines=["This pull request changes no files."]))
        self.diff_view.focus()

    # The pull request ------------------------------------------------------------------------------

    def _show_pull(self) -> None:
        pull = self.pull
        unsent = sum(1 for comment in pull.comments if not comment.sent)
        head = self.query_one("#pull-head", Static)
        first = f"#{pull.id} {sanitize_line(pull.title)}"
        second = (
            f"{pull.agent} · {pull.branch} → {pull.target} · {pull.status.value} · {len(pull.files)} files "
            f"+{pull.additions} −{pull.deletions} · checks {checks_label(pull).plain}"
        )
        if pull.comments:
            second += f" · {len(pull.comments)} comments ({unsent} not sent)"
        self._set_line(head, f"{first}\n{second}")
        for status in PullStatus:
            head.set_class(pull.status == status, f"-{status.value.replace('_', '-')}")
        self._show_banner()
        self.refresh_bindings()

    def _show_banner(self) -> None:
        pull = self.pull
        lines: list[str] = []
        if pull.status == PullStatus.CONFLICT:
            names = ", ".join(pull.conflict_files) or "files git did not name"
            lines.append(f"Conflicts with {pull.target} in: {names}. b asks {pull.agent} to rebase and resolve.")
        elif pull.message:
            lines.append(sanitize_line(pull.message))
        if pull.violations:
            listed = ", ".join(pull.violations[:6]) + (" …" if len(pull.violations) > 6 else "")
            lines.append(f"{len(pull.violations)} files outside the plan task's files: {listed}")
        banner = self.query_one("#pull-banner", Static)
        banner.update("\n".join(lines))
        banner.display = bool(lines)
        banner.set_class(pull.status == PullStatus.CONFLICT or bool(pull.violations), "-problem")

    def pulls_changed(self, records: list[dict[str, Any]]) -> None:
        """Reload this pull request from disk when a notice or a command changed it."""
        if any(str(record.get("id")) == self.pull.id for record in records):
            self._reload(self.cockpit.source.paths.repo)

    @work(thread=True, exclusive=True, group="pull-reload", exit_on_error=False)
    def _reload(self, repo: Path) -> None:
        from aipass_tui.core.store import Paths

        try:
            pull = PullStore(Paths(repo)).load(self.pull.id)
        except (PullNotFound, StateError, ValueError) as exc:
            log.warning("could not read pull request %s again: %s", self.pull.id, exc)
            self.post_message(PullReloaded(None, str(exc)))
            return
        if not get_current_worker().is_cancelled:
            self.post_message(PullReloaded(pull, None))

    def on_pull_reloaded(self, message: PullReloaded) -> None:
        if message.pull is None:
            self.notify(message.problem or "the pull request could not be read", title=f"Pull request #{self.pull.id}", severity="error")
            return
        self.apply_pull(message.pull)

    def apply_pull(self, pull: PullRequest) -> None:
        """Show a newer record of this pull request; a new head reloads the file list and the diff."""
        old = self.pull
        self.pull = pull
        self._show_pull()
        viewed = viewed_paths(pull)
        violations = set(pull.violations)
        if (old.base, old.head) != (pull.base, pull.head) or [f.path for f in old.files] != [f.path for f in pull.files]:
            selected = self.file_list.selected
            self.file_list.set_files(pull.files, viewed, violations, keep=selected.path if selected else None)
        else:
            self.file_list.set_marks(viewed, violations)
            self._show_file_head()
            self._show_comment_marks()

    # Files and patches ---------------------------------------------------------------------------

    def on_file_list_highlighted(self, message: FileList.Highlighted) -> None:
        message.stop()
        self._request_patch(self.pull.files[message.index].path, full=False)

    def on_file_list_selected(self, message: FileList.Selected) -> None:
        message.stop()
        self.diff_view.focus()

    def _request_patch(self, path: str, *, full: bool) -> None:
        self._next_load = (path, full)
        self._show_file_head()
        if not self._loading:
            self._start_load()

    def _start_load(self) -> None:
        assert self._next_load is not None
        path, full = self._next_load
        self._next_load = None
        self._loading = True
        self._load_patch(self.cockpit.source.paths.repo, self.pull.base, self.pull.head, path, full, self.diff_view.split)

    def _pull_diff(self, repo: Path, base: str, head: str) -> PullDiff:
        with self._diff_lock:
            diff = self._diff
            if diff is None or (diff.repo, diff.base, diff.head) != (repo, base, head):
                diff = self._diff = PullDiff(repo, base, head)
            diff.files
            return diff

    @work(thread=True, group="patch", exit_on_error=False)
    def _load_patch(self, repo: Path, base: str, head: str, path: str, full: bool, split: bool) -> None:
        try:
            patch = self._pull_diff(repo, base, head).load_patch(path, full=full)
        except (DiffError, GitError, KeyError, OSError) as exc:
            log.warning("could not load the diff of %s in pull request %s: %s", path, self.pull.id, exc)
            reason = str(exc).strip("'\"")
            document = DiffDocument(path, lines=[f"Could not load the diff of {path}: {reason}", "Reload the pull request list (ctrl+r) or run: aipass-tui pr show " + self.pull.id], error=True)
            self.post_message(PatchLoaded(head, path, full, document))
            return
        document = DiffDocument(path, patch=patch, lexer=lexer_for(path), number_width=number_width(patch))
        if not document.has_rows:
            document.lines = file_notice(patch)
        elif split:
            document.ensure_split()
        self.post_message(PatchLoaded(head, path, full, document))

    def on_patch_loaded(self, message: PatchLoaded) -> None:
        self._loading = False
        if self._next_load is not None:
            self._start_load()
            return
        selected = self.file_list.selected
        if selected is None or selected.path != message.path or message.head != self.pull.head:
            return
        summary_before = self._summary_only()
        self.document = message.document
        cursor = 0
        if self._land_on_last_hunk:
            self._land_on_last_hunk = False
            cursor = -1
        self.diff_view.show(message.document)
        if cursor == -1:
            hunks = self.diff_view.hunk_rows()
            self.diff_view.move_cursor(hunks[-1] if hunks else 0, top=True)
        self._show_comment_marks()
        self._show_file_head()
        if self._summary_only() != summary_before:
            self.refresh_bindings()  # the footer's "whole file" key; redrawing the footer is slow, so only on change

    def _summary_only(self) -> bool:
        return self.document is not None and self.document.patch is not None and self.document.patch.summary_only

    def _show_file_head(self) -> None:
        entry = self.file_list.selected
        head = self.query_one("#file-head", Static)
        if entry is None:
            self._set_line(head, "")
            return
        parts = [f"{LETTERS.get(entry.status, '?')} {file_label(entry)}", entry.status.replace("_", " ")]
        if entry.binary:
            parts.append("binary")
        else:
            parts.append(f"+{entry.additions} −{entry.deletions}")
        if entry.mode_change:
            parts.append(f"mode {entry.mode_change}")
        if entry.path in viewed_paths(self.pull):
            parts.append("viewed")
        if entry.path in self.pull.violations:
            parts.append("outside the plan task's files")
        position = f"file {self.file_list.cursor + 1} of {len(self.pull.files)}"
        self._set_line(head, f"{' · '.join(parts)}  ({position})")
        head.set_class(entry.path in self.pull.violations, "-problem")

    def _set_line(self, widget: Static, text: str) -> None:
        """Update a fixed-height line without a layout pass (which redraws the whole screen)."""
        if self._shown_lines.get(widget.id) != text:
            self._shown_lines[widget.id] = text
            widget.update(text, layout=False)

    # Comments ------------------------------------------------------------------------------------

    def _show_comment_marks(self) -> None:
        document = self.document
        if document is None:
            return
        comments = [c for c in self.pull.comments if c.path == document.path]
        lines = {(c.side, c.line) for c in comments if c.line is not None}
        hunks = {c.hunk for c in comments if c.line is None and c.hunk}
        self.diff_view.set_comments(lines, hunks)  # type: ignore[arg-type]
        self._show_comments()

    def _show_comments(self, target: CommentTarget | None = None) -> None:
        target = target or self.diff_view.target()
        box = self.query_one("#line-comments", Static)
        if target is None:
            self._set_line(box, "")
            return
        found = [
            c
            for c in self.pull.comments
            if c.path == target.path
            and ((target.line is not None and c.line == target.line and c.side == target.side) or (target.hunk is not None and c.line is None and c.hunk == target.hunk))
        ]
        if not found:
            if target.line is not None:
                hint = "c comments on this line · C on its hunk"
            elif target.hunk is not None:
                hint = "c comments on this hunk"
            else:
                hint = "c comments on this file"
            self._set_line(box, f"{shorten(target.describe(), 80)} · {hint} · R sends the comments to {self.pull.agent}")
            return
        lines = [f"#{c.id} {'sent' if c.sent else 'not sent'}: {shorten(sanitize_line(c.body), 160)}" for c in found[-3:]]
        self._set_line(box, "\n".join(lines))

    def on_diff_view_cursor_moved(self, message: DiffView.CursorMoved) -> None:
        message.stop()
        self._show_comments(message.target)

    # Layout --------------------------------------------------------------------------------------

    def effective_split(self) -> bool:
        if self.split_preference is not None:
            return self.split_preference
        return self.size.width >= SPLIT_MIN_WIDTH

    def on_resize(self) -> None:
        self.diff_view.set_split(self.effective_split())

    # Actions -------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "rebase_request":
            # Shown only on a conflict. A merge stopped by the user's uncommitted edits needs those
            # edits committed or stashed first, and the core rejects a rebase request until then.
            return self.pull.status == PullStatus.CONFLICT
        if action == "load_full":
            return self._summary_only()
        if action in _ACTIVE_ONLY and self.pull.status not in ACTIVE_STATUSES:
            return None
        return True

    def action_back(self) -> None:
        self.dismiss()

    def action_next_file(self) -> None:
        self.file_list.move_cursor(self.file_list.cursor + 1)

    def action_previous_file(self) -> None:
        self.file_list.move_cursor(self.file_list.cursor - 1)

    def action_next_hunk(self) -> None:
        if not self.diff_view.next_hunk() and self.file_list.cursor < len(self.pull.files) - 1:
            self.action_next_file()

    def action_previous_hunk(self) -> None:
        if not self.diff_view.previous_hunk() and self.file_list.cursor > 0:
            self._land_on_last_hunk = True
            self.action_previous_file()

    def action_toggle_split(self) -> None:
        self.split_preference = not self.diff_view.split
        self.diff_view.set_split(self.split_preference)

    def action_load_full(self) -> None:
        document = self.document
        if document is None or document.patch is None or not document.patch.summary_only:
            self.notify("the whole diff of this file is already shown", title="Whole file")
            return
        self._request_patch(document.path, full=True)
