"""The node side of a cluster run: a clone, the agent's process tree and its output files.

``RayRunner`` wraps ``NodeRun`` with ``ray.remote`` and creates one named, detached actor of it
per run, so the run outlives the orchestrator that started it. This module never imports Ray.
It takes the node's id from Ray only when Ray is already imported and connected.

Layout on the node, below ``$AIPASS_NODE_DIR`` (default ``~/.cache/aipass-tui/cluster-runs``)::

    <run-id>/stdout, stderr, pid, exit    written by the same sh wrapper as a local run
    <run-id>/repo/                         the run's clone of ``repo_url`` on the agent's branch
    <run-id>/tmp/                          the agent's TMPDIR

States: ``new`` → ``preparing`` (cloning) → ``running`` → ``finishing`` (commit and push) →
``ended``. A run stopped before its process started goes from ``preparing`` to ``ended``.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from aipass_tui.core.gitflow_git import GitError, agent_identity, has_uncommitted, rev_parse, run_git
from aipass_tui.core.runners.local import WRAPPER, kill_leftovers

log = logging.getLogger(__name__)

NODE_DIR_ENV = "AIPASS_NODE_DIR"
MIN_POLL_STEP = 0.05  # seconds between checks of the output files while a poll waits
MAX_POLL_STEP = 0.25  # with a long linger the checks are sparser: each one costs CPU on the node
START_FAILED_EXIT = 1  # exit status reported when the clone or the process could not be started
GIT_TIMEOUT = 600.0


def node_base_dir() -> Path:
    """Return the folder of this node's run folders (``$AIPASS_NODE_DIR`` when set)."""
    configured = os.environ.get(NODE_DIR_ENV)
    if configured:
        return Path(configured)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "aipass-tui" / "cluster-runs"


def node_identity() -> dict[str, str]:
    """Return this node's Ray node id and IP address (the host name outside a Ray worker).

    Ray is only called when this process is already connected, because
    ``ray.get_runtime_context()`` in an unconnected process starts a new local Ray instance.
    """
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return {"node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address()}
    host = socket.gethostname()
    return {"node_id": host, "node_ip": host}


class NodeRun:
    """One run on one node: clone, start, serve output and status, stop, commit and push.

    ``spec`` contains ``argv``, ``env``, ``repo_url``, ``branch``, ``start_head`` (the branch head
    the orchestrator pushed), ``agent`` and ``subject`` (the commit message of uncommitted work).
    Every public method is safe to call from several threads at once, because the actor runs
    with ``max_concurrency`` above one so that a stop is not queued behind a waiting poll.
    """

    def __init__(self, run_id: str, spec: dict[str, Any]) -> None:
        self.run_id = run_id
        self.spec = spec
        self.dir = node_base_dir() / run_id
        self.clone = self.dir / "repo"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = "new"
        self._started: dict[str, Any] | None = None
        self._exit_code: int | None = None
        self._push: dict[str, Any] | None = None
        self._stop_signal: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._start_head: str | None = None
        self._identity = node_identity()

    # ------------------------------------------------------------------ start

    def begin(self) -> dict[str, Any]:
        """Clone the repository and start the agent; return where it runs.

        Idempotent: a second call (for example from an orchestrator that re-attached) waits for
        the first and returns the same result. The result has ``error`` set when the clone or
        the start failed; that error is also written to the run's stderr.
        """
        with self._changed:
            if self._state != "new":
                while self._state == "preparing":
                    self._changed.wait()
                return dict(self._started or {})
            self._state = "preparing"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "tmp").mkdir(mode=0o700, exist_ok=True)
            for name in ("stdout", "stderr"):
                (self.dir / name).touch()
            self._prepare_clone()
        except (GitError, OSError) as exc:
            return self._fail_start(f"could not prepare the clone of {self.spec['repo_url']} on node {self._identity['node_ip']}: {exc}")
        with self._changed:
            if self._stop_signal is not None:
                self._exit_code = 128 + self._stop_signal
                return self._end_before_start("stopped before its process started")
            env = {**self.spec["env"], "AIPASS_RUN_DIR": str(self.dir), "TMPDIR": str(self.dir / "tmp")}
            try:
                self._proc = subprocess.Popen(
                    ["/bin/sh", "-c", WRAPPER, "aipass-run", *self.spec["argv"]],
                    cwd=self.clone,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                self._exit_code = START_FAILED_EXIT
                self._write_stderr(f"aipass-tui: could not start {self.spec['argv'][0]!r} on node {self._identity['node_ip']}: {exc}")
                return self._end_before_start(str(exc))
            pid = self._proc.pid
            try:
                create_time: float | None = psutil.Process(pid).create_time()
            except psutil.Error:
                create_time = None
            self._started = {**self._identity, "pid": pid, "create_time": create_time, "cwd": str(self.clone), "node_dir": str(self.dir), "start_head": self._start_head}
            self._state = "running"
            self._changed.notify_all()
        threading.Thread(target=self._wait_and_push, name=f"aipass-wait-{self.run_id}", daemon=True).start()
        log.info("run %s started on node %s (pid %s) in %s", self.run_id, self._identity["node_ip"], pid, self.clone)
        return dict(self._started)

    def _prepare_clone(self) -> None:
        branch = self.spec["branch"]
        if (self.clone / ".git").exists():
            shutil.rmtree(self.clone)  # a clone left by an interrupted begin: start from scratch
        run_git(
            self.dir, "clone", "--quiet", "--no-tags", "--single-branch", "--branch", branch,
            self.spec["repo_url"], str(self.clone), timeout=GIT_TIMEOUT,
        )
        head = rev_parse(self.clone, "HEAD")
        expected = self.spec.get("start_head")
        if expected and head != expected:
            log.warning("run %s: branch %s on %s is at %s, not at %s as pushed; working from %s", self.run_id, branch, self.spec["repo_url"], head, expected, head)
        self._start_head = head

    def _fail_start(self, message: str) -> dict[str, Any]:
        self._write_stderr(f"aipass-tui: {message}")
        with self._changed:
            self._exit_code = START_FAILED_EXIT
            return self._end_before_start(message)

    def _end_before_start(self, message: str) -> dict[str, Any]:
        """Mark the run ended without a process. The caller must hold the lock."""
        self._started = {**self._identity, "pid": None, "create_time": None, "cwd": str(self.clone), "node_dir": str(self.dir), "error": message}
        self._push = {"ok": True, "pushed": False, "head": None, "branch": self.spec["branch"]}
        self._state = "ended"
        self._changed.notify_all()
        log.warning("run %s did not start on node %s: %s", self.run_id, self._identity["node_ip"], message)
        return dict(self._started)

    def _write_stderr(self, line: str) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(self.dir / "stderr", "ab") as handle:
                handle.write(line.encode("utf-8", "replace") + b"\n")
        except OSError as exc:
            log.error("run %s: could not write to its stderr file: %s", self.run_id, exc)

    # ------------------------------------------------------------------ finish

    def _wait_and_push(self) -> None:
        assert self._proc is not None
        self._proc.wait()
        exit_code = _read_int(self.dir / "exit")
        with self._lock:
            stopped = self._stop_signal is not None
        if stopped:
            # A stopped run's process group is gone; children that left it (setsid) are not.
            kill_leftovers(self.run_id)
        with self._changed:
            self._exit_code = exit_code
            self._state = "finishing"
            self._changed.notify_all()
        push = self._commit_and_push()
        with self._changed:
            self._push = push
            self._state = "ended"
            self._changed.notify_all()
        log.info("run %s ended on node %s (exit %s, push %s)", self.run_id, self._identity["node_ip"], exit_code, push)

    def _commit_and_push(self) -> dict[str, Any]:
        """Commit uncommitted work and push the branch to ``repo_url``; return what happened."""
        branch = self.spec["branch"]
        head: str | None = None
        try:
            if has_uncommitted(self.clone):
                subject = (self.spec.get("subject") or "").strip().splitlines()
                message = f"{subject[0] if subject else 'Work of ' + self.spec['agent']}\n\nCommitted on node {self._identity['node_ip']} after run {self.run_id}.\n"
                identity = agent_identity(self.spec["agent"]).env()
                run_git(self.clone, "add", "--all")
                run_git(self.clone, "-c", "commit.gpgsign=false", "commit", "--quiet", "--no-verify", "-F", "-", input=message.encode("utf-8"), env=identity)
            head = rev_parse(self.clone, "HEAD")
            if head is None:
                return {"ok": False, "pushed": False, "head": None, "branch": branch, "error": f"the clone {self.clone} has no HEAD commit"}
            if head == self._start_head:
                return {"ok": True, "pushed": False, "head": head, "branch": branch}
            run_git(self.clone, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", timeout=GIT_TIMEOUT)
            return {"ok": True, "pushed": True, "head": head, "branch": branch}
        except GitError as exc:
            log.error("run %s: could not commit and push branch %s from %s: %s", self.run_id, branch, self.clone, exc)
            return {"ok": False, "pushed": False, "head": head, "branch": branch, "error": str(exc)}

    # ------------------------------------------------------------------ output and status

    def poll(self, stdout_offset: int, stderr_offset: int, limit: int, wait: float, linger: float) -> dict[str, Any]:
        """Return output past the offsets and the run's state, waiting for news up to ``wait`` seconds.

        New output is held back until ``linger`` seconds have passed, so a chatty agent is sent
        in batches; a state change or ``limit / 2`` bytes waiting return at once. When the
        returned ``state`` is ``ended`` and both chunks are shorter than ``limit``, the caller
        has all output, because the state is read before the files.
        """
        now = time.monotonic()
        deadline = now + max(0.0, wait)
        linger_until = now + max(0.0, linger)
        step = min(MAX_POLL_STEP, max(MIN_POLL_STEP, linger / 2))
        with self._lock:
            first_state = self._state
        while True:
            with self._lock:
                state = self._state
            pending_out = _size(self.dir / "stdout") - stdout_offset
            pending_err = _size(self.dir / "stderr") - stderr_offset
            now = time.monotonic()
            if state == "ended" or state != first_state or now >= deadline:
                break
            if (pending_out > 0 or pending_err > 0) and (now >= linger_until or max(pending_out, pending_err) >= limit // 2):
                break
            with self._changed:
                self._changed.wait(step)
        with self._lock:
            exit_code, push = self._exit_code, self._push
        return {
            "stdout": _read_at(self.dir / "stdout", stdout_offset, limit),
            "stderr": _read_at(self.dir / "stderr", stderr_offset, limit),
            "state": state,
            "exit_code": exit_code if state == "ended" else None,
            "push": push if state == "ended" else None,
            "sample": self.sample(),
        }

    def status(self) -> dict[str, Any]:
        """Return the state, exit status, push result and where the run started."""
        with self._lock:
            return {"state": self._state, "exit_code": self._exit_code, "push": self._push, "started": dict(self._started or {})}

    def sample(self) -> dict[str, Any]:
        """Return this node's CPU and memory use, for the cluster view of the CPU meter."""
        memory = psutil.virtual_memory()
        return {
            **self._identity,
            "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_count": psutil.cpu_count() or 1,
            "memory_total": memory.total,
            "memory_used": memory.total - memory.available,
        }

    def processes(self) -> list[dict[str, Any]]:
        """Return the live processes on this node whose environment carries this run's id."""
        found: list[dict[str, Any]] = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if proc.environ().get("AIPASS_RUN_ID") == self.run_id:
                    found.append({"pid": proc.pid, "cmdline": proc.info["cmdline"] or []})
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
        return found

    # ------------------------------------------------------------------ stop and clean up

    def terminate(self) -> None:
        """Send SIGTERM to the run's process group, or keep the process from starting."""
        self._signal(signal.SIGTERM)

    def kill(self) -> list[int]:
        """Send SIGKILL to the process group and kill every process on this node carrying the run's id."""
        self._signal(signal.SIGKILL)
        return kill_leftovers(self.run_id)

    def _signal(self, sig: int) -> None:
        with self._lock:
            if self._stop_signal is None or sig == signal.SIGKILL:
                self._stop_signal = sig
            proc = self._proc if self._state == "running" else None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError as exc:
            log.error("run %s: could not signal process group %s: %s", self.run_id, proc.pid, exc)

    def cleanup(self) -> dict[str, Any]:
        """Delete the node's run folder once the run has ended and its branch was pushed.

        A run whose push failed keeps its folder, so its work can be recovered by hand; the
        result's ``kept`` names that folder.
        """
        with self._lock:
            state, push = self._state, self._push
        if state != "ended":
            return {"removed": False, "kept": str(self.dir), "reason": f"the run is {state}"}
        if push is not None and not push.get("ok"):
            log.warning("run %s: kept %s because its branch was not pushed: %s", self.run_id, self.dir, push.get("error"))
            return {"removed": False, "kept": str(self.dir), "reason": push.get("error")}
        shutil.rmtree(self.dir, ignore_errors=True)
        return {"removed": True, "kept": None}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_at(path: Path, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read(limit)
    except FileNotFoundError:
        return b""


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
