"""The pull request side of a plan task: waiting for review, merging automatically, no changes.

``PullRequestTracking`` is the part of ``PlanExecution`` that follows a task after its run
succeeded. It reads pull request records from ``.aipass/state/pulls/`` (merges made with
``aipass-tui pr merge`` change those files without a notice) and merges ``review = "auto"``
tasks through the git flow's ``pr.merge`` command.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path
from typing import Any

from aipass_tui.core.handlers import HandlerContext, run_handler
from aipass_tui.core.models import RunRecord
from aipass_tui.core.notices import UserNotice
from aipass_tui.core.plans.state import TaskState, TaskStatus
from aipass_tui.core.store import Paths, StateError, read_json

log = logging.getLogger(__name__)

# Seconds between two git checks of a succeeded task that has no pull request yet.
SETTLE_INTERVAL = 5.0
_CHECK_FAILED = ("failed", "timed_out", "error")


class PullRequestTracking:
    """Methods of PlanExecution that follow pull requests, using its state and helpers."""

    def on_pull_changed(self, pull: dict[str, Any]) -> None:
        """Follow the pull request of a task: merged, closed, conflicting, or ready to merge itself."""
        with self._lock:
            task_state = self._task_of_pull(pull)
            if task_state is None:
                return
            pull_id = str(pull.get("id"))
            if task_state.open:
                if task_state.pull != pull_id:
                    task_state.pull = pull_id
                    self._touch(task_state)
                return
            if task_state.status == TaskStatus.FAILED and pull.get("status") == "merged":
                task_state.pull = pull_id
                task_state.status = TaskStatus.MERGED
                task_state.needs_merge = False
                task_state.reason = None
                self._touch(task_state)
                self._emit(f"task {task_state.id} merged (pull request {task_state.pull})", task_state)
                self._resume_if_clear()
                return
            if task_state.status != TaskStatus.SUCCEEDED:
                return
            if not task_state.needs_merge:
                log.warning("plan %s: pull request %s of task %s arrived after the task was done", self.plan_id, pull_id, task_state.id)
                task_state.needs_merge = True
            self._apply_pull(task_state, pull)

    def _apply_pull(self, task_state: TaskState, pull: dict[str, Any]) -> None:
        pull_id = str(pull.get("id"))
        new_pull = task_state.pull != pull_id
        task_state.pull = pull_id
        status = pull.get("status")
        if status == "merged":
            task_state.status = TaskStatus.MERGED
            task_state.needs_merge = False
            self._touch(task_state)
            self._emit(f"task {task_state.id} merged (pull request {pull_id})", task_state)
        elif status == "closed":
            self._fail(task_state, f"pull request {pull_id} was closed without merging")
        elif status == "conflict":
            files = ", ".join(pull.get("conflict_files") or []) or "files not listed"
            self._fail(task_state, f"pull request {pull_id} conflicts with its target branch ({files}): ask the agent to rebase (aipass-tui pr rebase-request {pull_id}) or resolve it, then retry or skip the task")
        elif self._review(task_state) == "auto" and status in ("open", "approved"):
            self._auto_merge(task_state, pull)
        else:
            if new_pull:
                self._touch(task_state)
            self._emit(f"task {task_state.id} waits for review: merge pull request {pull_id} (aipass-tui pr merge {pull_id})", task_state)

    def _auto_merge(self, task_state: TaskState, pull: dict[str, Any]) -> None:
        pull_id = str(pull.get("id"))
        checks = [c for c in pull.get("checks") or [] if isinstance(c, dict)]
        failed = [str(c.get("command")) for c in checks if c.get("status") in _CHECK_FAILED]
        if failed:
            self._fail(task_state, f"checks failed on pull request {pull_id}: {', '.join(failed)}")
            return
        violations = list(pull.get("violations") or [])
        if violations:
            shown = ", ".join(violations[:10])
            self._fail(
                task_state,
                f"pull request {pull_id} changes files outside the task's globs ({shown}): review it and merge with "
                f"aipass-tui pr merge {pull_id} --allow-violations, or retry the task",
            )
            return

        # Each head of a pull request is merged at most once per process. After a restart, the
        # status in the pull request file shows whether that merge happened.
        key = f"{pull_id}@{pull.get('head', '')}"
        if key in self._merge_attempts:
            return
        self._merge_attempts.add(key)
        task_state.merge_requested = key
        self._touch(task_state)
        self._emit(f"task {task_state.id}: checks passed, merging pull request {pull_id}", task_state)
        self._pending_merges.append((task_state.id, pull))

    def _run_pending_merges(self) -> None:
        """Merge the pull requests queued by ``_auto_merge``, without holding the plan's lock.

        A merge waits for the repository lock, which the git flow holds while it runs checks.
        """
        while True:
            with self._lock:
                if not self._pending_merges:
                    return
                task_id, pull = self._pending_merges.pop(0)
            pull_id = str(pull.get("id"))
            result: dict[str, Any] = {}
            error: Exception | None = None
            try:
                result = self._merge(pull_id)
            except Exception as exc:  # a refused merge pauses the plan with the git flow's message
                log.warning("plan %s: automatic merge of pull request %s failed: %s", self.plan_id, pull_id, exc)
                error = exc
            with self._lock:
                self._apply_merge(self.state.tasks[task_id], pull, result, error)

    def _apply_merge(self, task_state: TaskState, pull: dict[str, Any], result: dict[str, Any], error: Exception | None) -> None:
        pull_id = str(pull.get("id"))
        if task_state.status != TaskStatus.SUCCEEDED or task_state.pull != pull_id:
            return
        if error is not None:
            self._fail(task_state, f"automatic merge of pull request {pull_id} failed: {error}")
            return
        merged_pull = result.get("pull") if isinstance(result.get("pull"), dict) else None
        if result.get("merged"):
            self._apply_pull(task_state, merged_pull or {**pull, "status": "merged"})
        elif merged_pull is not None and merged_pull.get("status") == "conflict":
            self._apply_pull(task_state, merged_pull)
        else:
            self._fail(task_state, f"automatic merge of pull request {pull_id} did not happen: {result.get('message') or 'no reason given'}")

    def _merge_through_handler(self, pull_id: str) -> dict[str, Any]:
        ctx = HandlerContext(self.paths, self.settings, self.orchestrator)  # type: ignore[arg-type]
        return run_handler(ctx, "pr.merge", {"pull_id": pull_id})

    def _on_user_notice(self, notice: UserNotice) -> None:
        if notice.run_id and notice.title.endswith(": no pull request"):
            # The git flow finished the run and found no change to record.
            for task_state in self.state.tasks.values():
                if task_state.run == notice.run_id and task_state.status == TaskStatus.SUCCEEDED and task_state.pull is None:
                    self._settle(task_state)
            return
        # The orchestrator reports a run whose changes could not be recorded as a pull request.
        if not notice.run_id or "pull request not recorded" not in notice.title:
            return
        for task_state in self.state.tasks.values():
            if task_state.run == notice.run_id and task_state.status == TaskStatus.SUCCEEDED and task_state.pull is None:
                self._fail(task_state, f"its changes could not be recorded as a pull request: {notice.message}")

    def _settle_without_pull(self, task_state: TaskState) -> None:
        """Finish a succeeded task that got no pull request, once git shows the run left no change."""
        now = time.monotonic()
        if now - self._settle_checked.get(task_state.id, -SETTLE_INTERVAL) < SETTLE_INTERVAL:
            return
        self._settle_checked[task_state.id] = now
        run = self._run(task_state.run)
        if run is None or run.runner != "local":
            # A cluster run's work reaches the local repository only when the git flow fetches
            # its branch, so local git cannot tell "no change" yet: wait for the notice.
            return
        if run_left_no_change(self.paths.repo, run):
            self._settle(task_state)

    def _settle(self, task_state: TaskState) -> None:
        """Finish a succeeded task that has nothing to merge."""
        if not task_state.needs_merge:
            return
        task_state.needs_merge = False
        self._touch(task_state)
        self._emit(f"task {task_state.id} succeeded without changes, so there is nothing to merge", task_state)

    def _expects_pull(self, task_state: TaskState) -> bool:
        config = self.settings.agents.get(task_state.agent or "")
        if config is not None and config.isolation == "shared":
            return False
        return (self.paths.repo / ".git").exists()

    def _review(self, task_state: TaskState) -> str:
        entry = self.plan.task(task_state.id)
        return entry[2].review if entry else "manual"

    def _pull_of(self, task_state: TaskState) -> dict[str, Any] | None:
        if task_state.pull:
            return read_pull(self.paths, task_state.pull)
        if not task_state.request or not self.paths.pulls.is_dir():
            return None
        for path in sorted(self.paths.pulls.glob("*.json")):
            pull = read_pull(self.paths, path.stem)
            if pull and (pull.get("request") == task_state.request or task_state.request in (pull.get("requests") or [])):
                return pull
        return None


def read_pull(paths: Paths, pull_id: str) -> dict[str, Any] | None:
    try:
        data = read_json(paths.pulls / f"{pull_id}.json")
    except StateError as exc:
        log.warning("could not read pull request %s: %s", pull_id, exc)
        return None
    return data if isinstance(data, dict) else None


def run_left_no_change(repo: Path, run: RunRecord) -> bool:
    """Tell whether a finished run's worktree has nothing uncommitted and its branch equals its base.

    The git flow records no pull request for such a run. The worktree is read before the
    branch: the git flow commits uncommitted work before it records the pull request, so work
    seen in neither place was never there. Only read-only git commands run
    (``--no-optional-locks``), so an agent's own git commands never find the index locked.
    """
    if not run.branch or not run.base_commit:
        return False
    worktree = Path(run.worktree) if run.worktree else None
    if worktree is not None and (worktree / ".git").exists():
        current = _git(worktree, "symbolic-ref", "--quiet", "--short", "HEAD")
        if current is not None and current.stdout.decode().strip() == run.branch:
            status = _git(worktree, "status", "--porcelain", "--untracked-files=all")
            if status is None or status.returncode != 0 or status.stdout.strip():
                return False
    diff = _git(repo, "diff", "--quiet", run.base_commit, f"refs/heads/{run.branch}")
    return diff is not None and diff.returncode == 0


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes] | None:
    try:
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(cwd), *args],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("git %s in %s failed: %s", " ".join(args), cwd, exc)
        return None
