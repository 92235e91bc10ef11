"""The repo lock and lock-free reads: a stale holder, a live holder, git's own index.lock."""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aipass_tui.core.diff import PullDiff, list_files
from aipass_tui.core.gitflow_git import git_dir, has_uncommitted, status_entries
from aipass_tui.core.gitflow_lock import RepoLock, RepoLockHeld, lock_path, repo_lock_holder
from test_gitflow_support import (  # noqa: F401  (no_user_git_config is an autouse fixture)
    agent_work,
    git,
    make_env,
    make_request,
    no_user_git_config,
    write,
)

HOLDER = """
import sys, time
from pathlib import Path
from aipass_tui.core.gitflow_lock import RepoLock
lock = RepoLock(Path(sys.argv[1]), "test holder")
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def start_holder(repo: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(repo)], stdout=subprocess.PIPE, text=True)
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=20):
        proc.kill()
        proc.wait()
        raise AssertionError("the lock holder did not start within 20 s")
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_lives_in_common_git_dir(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "x"))

    with RepoLock(env.repo, "test"):
        assert lock_path(info.cwd) == lock_path(env.repo)
        assert lock_path(env.repo).parent == (env.repo / ".git").resolve()
        git(env.repo, "add", "-A")
        git(info.cwd, "add", "-A")
        assert git(env.repo, "status", "--porcelain", "--ignored") == "!! .aipass/"
        assert git(env.repo, "diff", "--cached", "--name-only") == ""
        git(env.repo, "commit", "-q", "--allow-empty", "-m", "try")
        assert "aipass.lock" not in git(env.repo, "ls-tree", "-r", "--name-only", "HEAD")


def test_live_holder_is_reported(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    holder = start_holder(env.repo)
    try:
        info = repo_lock_holder(env.repo)
        assert info is not None
        assert info["pid"] == holder.pid
        assert info["holder"] == "test holder"
        with pytest.raises(RepoLockHeld, match=f"test holder \\(pid {holder.pid} on "):
            RepoLock(env.repo, "second").acquire(timeout=0.2)
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = make_env(tmp_path)
    holder = start_holder(env.repo)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    lock = RepoLock(env.repo, "after crash")
    with caplog.at_level(logging.WARNING, logger="aipass_tui.core.gitflow_lock"):
        lock.acquire(timeout=5)
    try:
        assert f"took over the repo lock {lock.path} from test holder (pid {holder.pid}" in caplog.text
        assert "is no longer running" in caplog.text
        assert repo_lock_holder(env.repo)["holder"] == "after crash"
    finally:
        lock.release()
    assert repo_lock_holder(env.repo) is None


def test_finish_waits_for_lock_holder(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env.workspace.lock_timeout = 0.3
    holder = start_holder(env.repo)
    try:
        from aipass_tui.core.workspace import WorkspaceError

        with pytest.raises(WorkspaceError, match="held by test holder"):
            agent_work(env, "alpha", "x", {"a.txt": "a\n"})
    finally:
        holder.kill()
        holder.wait()
    assert (env.paths.worktrees / "alpha" / "a.txt").read_text() == "a\n"


def test_locks_exclude_each_other_in_one_process(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = RepoLock(env.repo, "first")
    first.acquire()
    try:
        with pytest.raises(RepoLockHeld, match="held by first"):
            RepoLock(env.repo, "second").acquire(timeout=0.1)
    finally:
        first.release()
    with RepoLock(env.repo, "second"):
        pass


def index_state(checkout: Path) -> tuple[int, bytes]:
    index = git_dir(checkout) / "index"
    return index.stat().st_mtime_ns, index.read_bytes()


def test_reads_ignore_agent_index_lock(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"src/app.py": "print(2)\n"})
    worktree = env.paths.worktrees / "alpha"
    write(worktree, "src/util.py", "x = 'agent editing'\n")
    index_lock = git_dir(worktree) / "index.lock"
    index_lock.write_bytes(b"")
    before = index_state(worktree)

    entries = status_entries(worktree)
    dirty = has_uncommitted(worktree)
    files = list_files(env.repo, pull["base"], pull["head"])
    patch = PullDiff(worktree, pull["base"], pull["head"]).load_patch("src/app.py")

    assert entries == [(" M", "src/util.py")]
    assert dirty
    assert [f.path for f in files] == ["src/app.py"]
    assert patch.rows[-1].text == "print(2)"
    assert index_state(worktree) == before
    assert index_lock.exists()


def test_status_does_not_rewrite_stale_index(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    index = git_dir(env.repo) / "index"
    old = time.time() - 1000
    os.utime(index, (old, old))
    os.utime(env.repo / "README.md", None)
    before = index_state(env.repo)

    assert status_entries(env.repo) == []
    assert list_files(env.repo, "HEAD", "HEAD") == []
    assert index_state(env.repo) == before

    # Control: a plain git status refreshes the stale stat data and rewrites the index.
    git(env.repo, "status", "--porcelain")
    assert index_state(env.repo)[0] != before[0]
