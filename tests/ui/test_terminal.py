"""``run_cockpit`` in a real pseudo-terminal (80×24, xterm-256color): start, quit, hang up, refusal."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil

from aipass_tui.core.store import Paths, lock_is_held
from tests.conftest import wait_until
from tests.ui.conftest import cockpit_config, start_orchestrator

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b.")
LAUNCH = (
    "import sys; from pathlib import Path; from aipass_tui.config import load_settings;"
    "from aipass_tui.ui.app import run_cockpit; repo = Path(sys.argv[1]);"
    "sys.exit(run_cockpit(repo, load_settings(repo)))"
)


class Terminal:
    """A child process on a pseudo-terminal, with its screen output collected as plain text.

    Textual draws on stderr, so stdout and stderr both go to the terminal.
    """

    def __init__(self, repo: Path, columns: int = 80, rows: int = 24) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
        env.pop("SSH_CONNECTION", None)
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, str(repo)], stdin=slave, stdout=slave, stderr=slave,
            env=env, start_new_session=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""

    def read(self, timeout: float = 0.1) -> None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if ready:
            try:
                self.raw += os.read(self.master, 65536)
            except OSError:
                pass

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def wait_for_text(self, needle: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            if needle in self.text:
                return
            if self.process.poll() is not None:
                break
        raise AssertionError(f"{needle!r} not shown within {timeout} s; the terminal shows: {self.text[-2000:]}")

    def press(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait_exit(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.05)
            code = self.process.poll()
            if code is not None:
                return code
        raise AssertionError("the cockpit did not exit")

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        os.close(self.master)


def test_cockpit_starts_and_quits_at_once_when_idle(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    terminal = Terminal(repo)
    try:
        terminal.wait_for_text("aipass-tui · repo")
        terminal.wait_for_text("2 agents")
        terminal.press(b"\x11")  # ctrl+q: nothing runs, so there is nothing to ask
        assert terminal.wait_exit() == 0
    finally:
        terminal.close()
    assert not lock_is_held(Paths(repo).orchestrator_lock)
    assert (Paths(repo).logs / "cockpit.log").read_text().count("orchestrator started") == 1
    del settings


def test_hangup_closes_cleanly_and_runs_keep_going(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    terminal = Terminal(repo)
    try:
        terminal.wait_for_text("2 agents")
        terminal.press(b"n")
        terminal.wait_for_text("ctrl+s sends")
        terminal.press(b"lines=1 hold=1\r")
        terminal.wait_for_text("RUNNING")
        state = Paths(repo).agent_state("alpha")
        wait_until(lambda: '"pid": ' in state.read_text() and '"pid": null' not in state.read_text(), message="pid recorded")
        pid = int(re.search(r'"pid": (\d+)', state.read_text()).group(1))
        os.kill(terminal.process.pid, signal.SIGHUP)
        assert terminal.wait_exit() == 0
    finally:
        terminal.close()
    assert psutil.pid_exists(pid)
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    assert not lock_is_held(Paths(repo).orchestrator_lock)
    cleanup = start_orchestrator(repo, settings, orchestrators)
    wait_until(lambda: cleanup.snapshot().agents["alpha"].pid == pid, timeout=10, message="run re-attached")


def test_second_cockpit_is_refused_with_the_holder_named(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    start_orchestrator(repo, settings, orchestrators)
    terminal = Terminal(repo)
    try:
        assert terminal.wait_exit() != 0
        assert "another orchestrator" in terminal.text
    finally:
        terminal.close()
