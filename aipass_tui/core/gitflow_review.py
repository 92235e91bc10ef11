"""Review actions on pull requests: merge, approve, close, comments, viewed marks, change requests.

A merge is computed without touching any checkout: ``git merge-tree --write-tree`` (git 2.38
or newer) builds the merged tree from objects, so a conflict leaves nothing half-done behind.
Only a clean result reaches the target branch. When a checkout has the target branch checked
out, the branch moves by a fast-forward ``git merge --ff-only`` there, after a check that the
merge touches none of the files the user changed in it. Otherwise ``git update-ref`` moves it.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.gitflow_git import (
    GitError,
    Identity,
    agent_identity,
    git_version,
    is_ancestor,
    operation_in_progress,
    rev_parse,
    run_git,
    user_identity,
)
from aipass_tui.core.gitflow_local import both_sides, branch_paths, changed_paths, local_edits, name_files, target_checkout
from aipass_tui.core.gitflow_lock import RepoLock
from aipass_tui.core.pulls import ACTIVE_STATUSES, PullRequest, PullStatus, PullStore, ReviewComment
from aipass_tui.core.store import Paths, write_json

if TYPE_CHECKING:
    from aipass_tui.core.handlers import HandlerContext

log = logging.getLogger(__name__)

MERGE_LOCK_TIMEOUT = 10.0
"""Seconds a merge waits for the repo lock before it reports the holder."""


class MergeError(Exception):
    """A review action was rejected; ``exit_code`` is 1 for a failed operation, 2 for bad input."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Globs ---------------------------------------------------------------------------------------


def glob_matches(path: str, glob: str) -> bool:
    """Tell whether repository path ``path`` matches ``glob``, with the plan validator's rules.

    ``*`` and ``?`` match within one path segment, and ``**`` matches across segments: ``src/**``
    is everything under ``src`` and ``**/test_*.py`` is such a file at any depth. ``[abc]`` is a
    character class. A glob ending in ``/`` matches everything under that folder.
    """
    from aipass_tui.core.plans.globs import matches_any

    return matches_any([glob.removeprefix("./")], path)


def find_violations(files: list[str], globs: list[str]) -> list[str]:
    """Return the paths in ``files`` that match none of ``globs``, in their original order."""
    return [path for path in files if not any(glob_matches(path, glob) for glob in globs)]


# Merge ---------------------------------------------------------------------------------------


@dataclass
class _Merged:
    commit: str | None = None
    conflicts: list[str] = field(default_factory=list)


def _merge_tree(repo: Path, ours: str, theirs: str) -> tuple[str | None, list[str]]:
    """Return (tree, []) for a clean merge of two commits, or (None, conflicted paths)."""
    proc = run_git(repo, "merge-tree", "--write-tree", "-z", "--name-only", "--no-messages", ours, theirs, check=False, read_only=True)
    if proc.returncode not in (0, 1):
        raise GitError(["merge-tree", ours, theirs], repo, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    # Conflicted names are only shown and stored in JSON, so bytes that are not UTF-8 become U+FFFD.
    parts = [p.decode("utf-8", "replace") for p in proc.stdout.split(b"\0") if p]
    if proc.returncode == 0:
        return parts[0], []
    return None, list(dict.fromkeys(parts[1:]))


def _commit_tree(repo: Path, tree: str, parents: list[str], message: str, author: Identity, committer: Identity) -> str:
    args = ["commit-tree", "--no-gpg-sign", tree]
    for parent in parents:
        args += ["-p", parent]
    env = {**author.env(committer=False), **committer.env(author=False)}
    out = run_git(repo, *args, "-F", "-", input=message.encode("utf-8"), env=env).stdout
    return out.decode().strip()


def _rebase_commits(repo: Path, target_old: str, head: str, committer: Identity) -> _Merged:
    """Replay the branch's commits onto ``target_old`` in a temporary worktree of our own."""
    merges = run_git(repo, "rev-list", "--merges", f"{target_old}..{head}", read_only=True).stdout.split()
    if merges:
        raise MergeError("the branch contains merge commits, which the rebase strategy cannot replay: use git.merge_strategy = \"merge\" or \"squash\"")
    commits = [c.decode() for c in run_git(repo, "rev-list", "--reverse", "--topo-order", f"{target_old}..{head}", read_only=True).stdout.split()]
    if not commits:
        return _Merged(commit=target_old)
    scratch = Path(tempfile.mkdtemp(prefix="aipass-rebase-"))
    worktree = scratch / "worktree"
    run_git(repo, "worktree", "add", "--quiet", "--detach", str(worktree), target_old)
    try:
        picked = run_git(
            worktree,
            "-c", "commit.gpgsign=false",
            "cherry-pick", "--allow-empty", "--keep-redundant-commits", *commits,
            env=committer.env(author=False),
            check=False,
        )
        if picked.returncode != 0:
            unmerged = run_git(worktree, "diff", "--name-only", "-z", "--diff-filter=U", read_only=True).stdout
            conflicts = [p.decode("utf-8", "replace") for p in unmerged.split(b"\0") if p]
            run_git(worktree, "cherry-pick", "--abort", check=False)
            if not conflicts:
                raise GitError(["cherry-pick"], worktree, picked.returncode, picked.stderr.decode("utf-8", "replace"))
            return _Merged(conflicts=conflicts)
        return _Merged(commit=rev_parse(worktree, "HEAD"))
    finally:
        run_git(repo, "worktree", "remove", "--force", str(worktree), check=False)
        shutil.rmtree(scratch, ignore_errors=True)
        run_git(repo, "worktree", "prune", check=False)


def _build_merge(repo: Path, pull: PullRequest, strategy: str, target_old: str, head: str) -> _Merged:
    committer = user_identity(repo)
    if strategy == "rebase":
        return _rebase_commits(repo, target_old, head, committer)
    tree, conflicts = _merge_tree(repo, target_old, head)
    if tree is None:
        return _Merged(conflicts=conflicts)
    if strategy == "squash":
        message = f"{pull.title} (#{pull.id})\n\n{pull.body}\n".rstrip() + "\n"
        return _Merged(commit=_commit_tree(repo, tree, [target_old], message, agent_identity(pull.agent), committer))
    message = f"Merge pull request #{pull.id} from {pull.branch}\n\n{pull.title}\n"
    return _Merged(commit=_commit_tree(repo, tree, [target_old, head], message, committer, committer))


def rebase_suggestion(pull: PullRequest, files: list[str], *, conflict: bool = True) -> dict[str, Any]:
    """Return the request for the agent to rebase its branch onto the target.

    With ``conflict``, ``files`` are the files the merge conflicts in. Without it, they are the
    files changed on both the target and the branch since the branch started.
    """
    if conflict:
        listed = "\n".join(f"- {name}" for name in files) or "- (git named no files)"
        state = f"no longer merges cleanly into {pull.target}. Conflicting files:\n{listed}"
        subject = f"Rebase pull request #{pull.id} onto {pull.target} and resolve conflicts"
    else:
        listed = "\n".join(f"- {name}" for name in files) or "- (none, so the rebase should apply cleanly)"
        state = f"is behind {pull.target}. Files changed on both {pull.target} and the branch since it started:\n{listed}"
        subject = f"Rebase pull request #{pull.id} onto {pull.target}"
    body = (
        f"Pull request #{pull.id} ({pull.title}) on branch {pull.branch} {state}\n\n"
        f"Rebase the branch onto {pull.target} (git rebase {pull.target}), resolve any conflicts, "
        f"make sure the result builds and its tests pass, and finish the rebase."
    )
    return {"agent": pull.agent, "subject": subject, "body": body, "branch": pull.branch}


def merge_pull(repo: Path, paths: Paths, settings: Settings, pull_id: str, *, allow_violations: bool = False, lock_timeout: float = MERGE_LOCK_TIMEOUT) -> dict[str, Any]:
    """Approve and merge pull request ``pull_id`` into its target branch, holding the repo lock.

    Returns ``{"merged": bool, "pull": record, "message": str, ...}``. A conflict marks the pull
    request ``conflict`` and adds ``conflicts`` and a ``suggestion``, the rebase request to send
    the agent. A merge that would write files the user changed in the target's checkout is
    rejected, and ``local_changes`` names those files. Raises MergeError for a pull request that
    cannot be merged at all (merged, closed, violations without ``allow_violations``).
    """
    store = PullStore(paths)
    store.load(pull_id)
    lock = RepoLock(repo, holder=f"merge of pull request {pull_id}")
    lock.acquire(timeout=lock_timeout)
    try:
        pull = store.load(pull_id)
        return _merge_locked(repo, store, settings, pull, allow_violations)
    finally:
        lock.release()


def _merge_locked(repo: Path, store: PullStore, settings: Settings, pull: PullRequest, allow_violations: bool) -> dict[str, Any]:
    if pull.status == PullStatus.MERGED:
        raise MergeError(f"pull request {pull.id} is already merged (commit {pull.merge_commit or '?'})")
    if pull.status == PullStatus.CLOSED:
        raise MergeError(f"pull request {pull.id} is closed: it cannot be merged")
    if pull.violations and not allow_violations:
        names = ", ".join(pull.violations[:10])
        raise MergeError(f"pull request {pull.id} changes files outside its plan task's globs ({names}): review them, then merge with --allow-violations")
    if git_version(repo) < (2, 38):
        raise MergeError("merging needs git 2.38 or newer (for git merge-tree --write-tree): upgrade git")
    head = rev_parse(repo, pull.head)
    if head is None:
        raise MergeError(f"the head commit {pull.head} of pull request {pull.id} is missing from the repository: send the agent a new request")
    target_ref = f"refs/heads/{pull.target}"
    target_old = rev_parse(repo, target_ref)
    if target_old is None:
        raise MergeError(f"the target branch {pull.target!r} of pull request {pull.id} does not exist: create it, then merge again")

    checkout = target_checkout(repo, pull.target)
    if checkout is not None:
        operation = operation_in_progress(checkout)
        if operation:
            return _reject(store, pull, f"a {operation} is in progress in {checkout}, where {pull.target} is checked out: finish or abort it, then merge again")

    pull.status = PullStatus.APPROVED
    strategy = settings.git.merge_strategy
    if is_ancestor(repo, head, target_old):
        merged = _Merged(commit=target_old)
    else:
        merged = _build_merge(repo, pull, strategy, target_old, head)
    if merged.commit is None:
        return _conflict(store, pull, merged.conflicts)

    if merged.commit != target_old:
        if checkout is not None:
            edits = local_edits(checkout, changed_paths(repo, target_old, merged.commit))
            if edits is not None:
                message = f"the merge would change files you have modified or created in {checkout}: {edits.advice()}"
                result = _reject(store, pull, message)
                result["local_changes"] = edits.files
                return result
            proc = run_git(checkout, "merge", "--ff-only", "--quiet", merged.commit, check=False)
            if proc.returncode != 0:
                detail = proc.stderr.decode("utf-8", "replace").strip()
                return _reject(store, pull, f"could not move {pull.target} in {checkout}: {detail}; merge again when it is resolved")
        else:
            run_git(repo, "update-ref", "-m", f"aipass-tui: merge pull request {pull.id}", target_ref, merged.commit, target_old)

    pull.status = PullStatus.MERGED
    pull.merge_commit = merged.commit
    pull.merged_at = clock.now()
    pull.conflict_files = []
    pull.message = f"merged into {pull.target} as {merged.commit[:12]} ({strategy})"
    pull.updated_at = clock.now()
    store.save(pull)
    log.info("merged pull request %s (%s) into %s as %s", pull.id, pull.branch, pull.target, merged.commit)
    return {"merged": True, "pull": pull.record(), "merge_commit": merged.commit, "message": pull.message}


def _reject(store: PullStore, pull: PullRequest, message: str) -> dict[str, Any]:
    pull.message = message
    pull.updated_at = clock.now()
    store.save(pull)
    log.warning("did not merge pull request %s: %s", pull.id, message)
    return {"merged": False, "reason": "rejected", "pull": pull.record(), "message": message}


def _conflict(store: PullStore, pull: PullRequest, files: list[str]) -> dict[str, Any]:
    pull.status = PullStatus.CONFLICT
    pull.conflict_files = files
    pull.message = f"merging into {pull.target} conflicts in: {name_files(files)}; send the agent a request to rebase and resolve"
    pull.updated_at = clock.now()
    store.save(pull)
    log.warning("pull request %s conflicts with %s in %s", pull.id, pull.target, ", ".join(files))
    return {
        "merged": False,
        "reason": "conflict",
        "pull": pull.record(),
        "conflicts": files,
        "message": pull.message,
        "suggestion": rebase_suggestion(pull, files),
    }


# Other review actions -------------------------------------------------------------------------


def _load_active(store: PullStore, pull_id: str, action: str) -> PullRequest:
    pull = store.load(pull_id)
    if pull.status not in ACTIVE_STATUSES:
        raise MergeError(f"pull request {pull.id} is {pull.status.value}: it cannot be {action}")
    return pull


def approve_pull(paths: Paths, pull_id: str) -> dict[str, Any]:
    store = PullStore(paths)
    pull = _load_active(store, pull_id, "approved")
    pull.status = PullStatus.APPROVED
    pull.updated_at = clock.now()
    store.save(pull)
    return {"pull": pull.record()}


def close_pull(paths: Paths, pull_id: str) -> dict[str, Any]:
    """Close a pull request without merging; its branch and commits are kept."""
    store = PullStore(paths)
    pull = _load_active(store, pull_id, "closed")
    pull.status = PullStatus.CLOSED
    pull.message = f"closed without merging; branch {pull.branch} is kept"
    pull.updated_at = clock.now()
    store.save(pull)
    log.info("closed pull request %s (%s)", pull.id, pull.branch)
    return {"pull": pull.record()}


def comment_pull(
    paths: Paths, pull_id: str, body: str, *, path: str | None = None, line: int | None = None, side: str = "new", hunk: str | None = None
) -> dict[str, Any]:
    """Add a review comment on the pull request, a file, a line or a hunk."""
    if not body.strip():
        raise MergeError("the comment is empty: write what should change", 2)
    if side not in ("new", "old"):
        raise MergeError(f"invalid side {side!r}: use 'new' or 'old'", 2)
    store = PullStore(paths)
    pull = store.load(pull_id)
    if path is not None and path not in {f.path for f in pull.files}:
        raise MergeError(f"{path!r} is not a file of pull request {pull.id}: comment on one of its files", 2)
    if line is not None and (path is None or line < 1):
        raise MergeError(f"invalid line {line!r}: a line comment needs a file and a line number from 1", 2)
    number = max((c.id for c in pull.comments), default=0) + 1
    pull.comments.append(ReviewComment(id=number, body=body.strip(), path=path, line=line, side=side, hunk=hunk, created_at=clock.now()))  # type: ignore[arg-type]
    pull.updated_at = clock.now()
    store.save(pull)
    return {"pull": pull.record(), "comment": number}


def set_viewed(paths: Paths, pull_id: str, path: str, viewed: bool = True) -> dict[str, Any]:
    """Mark a file viewed at its current content (the mark resets when the file changes), or unmark it."""
    store = PullStore(paths)
    pull = store.load(pull_id)
    entry = next((f for f in pull.files if f.path == path), None)
    if entry is None:
        raise MergeError(f"{path!r} is not a file of pull request {pull.id}", 2)
    if viewed:
        pull.viewed[path] = entry.blob or ""
    else:
        pull.viewed.pop(path, None)
    store.save(pull)
    return {"pull": pull.record()}


def _format_comment(comment: ReviewComment) -> str:
    where = ""
    if comment.path:
        where = comment.path
        if comment.line is not None:
            where += f":{comment.line}" + (" (old side)" if comment.side == "old" else "")
        elif comment.hunk:
            where += f" {comment.hunk}"
        where += ": "
    return f"- {where}{comment.body}"


def request_changes(ctx: "HandlerContext", pull_id: str, message: str = "") -> dict[str, Any]:
    """Send the unsent review comments (plus ``message``) to the agent as a request on the branch."""
    store = PullStore(ctx.paths)
    pull = _load_active(store, pull_id, "sent back for changes")
    if message.strip():
        number = max((c.id for c in pull.comments), default=0) + 1
        pull.comments.append(ReviewComment(id=number, body=message.strip(), created_at=clock.now()))
    unsent = [c for c in pull.comments if not c.sent]
    if not unsent:
        raise MergeError(f"pull request {pull.id} has no unsent review comments: give a MESSAGE saying what to change", 2)
    comments = "\n".join(_format_comment(c) for c in unsent)
    body = (
        f"Review of pull request #{pull.id} ({pull.title}) on branch {pull.branch} asks for changes:\n\n"
        f"{comments}\n\nMake these changes on the same branch."
    )
    request = {
        "agent": pull.agent,
        "subject": f"Address review comments on pull request #{pull.id}: {pull.title}",
        "body": body,
        "branch": pull.branch,
        "plan_task": pull.plan_task,
    }
    request_id = dispatch_request(ctx, request)
    for comment in unsent:
        comment.sent = True
    pull.status = PullStatus.CHANGES_REQUESTED
    pull.message = f"changes requested from {pull.agent}"
    pull.updated_at = clock.now()
    store.save(pull)
    return {"pull": pull.record(), "request": {**request, "id": request_id}}


def rebase_request(ctx: "HandlerContext", pull_id: str) -> dict[str, Any]:
    """Send the agent a request to rebase the branch onto the target and resolve the conflicts.

    Raises MergeError when the user's own uncommitted edits are what stops the merge, because a
    rebase cannot take in edits that are not committed: the message names those files.
    """
    store = PullStore(ctx.paths)
    pull = _load_active(store, pull_id, "sent back for a rebase")
    files, conflict = _files_to_rebase(ctx.paths.repo, pull)
    if conflict:
        message = f"rebase requested from {pull.agent} to resolve the conflicts in {name_files(files) or 'files git did not name'}"
    else:
        message = f"rebase onto {pull.target} requested from {pull.agent}"
        if files:
            message += f" (files changed on both sides: {name_files(files)})"
    request = {**rebase_suggestion(pull, files, conflict=conflict), "plan_task": pull.plan_task}
    request_id = dispatch_request(ctx, request)
    pull.status = PullStatus.CHANGES_REQUESTED
    pull.message = message
    pull.updated_at = clock.now()
    store.save(pull)
    return {"pull": pull.record(), "request": {**request, "id": request_id}, "message": message}


def _files_to_rebase(repo: Path, pull: PullRequest) -> tuple[list[str], bool]:
    """Return the files a rebase of the pull request must deal with, and whether they conflict.

    The conflicts of the last merge come first. Otherwise the merge is built again without
    touching a checkout: its conflicts, or else the files changed on both sides. Raises
    MergeError when uncommitted edits in the target's checkout are in the way of the merge.
    """
    if pull.conflict_files:
        return pull.conflict_files, True
    head = rev_parse(repo, pull.head)
    target = rev_parse(repo, f"refs/heads/{pull.target}")
    if head is None or target is None:
        return [], False
    if git_version(repo) >= (2, 38):
        tree, conflicts = _merge_tree(repo, target, head)
        if tree is None:
            return conflicts, True
        written = changed_paths(repo, target, tree)
    else:
        written = branch_paths(repo, target, head)
    checkout = target_checkout(repo, pull.target)
    edits = local_edits(checkout, written) if checkout is not None else None
    if edits is not None:
        raise MergeError(
            f"pull request {pull.id} is stopped by your own uncommitted edits in {edits.checkout}, not by a conflict, "
            f"and a rebase by {pull.agent} cannot take in edits that are not committed: {edits.advice()}"
        )
    return both_sides(repo, target, head), False


def dispatch_request(ctx: "HandlerContext", request: dict[str, Any]) -> str | None:
    """Queue ``request`` through the orchestrator, or drop it into the inbox when none is given.

    Returns the request id when one is known.
    """
    if request["agent"] not in ctx.settings.agents:
        raise MergeError(f"agent {request['agent']!r} is not in the configuration any more: add it back to send it the request")
    if ctx.orchestrator is not None:
        result = ctx.orchestrator.dispatch(
            request["agent"], request["subject"], request["body"], sender="review",
            branch=request["branch"], plan_task=request.get("plan_task"),
        )
        return getattr(result, "id", None)
    request_id = clock.new_id("r")
    message = {
        "type": "request",
        "id": request_id,
        "agent": request["agent"],
        "subject": request["subject"],
        "body": request["body"],
        "sender": "review",
        "priority": 0,
        "branch": request["branch"],
        "plan_task": request.get("plan_task"),
        "created_at": clock.now(),
    }
    write_json(ctx.paths.inbox / f"{request_id}.json", message)
    return request_id
