"""Branches of cluster runs: pushed to ``[cluster] repo_url`` before a run, fetched after it.

A run with ``runner = "ray"`` works in a clone on a cluster node, not in the agent's local
worktree. Before the run, the agent's branch is pushed to ``repo_url`` so the node can clone it
at the base commit. After the run, the node has committed and pushed its work to the same
branch; the local worktree, which the agent never used, is moved to the fetched head, and the
pull request is recorded from there as for a local run (checks run in that worktree).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from aipass_tui.core.gitflow_git import GitError, current_branch, has_uncommitted, is_ancestor, rev_parse, run_git
from aipass_tui.core.workspace import WorkspaceError

log = logging.getLogger(__name__)

GIT_NETWORK_TIMEOUT = 600.0


def remote_branches(repo: Path, repo_url: str, prefix: str) -> set[str]:
    """Return the names of the branches below ``prefix`` on ``repo_url`` (without ``refs/heads/``)."""
    try:
        out = run_git(repo, "ls-remote", "--heads", repo_url, f"refs/heads/{prefix}*", read_only=True, timeout=GIT_NETWORK_TIMEOUT).stdout
    except GitError as exc:
        raise WorkspaceError(f"could not list the branches on {repo_url}: {exc}; check [cluster] repo_url") from exc
    names: set[str] = set()
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        _, _, ref = line.partition("\t")
        if ref.startswith("refs/heads/"):
            names.add(ref.removeprefix("refs/heads/"))
    return names


def push_branch(repo: Path, repo_url: str, branch: str) -> str:
    """Push the local ``branch`` to ``repo_url`` (fast-forward only) and return its head.

    Raises WorkspaceError when the remote branch has commits the local one lacks, so work that
    an earlier cluster run pushed is never overwritten.
    """
    head = rev_parse(repo, f"refs/heads/{branch}")
    if head is None:
        raise WorkspaceError(f"branch {branch!r} does not exist in {repo}")
    proc = run_git(repo, "push", "--quiet", "--porcelain", repo_url, f"{head}:refs/heads/{branch}", check=False, timeout=GIT_NETWORK_TIMEOUT)
    if proc.returncode == 0:
        log.info("pushed branch %s at %s to %s", branch, head[:12], repo_url)
        return head
    detail = (proc.stderr.decode("utf-8", "replace") + proc.stdout.decode("utf-8", "replace")).strip()
    if "non-fast-forward" in detail or "[rejected]" in detail or "fetch first" in detail:
        raise WorkspaceError(
            f"branch {branch} on {repo_url} has commits that the local branch lacks, so it was not "
            f"overwritten: fetch them (git fetch {repo_url} {branch}:{branch}) or delete the remote branch, "
            f"then start the request again"
        )
    raise WorkspaceError(f"could not push branch {branch} to {repo_url}: {detail or f'exit status {proc.returncode}'}")


def read_push_result(run_dir: Path) -> dict[str, Any] | None:
    """Return the push result a cluster run reported in ``remote.json``, or None when absent."""
    try:
        data = json.loads((run_dir / "remote.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    push = data.get("push") if isinstance(data, dict) else None
    return push if isinstance(push, dict) else None


def fetch_run_branch(worktree: Path, repo_url: str, branch: str, run_id: str, run_dir: Path) -> str:
    """Fetch the branch a cluster run pushed and move the worktree to its head; return that head.

    The worktree must have ``branch`` checked out without uncommitted changes. A fetched head
    that does not contain the local head (the agent rewrote history) replaces it with
    ``git reset --keep``; the old head stays in the branch's reflog.
    """
    push = read_push_result(run_dir)
    if push is not None and not push.get("ok"):
        raise WorkspaceError(
            f"run {run_id} could not push branch {branch} from its node: {push.get('error')}; "
            f"its work stays in the node's run folder (see {run_dir / 'remote.json'})"
        )
    if current_branch(worktree) != branch:
        raise WorkspaceError(f"the worktree {worktree} is not on branch {branch}, so the work of run {run_id} cannot be fetched into it")
    if has_uncommitted(worktree):
        raise WorkspaceError(
            f"the worktree {worktree} has uncommitted changes, but run {run_id} worked on a cluster node: "
            f"commit or discard them there (git -C {worktree} status), then record the run again"
        )
    try:
        run_git(worktree, "fetch", "--quiet", "--no-tags", repo_url, f"refs/heads/{branch}", timeout=GIT_NETWORK_TIMEOUT)
    except GitError as exc:
        raise WorkspaceError(f"could not fetch branch {branch} of run {run_id} from {repo_url}: {exc}") from exc
    fetched = rev_parse(worktree, "FETCH_HEAD")
    if fetched is None:
        raise WorkspaceError(f"fetching branch {branch} from {repo_url} gave no commit")
    expected = push.get("head") if push else None
    if expected and expected != fetched:
        log.warning("run %s pushed %s but %s on %s is now at %s; recording %s", run_id, expected[:12], branch, repo_url, fetched[:12], fetched[:12])
    local = rev_parse(worktree, "HEAD")
    if local == fetched:
        return fetched
    if local is None or is_ancestor(worktree, local, fetched):
        run_git(worktree, "merge", "--ff-only", "--quiet", fetched)
    else:
        log.warning("run %s rewrote branch %s: moving it from %s to %s (the old head stays in the reflog)", run_id, branch, local[:12], fetched[:12])
        run_git(worktree, "reset", "--keep", "--quiet", fetched)
    log.info("moved the worktree %s to %s, the head run %s pushed to %s", worktree, fetched[:12], run_id, branch)
    return fetched
