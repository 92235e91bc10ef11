"""The repo lock: one holder at a time commits agents' work, runs checks or merges.

The lock file is ``aipass.lock`` inside the git directory shared by all worktrees (the one
``git rev-parse --git-common-dir`` names), which git never stages, so it cannot be committed
even by ``git add -A``. It is held with ``flock``: the kernel releases it when the holder dies,
and the next process that takes it finds the dead holder's record and logs the takeover.
Two RepoLock objects exclude each other even inside one process, because each opens the file
anew and ``flock`` locks belong to the open file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

from aipass_tui.core import clock
from aipass_tui.core.gitflow_git import common_dir

log = logging.getLogger(__name__)

LOCK_NAME = "aipass.lock"


def lock_path(repo: Path) -> Path:
    """Return the path of the repo lock of the repository that contains ``repo``."""
    return common_dir(repo) / LOCK_NAME


class RepoLockHeld(Exception):
    """Another live process or thread holds the repo lock; ``info`` is what it recorded."""

    def __init__(self, path: Path, info: dict[str, Any], waited: float) -> None:
        self.path = path
        self.info = info
        super().__init__(f"the repo lock {path} is held by {describe_holder(info)}; waited {waited:.0f} s: try again when it is released")


def describe_holder(info: dict[str, Any]) -> str:
    """Return ``"merge of pull request 3 (pid 123 on host, since 2026-01-02T03:04:05Z)"``."""
    if not info:
        return "another process (it recorded no details)"
    since = clock.iso(float(info["started_at"])) if info.get("started_at") else "?"
    return f"{info.get('holder', 'another process')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, since {since})"


def _read_info(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 65536, 0)
        return json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RepoLock:
    """An exclusive lock on the repository's git flow, recording holder, pid, host and start time."""

    def __init__(self, repo: Path, holder: str) -> None:
        self.path = lock_path(repo)
        self.holder = holder
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; raise RepoLockHeld naming the holder."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RepoLock ({self.holder})")
        start = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                info = _read_info(fd)
                os.close(fd)
                waited = time.monotonic() - start
                # A few quick retries even with no timeout, because repo_lock_holder()
                # takes the lock for a moment to test it.
                if waited >= timeout and attempts >= 3:
                    raise RepoLockHeld(self.path, info, waited) from None
                time.sleep(min(0.05, max(timeout - waited, 0.005)))
                continue
            self._take(fd)
            return

    def _take(self, fd: int) -> None:
        previous = _read_info(fd)
        if previous:
            pid = previous.get("pid")
            state = "is no longer running" if isinstance(pid, int) and not _pid_alive(pid) else "no longer holds it"
            log.warning("took over the repo lock %s from %s, which %s", self.path, describe_holder(previous), state)
        info = {"holder": self.holder, "pid": os.getpid(), "host": socket.gethostname(), "started_at": clock.now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> "RepoLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def repo_lock_holder(repo: Path) -> dict[str, Any] | None:
    """Return the record of the live holder of the repo lock (holder, pid, host, started_at), or None."""
    path = lock_path(repo)
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_info(fd) or {"holder": "unknown"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
