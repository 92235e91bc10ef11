"""The user's uncommitted edits that stop a pull request from merging, and how messages name files.

A merge moves the target branch in the checkout where that branch is checked out (usually the
main checkout), so it must never write a file that the user changed there and has not
committed. These helpers find such files for the merge and for a later rebase request.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aipass_tui.core.diff import display
from aipass_tui.core.gitflow_git import list_worktrees, merge_base, run_git, status_entries

MAX_NAMED_FILES = 5
"""Files a one-line message names before it counts the rest ("and 3 more")."""


def name_files(names: list[str], limit: int = MAX_NAMED_FILES) -> str:
    """Join at most ``limit`` file names with commas and count the rest: ``a.txt, b.txt and 2 more``."""
    listed = ", ".join(names[:limit])
    rest = len(names) - limit
    return f"{listed} and {rest} more" if rest > 0 else listed


@dataclass(frozen=True)
class LocalEdits:
    """Files of the user's checkout that a merge would overwrite, split into edited files and files that git ignores."""

    checkout: Path
    edited: list[str]
    """Modified, staged or untracked files: a commit or ``git stash -u`` puts them aside."""
    ignored: list[str]
    """Files that git ignores, which only moving them away puts aside."""

    @property
    def files(self) -> list[str]:
        return self.edited + self.ignored

    def advice(self) -> str:
        """Return what the user does before merging again, naming the files."""
        steps = []
        if self.edited:
            steps.append(f"commit or stash your edits to {name_files(self.edited)}")
        if self.ignored:
            steps.append(f"move away {name_files(self.ignored)} (git ignores them)")
        return " and ".join(steps) + ", then merge again"


def target_checkout(repo: Path, branch: str) -> Path | None:
    """Return the checkout (main checkout or worktree) where ``branch`` is checked out, if any."""
    return next((entry.path for entry in list_worktrees(repo) if entry.branch == branch and not entry.prunable), None)


def changed_paths(repo: Path, old: str, new: str) -> list[str]:
    """Return the paths that differ between commits ``old`` and ``new``."""
    out = run_git(repo, "diff", "--name-only", "-z", "--no-renames", old, new, read_only=True).stdout
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def branch_paths(repo: Path, target: str, head: str) -> list[str]:
    """Return the paths a branch changed since it left ``target``: the files a clean merge of it writes."""
    base = merge_base(repo, target, head)
    return changed_paths(repo, base, head) if base is not None else []


def both_sides(repo: Path, target: str, head: str) -> list[str]:
    """Return the paths changed on both ``target`` and the branch at ``head`` since they split."""
    base = merge_base(repo, target, head)
    if base is None:
        return []
    on_target = set(changed_paths(repo, base, target))
    return [path for path in changed_paths(repo, base, head) if path in on_target]


def overlap(changed: list[str], local: list[str]) -> list[str]:
    """Return the local paths the merge would write: equal paths, or one inside the other as a folder."""
    hits: list[str] = []
    changed_set = set(changed)
    for path in local:
        bare = path.rstrip("/")
        if bare in changed_set or any(c.startswith(bare + "/") or bare.startswith(c + "/") for c in changed):
            hits.append(path)
    return hits


def local_edits(checkout: Path, changed: list[str]) -> LocalEdits | None:
    """Return the user's files in ``checkout`` that writing ``changed`` would overwrite, or None."""
    entries = status_entries(checkout, ignored=True)
    local = [name for _, name in entries]
    hits = set(overlap(changed, local))
    if not hits:
        return None
    edited = [display(name) for code, name in entries if name in hits and code != "!!"]
    ignored = [display(name) for code, name in entries if name in hits and code == "!!"]
    return LocalEdits(checkout, edited, ignored)
