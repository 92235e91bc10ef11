"""One run of an automation rule's command: argv without a shell, a time limit, output kept in a log file."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil

from aipass_tui.core import clock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command. ``exit_code`` is negative when a signal ended it (as in ``subprocess``)."""

    argv: tuple[str, ...]
    log_path: Path
    exit_code: int | None
    timed_out: bool
    seconds: float
    error: str | None = None
    stopped: bool = False
    """True when ``CommandRun.stop`` ended the command (the engine stopped), not the command itself."""

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out and not self.stopped and self.exit_code == 0

    def describe(self, repo: Path) -> str:
        try:
            where = self.log_path.relative_to(repo)
        except ValueError:
            where = self.log_path
        if self.error is not None:
            return f"failed: {self.error} (log: {where})"
        if self.timed_out:
            return f"timed out after {self.seconds:.1f} s; its process group was killed (log: {where})"
        if self.stopped:
            return f"stopped after {self.seconds:.1f} s because automation stopped (log: {where})"
        return f"exit {self.exit_code} in {self.seconds:.1f} s (log: {where})"


class CommandRun:
    """Run ``argv`` in ``cwd`` in a new session, stdout and stderr into ``log_path``, on its own thread.

    When ``timeout`` passes, or ``stop`` is called, the process group and every descendant still
    found get SIGTERM, then SIGKILL after ``grace`` seconds. ``on_done`` receives the result on
    the command's thread.
    """

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        log_path: Path,
        timeout: float,
        grace: float,
        on_done: Callable[[CommandResult], None],
    ) -> None:
        self.argv = tuple(argv)
        self.cwd = cwd
        self.log_path = log_path
        self.timeout = timeout
        self.grace = grace
        self.on_done = on_done
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stop_requested = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"aipass-automation-command-{log_path.stem}", daemon=True)
        self._finished = threading.Event()

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, grace: float | None = None) -> None:
        if grace is not None:
            self.grace = grace
        self._stop_requested.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        started = time.monotonic()
        result: CommandResult
        try:
            result = self._execute(started)
        except Exception as exc:  # noqa: BLE001 - the result must always be reported
            log.exception("automation command %s failed", self.argv)
            result = CommandResult(self.argv, self.log_path, None, False, time.monotonic() - started, str(exc))
        # The command counts as running until its result is recorded, so waiters see the result.
        try:
            self.on_done(result)
        except Exception:
            log.exception("the automation command callback failed")
        finally:
            self._finished.set()

    def _execute(self, started: float) -> CommandResult:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"# {clock.iso()} in {self.cwd}: {self.argv!r}\n".encode())
            out.flush()
            try:
                process = subprocess.Popen(
                    list(self.argv),
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                message = f"could not start {self.argv[0]!r}: {exc.strerror or exc}"
                out.write(f"# {message}\n".encode())
                return CommandResult(self.argv, self.log_path, None, False, time.monotonic() - started, message)
            self._process = process
            self.pid = process.pid
            timed_out = self._wait(process, started)
            seconds = time.monotonic() - started
            if timed_out:
                ending = "timed out"
            elif self._stop_requested.is_set():
                ending = "stopped"
            else:
                ending = "exited"
            out.write(f"\n# {ending} with status {process.returncode} after {seconds:.1f} s\n".encode())
        stopped = not timed_out and self._stop_requested.is_set() and process.returncode != 0
        return CommandResult(self.argv, self.log_path, process.returncode, timed_out, seconds, stopped=stopped)

    def _wait(self, process: subprocess.Popen[bytes], started: float) -> bool:
        """Wait for the process; return True when it ran out of time and was killed."""
        deadline = started + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stop_requested.is_set():
                break
            try:
                process.wait(timeout=min(remaining, 0.1))
                return False
            except subprocess.TimeoutExpired:
                continue
        self._kill_tree(process)
        return not self._stop_requested.is_set()

    def _kill_tree(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM the process group and all descendants, then SIGKILL what is left after the grace time."""
        try:
            descendants = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        self._signal(process.pid, descendants, signal.SIGTERM)
        try:
            process.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            pass
        self._signal(process.pid, descendants, signal.SIGKILL)
        process.wait()
        psutil.wait_procs(descendants, timeout=2)

    @staticmethod
    def _signal(group: int, descendants: list[psutil.Process], sig: signal.Signals) -> None:
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass
        for child in descendants:
            try:
                child.send_signal(sig)
            except psutil.Error:
                pass
