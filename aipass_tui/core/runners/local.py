"""Local runs: each agent runs detached in its own session, output goes to files.

A small ``sh`` wrapper is the process group leader: it records its pid, runs the agent with
stdin closed and stdout and stderr appended to files in the run folder, then records the exit
status atomically. So a run's status is recorded even when no orchestrator is alive when it ends,
and the orchestrator needs no thread and no Python process per run: one pidfd and two file
handles per live run, polled on its tick.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import subprocess
from pathlib import Path

import psutil

from aipass_tui.core.runners.base import RunHandle

log = logging.getLogger(__name__)

# The TERM/INT/HUP traps keep the wrapper alive until the agent has ended, so it can record the
# agent's exit status. A trap that runs a command (not an ignored signal) is reset in the child.
WRAPPER = r"""
trap ':' TERM INT HUP
printf '%s\n' "$$" > "$AIPASS_RUN_DIR/pid.tmp" && mv -f "$AIPASS_RUN_DIR/pid.tmp" "$AIPASS_RUN_DIR/pid"
"$@" </dev/null >>"$AIPASS_RUN_DIR/stdout" 2>>"$AIPASS_RUN_DIR/stderr"
code=$?
printf '%s\n' "$code" > "$AIPASS_RUN_DIR/exit.tmp" && mv -f "$AIPASS_RUN_DIR/exit.tmp" "$AIPASS_RUN_DIR/exit"
exit "$code"
"""


class LocalRunner:
    name = "local"

    def __init__(self) -> None:
        self._poll = select.epoll() if hasattr(select, "epoll") else None
        self._by_pidfd: dict[int, RunHandle] = {}

    def start(self, run_id: str, run_dir: Path, argv: list[str], cwd: Path, env: dict[str, str]) -> RunHandle:
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in ("stdout", "stderr"):
            (run_dir / name).touch()
        env = {**env, "AIPASS_RUN_DIR": str(run_dir)}
        proc = subprocess.Popen(
            ["/bin/sh", "-c", WRAPPER, "aipass-run", *argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        # The Popen object is dropped on purpose: the wrapper is reaped by pid in exit_code(), and
        # subprocess's own bookkeeping must not reap it first. Popen keeps a reference in
        # subprocess._active only if it is garbage collected while the child runs, so detach it.
        proc.returncode = 0
        handle = RunHandle(run_id, run_dir, pid=proc.pid, extra={"child": True})
        try:
            handle.create_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            handle.create_time = None
        self._open(handle)
        return handle

    def adopt(self, run_id: str, run_dir: Path, pid: int | None, create_time: float | None) -> RunHandle | None:
        pid = pid or _read_int(run_dir / "pid")
        if pid is None:
            pid = _find_by_env(run_id)
        if pid is None:
            return None
        try:
            proc = psutil.Process(pid)
            if create_time is not None and abs(proc.create_time() - create_time) > 0.05:
                return None  # the pid was reused by an unrelated process
            if create_time is None and proc.environ().get("AIPASS_RUN_ID") != run_id:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            create_time = proc.create_time()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return None
        except psutil.AccessDenied:
            log.warning("run %s: no permission to inspect pid %s; treating it as gone", run_id, pid)
            return None
        handle = RunHandle(run_id, run_dir, pid=pid, create_time=create_time, extra={"child": False})
        self._open(handle)
        return handle

    def _open(self, handle: RunHandle) -> None:
        handle.extra["stdout"] = os.open(handle.run_dir / "stdout", os.O_RDONLY | os.O_CREAT, 0o600)
        handle.extra["stderr"] = os.open(handle.run_dir / "stderr", os.O_RDONLY | os.O_CREAT, 0o600)
        pidfd = None
        if self._poll is not None and handle.pid is not None:
            try:
                pidfd = os.pidfd_open(handle.pid)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    log.warning("run %s: pidfd_open failed (%s); polling its pid instead", handle.run_id, exc)
        handle.extra["pidfd"] = pidfd
        handle.extra["ended"] = pidfd is None and not _alive(handle)
        if pidfd is not None:
            self._poll.register(pidfd, select.EPOLLIN)
            self._by_pidfd[pidfd] = handle

    def seek(self, handle: RunHandle, stream: str, offset: int) -> None:
        os.lseek(handle.extra[stream], offset, os.SEEK_SET)

    def read(self, handle: RunHandle, stream: str, limit: int) -> bytes:
        fd = handle.extra.get(stream)
        if fd is None:
            return b""
        return os.read(fd, limit)

    def exited(self, handles: list[RunHandle]) -> list[RunHandle]:
        ended: list[RunHandle] = []
        if self._poll is not None and self._by_pidfd:
            for fd, _ in self._poll.poll(0):
                handle = self._by_pidfd.get(fd)
                if handle is not None:
                    handle.extra["ended"] = True
        for handle in handles:
            if handle.extra.get("pidfd") is None and not handle.extra.get("ended"):
                handle.extra["ended"] = not _alive(handle)
            if handle.extra.get("ended"):
                ended.append(handle)
        return ended

    def exit_code(self, handle: RunHandle) -> int | None:
        if handle.extra.get("child") and handle.pid is not None:
            try:
                os.waitpid(handle.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        return _read_int(handle.run_dir / "exit")

    def alive(self, handle: RunHandle) -> bool:
        return _alive(handle)

    def terminate(self, handle: RunHandle) -> None:
        if handle.pid is not None and _alive(handle):
            _signal_group(handle.pid, signal.SIGTERM)

    def kill(self, handle: RunHandle) -> None:
        """Kill the run's process group; the orchestrator sweeps escaped descendants afterwards."""
        if handle.pid is not None and _alive(handle):
            _signal_group(handle.pid, signal.SIGKILL)

    def sweep(self, run_ids: set[str]) -> list[int]:
        """Kill processes of these runs that left their process groups, in one scan."""
        return kill_leftovers(run_ids)

    def release(self, handle: RunHandle) -> None:
        pidfd = handle.extra.pop("pidfd", None)
        if pidfd is not None:
            self._by_pidfd.pop(pidfd, None)
            try:
                self._poll.unregister(pidfd)
            except (OSError, ValueError):
                pass
            os.close(pidfd)
        for name in ("stdout", "stderr"):
            fd = handle.extra.pop(name, None)
            if fd is not None:
                os.close(fd)


def kill_leftovers(run_ids: str | set[str]) -> list[int]:
    """Kill every process whose environment carries ``AIPASS_RUN_ID`` of one of ``run_ids``.

    This finds descendants that left a run's process group (for example with setsid). Reading
    every process's environment is the costly part, so callers pass all stopped runs at once.
    Returns the killed pids.
    """
    wanted = {run_ids} if isinstance(run_ids, str) else set(run_ids)
    if not wanted:
        return []
    killed: list[int] = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            run_id = proc.environ().get("AIPASS_RUN_ID")
            if run_id in wanted:
                proc.kill()
                killed.append(proc.pid)
                log.info("run %s: killed leftover process %d outside its group", run_id, proc.pid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    return killed


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        log.error("could not signal process group %s: %s", pgid, exc)


def _alive(handle: RunHandle) -> bool:
    if handle.pid is None:
        return False
    try:
        proc = psutil.Process(handle.pid)
        if handle.create_time is not None and abs(proc.create_time() - handle.create_time) > 0.05:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True


def _find_by_env(run_id: str) -> int | None:
    """Return the process group leader of the run (its wrapper), found by environment."""
    found: list[int] = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("AIPASS_RUN_ID") == run_id:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
    for pid in found:
        try:
            if os.getpgid(pid) == pid:
                return pid
        except ProcessLookupError:
            continue
    return found[0] if found else None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
