"""Running git: one place that builds the argv and environment of every git call.

Every call runs without a shell and with stdin closed. The caller's ``GIT_DIR``-style variables
are removed, so a hook environment cannot redirect a call to another repository. Output stays
bytes, so file names and contents reach the caller exactly.

Read-only calls (``read_only=True``) set ``GIT_OPTIONAL_LOCKS=0``, which stops ``git status``
from refreshing and rewriting the index. Diffs never compare against the index or the working
tree: they compare two commits, which reads only objects.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# Variables that would point git at another repository, index or work tree than the one asked for.
_REPO_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)

# Options that keep git's output in the plain, parseable form whatever the user's config sets.
PLAIN_OUTPUT = ("-c", "core.quotepath=false", "-c", "color.ui=never", "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false")

FALLBACK_NAME = "aipass-tui"
FALLBACK_EMAIL = "aipass-tui@aipass.local"


class GitError(Exception):
    """A git command failed; the message names the command, the folder and git's own output."""

    def __init__(self, args: list[str], cwd: Path, returncode: int, stderr: str) -> None:
        self.args_list = args
        self.cwd = cwd
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip() or f"exit status {returncode}"
        super().__init__(f"git {' '.join(args)} failed in {cwd}: {detail}")


@dataclass(frozen=True)
class Identity:
    name: str
    email: str

    def env(self, *, author: bool = True, committer: bool = True) -> dict[str, str]:
        """Return the ``GIT_AUTHOR_*``/``GIT_COMMITTER_*`` variables for this identity."""
        out: dict[str, str] = {}
        if author:
            out.update(GIT_AUTHOR_NAME=self.name, GIT_AUTHOR_EMAIL=self.email)
        if committer:
            out.update(GIT_COMMITTER_NAME=self.name, GIT_COMMITTER_EMAIL=self.email)
        return out


def agent_identity(agent: str) -> Identity:
    """Return the identity that commits made for ``agent`` carry."""
    return Identity(agent, f"{agent}@aipass.local")


def git_env(extra: dict[str, str] | None = None, *, read_only: bool = False) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _REPO_VARIABLES}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.pop("LANGUAGE", None)
    if read_only:
        env["GIT_OPTIONAL_LOCKS"] = "0"
    if extra:
        env.update(extra)
    return env


def run_git(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    read_only: bool = False,
    timeout: float | None = 300.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``git ARGS`` in ``cwd`` and return the completed process (stdout and stderr as bytes).

    Raises GitError when git exits non-zero and ``check`` is true.
    """
    argv = ["git", *args]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env=git_env(env, read_only=read_only),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise GitError(list(args), cwd, 127, "git is not installed or not on PATH: install git 2.38 or newer") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(list(args), cwd, -1, f"timed out after {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        raise GitError(list(args), cwd, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc


def git_text(cwd: Path, *args: str, read_only: bool = True, **kwargs: object) -> str:
    """Run git and return its stdout decoded as UTF-8 without the trailing newline."""
    proc = run_git(cwd, *args, read_only=read_only, **kwargs)  # type: ignore[arg-type]
    return proc.stdout.decode("utf-8", "surrogateescape").rstrip("\n")


def rev_parse(cwd: Path, rev: str) -> str | None:
    """Return the commit id ``rev`` names, or None when it names no commit."""
    proc = run_git(cwd, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}", check=False, read_only=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


def toplevel(path: Path) -> Path:
    """Return the root of the checkout that contains ``path``."""
    return Path(git_text(path, "rev-parse", "--show-toplevel"))


def common_dir(repo: Path) -> Path:
    """Return the git directory shared by all worktrees (``.git`` of the main checkout)."""
    value = git_text(repo, "rev-parse", "--git-common-dir")
    path = Path(value)
    return (path if path.is_absolute() else repo / path).resolve()


def git_dir(checkout: Path) -> Path:
    """Return the private git directory of one checkout (``.git/worktrees/<name>`` for a worktree)."""
    value = git_text(checkout, "rev-parse", "--git-dir")
    path = Path(value)
    return (path if path.is_absolute() else checkout / path).resolve()


def current_branch(checkout: Path) -> str | None:
    """Return the branch checked out in ``checkout``, or None for a detached HEAD."""
    proc = run_git(checkout, "symbolic-ref", "--quiet", "--short", "HEAD", check=False, read_only=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "surrogateescape").strip()


def operation_in_progress(checkout: Path) -> str | None:
    """Return ``"rebase"``, ``"merge"``, ``"cherry-pick"`` or ``"revert"`` when one is unfinished."""
    private = git_dir(checkout)
    if (private / "rebase-merge").exists() or (private / "rebase-apply").exists():
        return "rebase"
    for name, label in (("MERGE_HEAD", "merge"), ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert")):
        if (private / name).exists():
            return label
    return None


def rebasing_branch(checkout: Path) -> str | None:
    """Return the short name of the branch an unfinished rebase in ``checkout`` is rewriting."""
    private = git_dir(checkout)
    for folder in ("rebase-merge", "rebase-apply"):
        head_name = private / folder / "head-name"
        if head_name.exists():
            return head_name.read_text(encoding="utf-8", errors="surrogateescape").strip().removeprefix("refs/heads/")
    return None


def status_entries(checkout: Path, *, ignored: bool = False) -> list[tuple[str, str]]:
    """Return ``(XY, path)`` for every changed, untracked (and with ``ignored``, ignored) path.

    Runs with optional locks off, so it never writes the index even when its stat data is stale.
    Both names of a rename are returned as separate entries.
    """
    args = ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"]
    if ignored:
        args.append("--ignored=matching")
    out = run_git(checkout, *PLAIN_OUTPUT, *args, read_only=True).stdout
    entries: list[tuple[str, str]] = []
    for record in out.split(b"\0"):
        if len(record) < 4:
            continue
        code = record[:2].decode()
        entries.append((code, record[3:].decode("utf-8", "surrogateescape")))
    return entries


def has_uncommitted(checkout: Path) -> bool:
    """Tell whether ``checkout`` has staged, unstaged or untracked (not ignored) changes."""
    return bool(status_entries(checkout))


def is_ancestor(cwd: Path, ancestor: str, descendant: str) -> bool:
    proc = run_git(cwd, "merge-base", "--is-ancestor", ancestor, descendant, check=False, read_only=True)
    return proc.returncode == 0


def merge_base(cwd: Path, one: str, two: str) -> str | None:
    proc = run_git(cwd, "merge-base", one, two, check=False, read_only=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


def user_identity(cwd: Path) -> Identity:
    """Return the user's configured committer identity, or the aipass-tui one when none is set."""
    proc = run_git(cwd, "var", "GIT_COMMITTER_IDENT", check=False, read_only=True)
    match = re.match(r"(.*) <(.*)> \d+ [+-]\d{4}$", proc.stdout.decode("utf-8", "replace").strip())
    if proc.returncode != 0 or match is None or not match.group(1):
        return Identity(FALLBACK_NAME, FALLBACK_EMAIL)
    return Identity(match.group(1), match.group(2))


@dataclass(frozen=True)
class WorktreeEntry:
    path: Path
    head: str | None
    branch: str | None  # short name, None when detached
    prunable: bool
    bare: bool


def list_worktrees(repo: Path) -> list[WorktreeEntry]:
    """Return git's list of worktrees (the main checkout first)."""
    out = run_git(repo, "worktree", "list", "--porcelain", "-z", read_only=True).stdout
    entries: list[WorktreeEntry] = []
    fields: dict[str, str] = {}
    for item in out.split(b"\0"):
        text = item.decode("utf-8", "surrogateescape")
        if text:
            key, _, value = text.partition(" ")
            fields[key] = value
            continue
        if fields:
            branch = fields.get("branch")
            entries.append(
                WorktreeEntry(
                    path=Path(fields["worktree"]),
                    head=fields.get("HEAD"),
                    branch=branch.removeprefix("refs/heads/") if branch else None,
                    prunable="prunable" in fields,
                    bare="bare" in fields,
                )
            )
            fields = {}
    return entries


def git_version(cwd: Path) -> tuple[int, int]:
    text = git_text(cwd, "version")
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)
