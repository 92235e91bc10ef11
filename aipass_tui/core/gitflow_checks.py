"""Checks run in an agent's worktree before its pull request is recorded.

Each check is a command line split like a shell (``shlex``) but never run by one. It runs in its
own session with stdin closed, and its stdout and stderr go together to a log file. At its time
limit its whole process group is terminated, then killed.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from aipass_tui.core.gitflow_git import git_env
from aipass_tui.core.pulls import CheckResult

log = logging.getLogger(__name__)

TAIL_CHARS = 4000
_GRACE = 3.0


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(size - TAIL_CHARS * 4, 0))
        data = handle.read()
    return data.decode("utf-8", "replace")[-TAIL_CHARS:]


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, _GRACE), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_check(command: str, cwd: Path, log_file: Path, timeout: float) -> CheckResult:
    """Run one check in ``cwd`` and return its result; its output goes to ``log_file``."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return CheckResult(command=command, status="error", message=f"invalid check {command!r}: {exc}; fix its quoting in the config")
    if not argv:
        return CheckResult(command=command, status="error", message="empty check command: remove it from the config")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = git_env()
    for key in ("LC_ALL", "GIT_TERMINAL_PROMPT"):
        if key in os.environ:
            env[key] = os.environ[key]
        else:
            env.pop(key, None)
    started = time.monotonic()
    with log_file.open("wb") as out:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        except FileNotFoundError:
            return CheckResult(command=command, status="error", message=f"command {argv[0]!r} not found: install it or fix the check in the config")
        except PermissionError:
            return CheckResult(command=command, status="error", message=f"command {argv[0]!r} is not executable: fix its permissions or the check in the config")
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc)
            duration = time.monotonic() - started
            log.warning("check %r in %s timed out after %.0f s", command, cwd, timeout)
            return CheckResult(
                command=command,
                status="timed_out",
                exit_code=proc.returncode,
                duration=duration,
                output_tail=_tail(log_file),
                message=f"stopped after the time limit of {timeout:.0f} s (git.check_timeout)",
            )
    duration = time.monotonic() - started
    return CheckResult(
        command=command,
        status="passed" if code == 0 else "failed",
        exit_code=code,
        duration=duration,
        output_tail=_tail(log_file),
    )


def run_checks(commands: list[str], cwd: Path, log_dir: Path, log_prefix: str, timeout: float) -> list[CheckResult]:
    """Run every check in order; the log of check ``n`` is ``log_dir/n.log`` (recorded as ``log_prefix/n.log``)."""
    results: list[CheckResult] = []
    for number, command in enumerate(commands, start=1):
        result = run_check(command, cwd, log_dir / f"{number}.log", timeout)
        if (log_dir / f"{number}.log").exists():
            result.log = f"{log_prefix}/{number}.log"
        log.info("check %r in %s: %s", command, cwd, result.status)
        results.append(result)
    return results
