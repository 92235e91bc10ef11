"""Atomic JSON files, the layout of ``.aipass/``, and the one-orchestrator lock."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

from pydantic import BaseModel, ValidationError

from aipass_tui.core import clock
from aipass_tui.core.models import SCHEMA_VERSION

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class StateError(Exception):
    """A state file could not be read or written; the message names the file and what to do."""


class CorruptStateError(StateError):
    """A state file was unreadable and has been moved aside to ``moved_to``."""

    def __init__(self, path: Path, moved_to: Path | None, reason: str) -> None:
        self.path = path
        self.moved_to = moved_to
        self.reason = reason
        where = f"; it was moved to {moved_to}" if moved_to else ""
        super().__init__(f"state file {path} is unreadable ({reason}){where}")


class StateWriteError(StateError):
    """Writing a state file failed; the previous version of the file is intact."""


@dataclass(frozen=True)
class Paths:
    """Locations of everything inside a repository's ``.aipass/`` folder."""

    repo: Path

    @property
    def root(self) -> Path:
        return self.repo / ".aipass"

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def orchestrator(self) -> Path:
        return self.state / "orchestrator.json"

    @property
    def orchestrator_lock(self) -> Path:
        return self.state / "orchestrator.lock"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def replies(self) -> Path:
        return self.state / "replies"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    @property
    def plans(self) -> Path:
        return self.root / "plans"

    @property
    def pulls(self) -> Path:
        return self.state / "pulls"

    @property
    def plan_state(self) -> Path:
        return self.state / "plans"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def agent_dir(self, name: str) -> Path:
        return self.state / "agents" / name

    def agent_state(self, name: str) -> Path:
        return self.agent_dir(name) / "local.json"

    def run_dir(self, run_id: str) -> Path:
        return self.runs / run_id

    def ensure(self) -> None:
        """Create the folders of ``.aipass/`` (the root with mode 0700)."""
        self.root.mkdir(mode=0o700, exist_ok=True)
        for folder in (self.state, self.inbox, self.replies, self.runs, self.plans, self.pulls, self.plan_state, self.logs):
            folder.mkdir(parents=True, exist_ok=True)


_write_listeners: list[Callable[[Path], None]] = []


def add_write_listener(listener: Callable[[Path], None]) -> Callable[[], None]:
    """Call ``listener(path)`` before every ``write_json``; return a function that removes it.

    The file watcher uses this to tell this process's own writes from other processes' writes.
    """
    _write_listeners.append(listener)
    return lambda: _write_listeners.remove(listener) if listener in _write_listeners else None


def write_json(path: Path, data: Any, *, fsync: bool = True) -> None:
    """Write ``data`` as JSON atomically: unique temp file, flush, fsync, ``os.replace``.

    On failure (a full disk, a read-only folder) the temp file is removed, the previous file
    stays as it was, and StateWriteError names the path and the cause.
    """
    if isinstance(data, BaseModel):
        text = data.model_dump_json(indent=2)
    else:
        if isinstance(data, dict) and "schema_version" not in data:
            data = {"schema_version": SCHEMA_VERSION, **data}
        text = json.dumps(data, indent=2, ensure_ascii=False)
    encoded = (text + "\n").encode("utf-8")
    for listener in list(_write_listeners):
        listener(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        view = memoryview(encoded)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp_name, path)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        hint = " (the disk is full: free space and the write is retried)" if exc.errno == errno.ENOSPC else ""
        raise StateWriteError(f"could not write {path}: {exc.strerror or exc}{hint}") from exc


def move_aside(path: Path) -> Path | None:
    """Rename an unreadable file to ``<name>.corrupt-<time>`` and return the new path."""
    stamp = clock.iso().replace(":", "")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    try:
        os.replace(path, target)
    except OSError as exc:
        log.error("could not move unreadable file %s aside: %s", path, exc)
        return None
    log.warning("moved unreadable state file %s to %s", path, target)
    return target


def read_json(path: Path) -> Any:
    """Read a JSON file; raise CorruptStateError after moving an unreadable one aside.

    Returns None when the file does not exist.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    reason = _problem(raw)
    if reason is None:
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reason = f"invalid JSON: {exc}"
    raise CorruptStateError(path, move_aside(path), reason)


def _problem(raw: bytes) -> str | None:
    if not raw:
        return "the file is empty"
    if raw.strip(b"\x00") == b"":
        return "the file holds only NUL bytes"
    return None


def read_model(path: Path, model: type[M]) -> M | None:
    """Read and validate a state file; an invalid one is moved aside like unreadable JSON."""
    data = read_json(path)
    if data is None:
        return None
    if isinstance(data, dict) and int(data.get("schema_version", SCHEMA_VERSION)) > SCHEMA_VERSION:
        raise StateError(
            f"{path} has schema_version {data['schema_version']}, newer than this aipass-tui "
            f"understands ({SCHEMA_VERSION}): upgrade aipass-tui"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CorruptStateError(path, move_aside(path), f"invalid content: {exc.errors()[0]['msg']}") from exc


class LockHeld(Exception):
    """Another live process holds the lock; ``info`` is what that holder recorded."""

    def __init__(self, path: Path, info: dict[str, Any]) -> None:
        self.path = path
        self.info = info
        super().__init__(
            f"another orchestrator (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"{info.get('role', 'orchestrator')}) already runs on this repository"
        )


class FileLock:
    """An exclusive ``flock`` on a file, released by the kernel when the holder dies.

    The holder's pid, host, role and start time are written into the file so that a rejected
    process can name the holder.
    """

    def __init__(self, path: Path, role: str = "orchestrator") -> None:
        self.path = path
        self.role = role
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming the live holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, read_lock_info(self.path)) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "role": self.role, "started_at": clock.now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_lock_info(path: Path) -> dict[str, Any]:
    """Return what the lock's holder recorded, or an empty dict."""
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def lock_is_held(path: Path) -> bool:
    """Tell whether a live process holds the flock on ``path``."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
