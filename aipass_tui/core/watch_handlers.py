"""The orchestrator's built-in file watches: inbox, plans, state and agents' file ownership."""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterable

from aipass_tui.core.store import Paths
from aipass_tui.core.watch_events import FileChange, absolute
from aipass_tui.core.watch_observer import Subscription, Watcher
from aipass_tui.core.watch_paths import DEFAULT_EXCLUDED_DIRS, GlobSet
from aipass_tui.core.watch_timers import DeadlineScheduler

log = logging.getLogger(__name__)

INBOX_DEBOUNCE = 0.05
"""Quiet time before an inbox file is reported; small, because a request should start within 200 ms."""

OWNERSHIP_EXCLUDED_DIRS = DEFAULT_EXCLUDED_DIRS
"""Folder names never watched inside a worktree. ``.aipass`` is among them because an agent with
``isolation = "shared"`` works in the repository itself, where run transcripts change all the time."""


class WatchError(Exception):
    """A watch could not be set up; the message names the path and what to do."""


def is_agent_cli_file(relative: Path) -> bool:
    """Tell whether a path inside a worktree belongs to git or to an agent CLI's own bookkeeping.

    Aider writes ``.aider.chat.history.md``, ``.aider.input.history`` and ``.aider.tags.cache.*/``
    into the repository; a worktree's ``.git`` is a file that points at the main repository.
    """
    return any(part == ".git" or part.startswith(".aider") for part in relative.parts)


class RepoWatches:
    """Connects the built-in watches of one repository's ``.aipass/`` folder to callbacks.

    Each callback runs on the Watcher's debounce thread and must return quickly.
    """

    def __init__(self, watcher: Watcher, paths: Paths) -> None:
        self.watcher = watcher
        self.paths = paths
        self._subscriptions: list[Subscription] = []
        self._ownership: dict[str, _OwnershipWatch] = {}
        self._lock = threading.Lock()
        self._checks = DeadlineScheduler("aipass-ownership-check")

    def watch_inbox(self, on_request: Callable[[Path], None]) -> Subscription:
        """Call ``on_request(path)`` when a ``*.json`` file is created in or moved into the inbox.

        Files that were already there when the watch started are not reported, so the
        orchestrator must scan the inbox once at start. A file may be reported more than once
        (rewritten in place), so consuming each file exactly once is the caller's job.
        """

        def changed(change: FileChange) -> None:
            if change.kind in ("created", "modified"):
                on_request(change.path)

        return self._keep(self.watcher.watch(self.paths.inbox, changed, patterns=["*.json"], debounce=INBOX_DEBOUNCE))

    def watch_plans(self, on_plan_changed: Callable[[FileChange], None]) -> Subscription:
        """Call ``on_plan_changed(change)`` when a plan file (``.aipass/plans/*.toml``) is changed by another process.

        Our own saves are not reported when the plan editor saves through ``Watcher.suppress``.
        """
        return self._keep(self.watcher.watch(self.paths.plans, on_plan_changed, patterns=["*.toml"], debounce=0.2))

    def watch_state(self, on_state_changed: Callable[[FileChange], None]) -> Subscription:
        """Call ``on_state_changed(change)`` when a ``.aipass/state/**/*.json`` file is changed by another process.

        Command replies (``state/replies/``) are not state and are not reported.
        """
        replies = absolute(self.paths.replies)
        subscription = self.watcher.watch(
            self.paths.state,
            on_state_changed,
            recursive=True,
            patterns=["**/*.json"],
            skip_dir=lambda folder: folder == replies,
        )
        return self._keep(subscription)

    def watch_ownership(
        self,
        agent: str,
        worktree: Path,
        allowed_globs: Iterable[str],
        on_violation: Callable[[str, Path], None],
    ) -> None:
        """Call ``on_violation(agent, path)`` when a file outside ``allowed_globs`` changes in the worktree.

        ``path`` is relative to the worktree. Each path is reported once per watch. Changes to
        files that git ignores, to ``.git`` and to agent CLI files such as ``.aider*`` are not
        reported. Folders that git ignores when the watch starts are not watched at all.
        Raises WatchError when the worktree does not exist and GlobError for a bad glob.
        """
        root = absolute(worktree)
        if not root.is_dir():
            raise WatchError(f"worktree {root} of agent {agent!r} does not exist: create it before watching it")
        allowed = GlobSet(root, allowed_globs)
        self.unwatch_ownership(agent)
        self._checks.start()
        ownership = _OwnershipWatch(agent, root, allowed, on_violation, self._checks)
        ignored_dirs = ownership.git_ignored_dirs()
        ownership.subscription = self.watcher.watch(
            root,
            ownership.changed,
            recursive=True,
            debounce=0.3,
            exclude_dirs=OWNERSHIP_EXCLUDED_DIRS,
            ignore=lambda file: is_agent_cli_file(file.relative_to(root)) or allowed.matches(file),
            skip_dir=lambda folder: folder in ignored_dirs,
        )
        with self._lock:
            self._ownership[agent] = ownership

    def unwatch_ownership(self, agent: str) -> None:
        with self._lock:
            ownership = self._ownership.pop(agent, None)
        if ownership is not None:
            ownership.close()

    def ownership_agents(self) -> list[str]:
        with self._lock:
            return sorted(self._ownership)

    def close(self) -> None:
        for agent in self.ownership_agents():
            self.unwatch_ownership(agent)
        for subscription in self._subscriptions:
            self.watcher.unwatch(subscription)
        self._subscriptions.clear()
        self._checks.stop()

    def _keep(self, subscription: Subscription) -> Subscription:
        self._subscriptions.append(subscription)
        return subscription


class _OwnershipWatch:
    """Collects changes outside an agent's globs, drops git-ignored ones in batches, and reports the rest once."""

    CHECK_DELAY = 0.2

    def __init__(
        self,
        agent: str,
        root: Path,
        allowed: GlobSet,
        on_violation: Callable[[str, Path], None],
        checks: DeadlineScheduler,
    ) -> None:
        self.agent = agent
        self.root = root
        self.allowed = allowed
        self.on_violation = on_violation
        self.checks = checks
        self.subscription: Subscription | None = None
        self.reported: set[Path] = set()
        self.candidates: set[Path] = set()
        self.lock = threading.Lock()
        self.closed = False

    def git_ignored_dirs(self) -> frozenset[Path]:
        """Return the folders git ignores in the worktree (empty when git cannot tell)."""
        output = self._git(["ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "-z"], None)
        if output is None:
            return frozenset()
        return frozenset(self.root / name.rstrip("/") for name in output.split("\0") if name.endswith("/"))

    def changed(self, change: FileChange) -> None:
        relative = change.path.relative_to(self.root)
        with self.lock:
            if self.closed or relative in self.reported:
                return
            self.candidates.add(relative)
        self.checks.call_later(("ownership", id(self)), self.CHECK_DELAY, self.check)

    def check(self) -> None:
        with self.lock:
            batch = sorted(self.candidates - self.reported)
            self.candidates.clear()
        if not batch:
            return
        ignored = self._git_ignored(batch)
        for relative in batch:
            if relative in ignored:
                continue
            with self.lock:
                if self.closed or relative in self.reported:
                    continue
                self.reported.add(relative)
            log.warning("agent %s changed %s, outside the files its task may change", self.agent, relative)
            try:
                self.on_violation(self.agent, relative)
            except Exception:
                log.exception("the ownership callback failed for agent %s and %s", self.agent, relative)

    def close(self) -> None:
        with self.lock:
            self.closed = True
        self.checks.cancel(("ownership", id(self)))
        if self.subscription is not None:
            self.subscription.close()

    def _git_ignored(self, paths: list[Path]) -> set[Path]:
        data = "\0".join(path.as_posix() for path in paths) + "\0"
        output = self._git(["check-ignore", "--stdin", "-z"], data)
        if not output:
            return set()
        return {Path(name) for name in output.split("\0") if name}

    def _git(self, args: list[str], stdin: str | None) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(self.root), *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("git %s failed in %s: %s", args[0], self.root, exc)
            return None
        # check-ignore exits 1 when no path is ignored; other failures mean this is not a repository.
        if result.returncode not in (0, 1):
            log.debug("git %s in %s exited %d: %s", args[0], self.root, result.returncode, result.stderr.strip())
            return None
        return result.stdout
