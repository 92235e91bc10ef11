"""Review commands on pull requests, registered for the CLI and the running orchestrator.

Each command is a ``@handler`` that the CLI reaches through ``handlers.call``. Errors become
HandlerError with exit code 2 for a bad or unknown id or input, and 1 for a failed operation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aipass_tui.core.gitflow_git import GitError
from aipass_tui.core.gitflow_lock import RepoLockHeld
from aipass_tui.core.gitflow_review import (
    MergeError,
    approve_pull,
    close_pull,
    comment_pull,
    merge_pull,
    rebase_request,
    request_changes,
    set_viewed,
)
from aipass_tui.core.handlers import HandlerContext, HandlerError, handler
from aipass_tui.core.pulls import PULL_WRITE_LOCK, PullNotFound, PullStore
from aipass_tui.core.store import Paths, StateError


def list_pull_summaries(repo: Path) -> list[dict[str, Any]]:
    """Return one short record per pull request of ``repo`` (for ``aipass-tui status``), oldest first."""
    store = PullStore(Paths(repo))
    return [
        {
            "id": pull.id,
            "agent": pull.agent,
            "title": pull.title,
            "status": pull.status.value,
            "branch": pull.branch,
            "target": pull.target,
            "files": len(pull.files),
            "additions": pull.additions,
            "deletions": pull.deletions,
            "checks": pull.checks_summary,
            "created_at": pull.created_at,
            "updated_at": pull.updated_at,
        }
        for pull in store.list()
    ]


def _pull_error(exc: Exception) -> HandlerError:
    if isinstance(exc, (PullNotFound, ValueError)):
        return HandlerError(str(exc), 2)
    if isinstance(exc, MergeError):
        return HandlerError(str(exc), exc.exit_code)
    return HandlerError(str(exc), 1)


_EXPECTED = (PullNotFound, ValueError, MergeError, RepoLockHeld, StateError, GitError)


@handler("pr.merge")
def handle_merge(ctx: HandlerContext, pull_id: str, allow_violations: bool = False) -> dict[str, Any]:
    """Approve and merge a pull request; ``merged`` in the result is false with a ``message`` when it did not merge."""
    # No PULL_WRITE_LOCK here: the repo lock already keeps merges and recorded runs apart.
    try:
        return merge_pull(ctx.paths.repo, ctx.paths, ctx.settings, pull_id, allow_violations=allow_violations)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc


@handler("pr.approve")
def handle_approve(ctx: HandlerContext, pull_id: str) -> dict[str, Any]:
    try:
        with PULL_WRITE_LOCK:
            return approve_pull(ctx.paths, pull_id)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc


@handler("pr.close")
def handle_close(ctx: HandlerContext, pull_id: str) -> dict[str, Any]:
    try:
        with PULL_WRITE_LOCK:
            return close_pull(ctx.paths, pull_id)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc


@handler("pr.comment")
def handle_comment(
    ctx: HandlerContext, pull_id: str, body: str, path: str | None = None, line: int | None = None, side: str = "new", hunk: str | None = None
) -> dict[str, Any]:
    try:
        with PULL_WRITE_LOCK:
            return comment_pull(ctx.paths, pull_id, body, path=path, line=line, side=side, hunk=hunk)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc


@handler("pr.viewed")
def handle_viewed(ctx: HandlerContext, pull_id: str, path: str, viewed: bool = True) -> dict[str, Any]:
    try:
        with PULL_WRITE_LOCK:
            return set_viewed(ctx.paths, pull_id, path, viewed)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc


@handler("pr.request-changes")
def handle_request_changes(ctx: HandlerContext, pull_id: str, message: str = "") -> dict[str, Any]:
    """Send the review comments (and ``message``) back to the agent as a request on the same branch."""
    try:
        with PULL_WRITE_LOCK:
            return request_changes(ctx, pull_id, message)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc


@handler("pr.rebase-request")
def handle_rebase_request(ctx: HandlerContext, pull_id: str) -> dict[str, Any]:
    """Send the agent a request to rebase its branch onto the target and resolve the conflicts."""
    try:
        with PULL_WRITE_LOCK:
            return rebase_request(ctx, pull_id)
    except _EXPECTED as exc:
        raise _pull_error(exc) from exc
