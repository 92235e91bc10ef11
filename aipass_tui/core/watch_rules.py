"""User automation rules (``[[automation]]`` in config.toml): file and schedule triggers, and their actions.

A rule fires on file events under globs relative to the repository (debounced per rule, so a
burst of changes fires once with all their paths) or on a schedule (``every`` interval, or
daily ``at`` a local "HH:MM"). It then dispatches a request, shows a notification, or runs a
command. A command is an argv list, never run through a shell, with a time limit, and its
output is kept in ``.aipass/logs/automation/``. Rules can be enabled and disabled at runtime.
The enabled flags and what each rule last did are kept in ``.aipass/state/automation.json``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Literal, Protocol, Sequence

from aipass_tui.config import AutomationRule
from aipass_tui.core.store import CorruptStateError, Paths, StateError, read_json
from aipass_tui.core.watch_command import CommandResult, CommandRun
from aipass_tui.core.watch_events import FileChange, absolute
from aipass_tui.core.watch_observer import Subscription, Watcher
from aipass_tui.core.watch_paths import GlobError, GlobSet
from aipass_tui.core.watch_timers import DeadlineScheduler

log = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]


class Actions(Protocol):
    """The operations a rule's action calls, provided by the orchestrator."""

    def dispatch(self, agent: str, subject: str, body: str, sender: str) -> Any:
        """Queue a request for ``agent``, exactly as ``aipass-tui dispatch`` does."""

    def notify(self, level: str, title: str, message: str) -> Any:
        """Show a notification to the person at the cockpit."""


class AutomationError(ValueError):
    """The automation rules are invalid; the message names the rule and the fix."""


@dataclass(frozen=True)
class AutomationEvent:
    """One entry of the automation event log shown by the cockpit."""

    time: float
    rule: str
    kind: Literal["fired", "done", "failed", "skipped", "enabled", "disabled"]
    message: str
    level: Level = "info"


@dataclass(frozen=True)
class RuleStatus:
    """One rule as the cockpit's rules list shows it."""

    name: str
    enabled: bool
    trigger: str
    action: str
    last_fired: float | None
    last_result: str | None
    running: bool
    next_due: float | None


class _RuleState:
    def __init__(self, rule: AutomationRule) -> None:
        self.rule = rule
        self.enabled = rule.enabled
        self.last_fired: float | None = None
        self.last_result: str | None = None
        self.next_due: float | None = None
        self.subscription: Subscription | None = None
        self.burst: set[str] = set()
        self.burst_started: float | None = None
        self.command: CommandRun | None = None


def describe_trigger(rule: AutomationRule) -> str:
    if rule.paths:
        return f"{', '.join(rule.paths)} ({', '.join(rule.events)})"
    if rule.every is not None:
        return f"every {format_seconds(rule.every)}"
    return f"daily at {rule.at}"


def describe_action(rule: AutomationRule) -> str:
    if rule.action == "dispatch":
        return f"dispatch to {rule.agent}"
    if rule.action == "command":
        return "command: " + " ".join(rule.command or [])
    return "notify"


def format_seconds(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def next_daily(at: str, after: float) -> float:
    """Return the first local time ``at`` ("HH:MM") strictly after the Unix time ``after``."""
    hour, minute = (int(part) for part in at.split(":"))
    moment = datetime.fromtimestamp(after)
    candidate = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while candidate.timestamp() <= after:
        candidate += timedelta(days=1)
    return candidate.timestamp()


def previous_daily(at: str, before: float) -> float:
    """Return the last local time ``at`` ("HH:MM") at or before the Unix time ``before``."""
    hour, minute = (int(part) for part in at.split(":"))
    moment = datetime.fromtimestamp(before)
    candidate = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while candidate.timestamp() > before:
        candidate -= timedelta(days=1)
    return candidate.timestamp()


def render(template: str, paths: Sequence[str], moment: str) -> str:
    """Replace ``{paths}`` and ``{time}`` in a template; other braces are left as written."""
    return template.replace("{paths}", ", ".join(paths)).replace("{time}", moment)


def render_argv(argv: Sequence[str], paths: Sequence[str], moment: str) -> list[str]:
    """Build a command's argv: an argument that is exactly ``{paths}`` becomes one argument per path."""
    out: list[str] = []
    for arg in argv:
        if arg == "{paths}":
            out.extend(paths)
        else:
            out.append(render(arg, paths, moment))
    return out


class AutomationEngine:
    """Runs the automation rules of one repository.

    ``clock`` returns Unix seconds and decides when schedules are due (tests pass their own);
    the schedule thread checks every ``tick`` seconds. File-triggered rules fire on the
    engine's debounce thread; commands run on a thread each. ``on_event`` receives each
    new ``AutomationEvent`` on whichever thread produced it, so it must only store it.
    """

    def __init__(
        self,
        repo: Path,
        rules: Sequence[AutomationRule],
        watcher: Watcher,
        actions: Actions,
        *,
        clock: Callable[[], float] = time.time,
        tick: float = 1.0,
        max_events: int = 200,
        stop_grace: float = 3.0,
        on_event: Callable[[AutomationEvent], None] | None = None,
    ) -> None:
        self.paths = Paths(Path(repo))
        self.watcher = watcher
        self.actions = actions
        self.clock = clock
        self.tick = tick
        self.stop_grace = stop_grace
        self.on_event = on_event
        self._lock = threading.RLock()
        self._events: deque[AutomationEvent] = deque(maxlen=max_events)
        self._states: dict[str, _RuleState] = {}
        self._timers = DeadlineScheduler("aipass-automation")
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        for rule in rules:
            self._validate(rule)
            self._states[rule.name] = _RuleState(rule)
        self._load()

    @property
    def state_path(self) -> Path:
        return self.paths.state / "automation.json"

    # Lifecycle

    def start(self) -> None:
        """Watch the file rules' paths and start checking schedules."""
        self._stopped.clear()
        self._timers.start()
        now = self.clock()
        with self._lock:
            for state in self._states.values():
                if state.enabled:
                    self._activate(state, now, catch_up=True)
        self._thread = threading.Thread(target=self._schedule_loop, name="aipass-automation-schedule", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching and scheduling; stop running commands (their process groups too)."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            commands = [state.command for state in self._states.values() if state.command is not None]
            for state in self._states.values():
                self._deactivate(state)
        self._timers.stop()
        for command in commands:
            command.stop(grace=min(self.stop_grace, 1.0))
        for command in commands:
            command.join(timeout=10)

    # Queries for the cockpit

    def rules(self) -> list[RuleStatus]:
        with self._lock:
            return [
                RuleStatus(
                    name=name,
                    enabled=state.enabled,
                    trigger=describe_trigger(state.rule),
                    action=describe_action(state.rule),
                    last_fired=state.last_fired,
                    last_result=state.last_result,
                    running=state.command is not None and state.command.running,
                    next_due=state.next_due,
                )
                for name, state in self._states.items()
            ]

    def events(self) -> list[AutomationEvent]:
        """Return the recent automation events, oldest first."""
        with self._lock:
            return list(self._events)

    # Changes from the cockpit

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a rule now; the choice is kept across restarts."""
        state = self._state(name)
        with self._lock:
            if state.enabled == enabled:
                return
            state.enabled = enabled
            if enabled and not self._stopped.is_set() and self._thread is not None:
                self._activate(state, self.clock(), catch_up=False)
            elif not enabled:
                self._deactivate(state)
        self._record(name, "enabled" if enabled else "disabled", f"rule {'enabled' if enabled else 'disabled'}")
        self._save()

    def run_now(self, name: str) -> None:
        """Fire a rule at once, as if its trigger happened (even when it is disabled)."""
        self._fire(self._state(name), [], "run by hand")

    def check_schedules(self) -> None:
        """Fire every enabled schedule rule whose time has come."""
        now = self.clock()
        due: list[_RuleState] = []
        with self._lock:
            for state in self._states.values():
                if state.enabled and state.next_due is not None and now >= state.next_due:
                    due.append(state)
                    state.next_due = self._following_due(state, now)
        for state in due:
            self._fire(state, [], "schedule")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no command of any rule runs; return False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                running = [state.command for state in self._states.values() if state.command and state.command.running]
            if not running:
                return True
            running[0].join(timeout=max(0.0, deadline - time.monotonic()))
        return False

    # Internals

    def _state(self, name: str) -> _RuleState:
        state = self._states.get(name)
        if state is None:
            known = ", ".join(sorted(self._states)) or "none"
            raise KeyError(f"unknown automation rule {name!r} (rules: {known})")
        return state

    def _validate(self, rule: AutomationRule) -> None:
        if rule.name in self._states:
            raise AutomationError(f"two automation rules are named {rule.name!r}: give each rule its own name")
        if not rule.name.strip():
            raise AutomationError("an automation rule has an empty name: set name = \"...\"")
        for pattern in rule.paths:
            try:
                GlobSet(self.paths.repo, [pattern])
            except GlobError as exc:
                raise AutomationError(f"automation rule {rule.name!r}: {exc}") from exc

    def _activate(self, state: _RuleState, now: float, catch_up: bool) -> None:
        rule = state.rule
        if rule.paths:
            if state.subscription is None:
                state.subscription = self.watcher.watch_globs(
                    self.paths.repo, rule.paths, lambda change, name=rule.name: self._on_change(name, change)
                )
            return
        state.next_due = self._first_due(state, now, catch_up)

    def _deactivate(self, state: _RuleState) -> None:
        if state.subscription is not None:
            self.watcher.unwatch(state.subscription)
            state.subscription = None
        self._timers.cancel(("rule", state.rule.name))
        state.burst.clear()
        state.burst_started = None
        state.next_due = None

    def _first_due(self, state: _RuleState, now: float, catch_up: bool) -> float:
        """When a schedule fires first; one run missed while no orchestrator ran is made up at once."""
        rule = state.rule
        last = state.last_fired if catch_up else None
        if rule.every is not None:
            if last is None:
                return now + rule.every
            return min(max(last + rule.every, now), now + rule.every)
        assert rule.at is not None
        if last is not None and previous_daily(rule.at, now) > last:
            return now
        return next_daily(rule.at, now)

    def _following_due(self, state: _RuleState, now: float) -> float:
        rule = state.rule
        if rule.every is not None:
            previous = state.next_due if state.next_due is not None else now
            following = previous + rule.every
            return following if following > now else now + rule.every
        assert rule.at is not None
        return next_daily(rule.at, now)

    def _schedule_loop(self) -> None:
        self.check_schedules()
        while not self._stopped.wait(self.tick):
            try:
                self.check_schedules()
            except Exception:
                log.exception("checking automation schedules failed")

    def _on_change(self, name: str, change: FileChange) -> None:
        state = self._states[name]
        rule = state.rule
        matches = change.kind in rule.events or (change.src_path is not None and "moved" in rule.events)
        if not matches:
            return
        relative = change.path.relative_to(absolute(self.paths.repo)).as_posix()
        now = time.monotonic()
        with self._lock:
            if not state.enabled:
                return
            state.burst.add(relative)
            if state.burst_started is None:
                state.burst_started = now
            deadline = min(now + rule.debounce, state.burst_started + max(10 * rule.debounce, 10.0))
        self._timers.call_at(("rule", name), deadline, lambda: self._fire_burst(state))

    def _fire_burst(self, state: _RuleState) -> None:
        with self._lock:
            paths = sorted(state.burst)
            state.burst.clear()
            state.burst_started = None
            if not paths or not state.enabled:
                return
        self._fire(state, paths, "file change")

    def _fire(self, state: _RuleState, paths: list[str], reason: str) -> None:
        rule = state.rule
        fired_at = self.clock()
        moment = datetime.fromtimestamp(fired_at).strftime("%Y-%m-%d %H:%M")
        with self._lock:
            if state.command is not None and state.command.running:
                self._record(rule.name, "skipped", f"{reason}: the previous command (pid {state.command.pid}) is still running", "warning")
                return
            state.last_fired = fired_at
        where = f" ({len(paths)} file{'s' if len(paths) != 1 else ''}: {', '.join(paths[:5])}{', ...' if len(paths) > 5 else ''})" if paths else ""
        self._record(rule.name, "fired", f"{reason}{where}")
        try:
            if rule.action == "dispatch":
                assert rule.agent is not None
                subject = render(rule.subject, paths, moment)
                self.actions.dispatch(rule.agent, subject, render(rule.body, paths, moment), f"automation:{rule.name}")
                self._finish(state, f"dispatched to {rule.agent}: {subject}")
            elif rule.action == "notify":
                self.actions.notify("info", f"Automation: {rule.name}", render(rule.subject, paths, moment))
                self._finish(state, "notified")
            else:
                self._start_command(state, render_argv(rule.command or [], paths, moment), fired_at)
        except Exception as exc:  # noqa: BLE001 - any failure of an action is reported, never fatal
            log.exception("automation rule %s failed", rule.name)
            self._finish(state, f"failed: {exc}", failed=True)

    def _start_command(self, state: _RuleState, argv: list[str], fired_at: float) -> None:
        rule = state.rule
        safe_name = re.sub(r"[^A-Za-z0-9._-]+", "_", rule.name).strip("._") or "rule"
        stamp = datetime.fromtimestamp(fired_at).strftime("%Y%m%d-%H%M%S")
        folder = self.paths.logs / "automation"
        log_path = folder / f"{safe_name}-{stamp}.log"
        counter = 1
        while log_path.exists():
            log_path = folder / f"{safe_name}-{stamp}-{counter}.log"
            counter += 1
        command = CommandRun(argv, self.paths.repo, log_path, rule.timeout, self.stop_grace, on_done=lambda result: self._command_done(state, result))
        with self._lock:
            state.command = command
            state.last_result = f"running: {' '.join(argv)}"
        command.start()

    def _command_done(self, state: _RuleState, result: CommandResult) -> None:
        self._finish(state, result.describe(self.paths.repo), failed=not result.ok and not result.stopped)

    def _finish(self, state: _RuleState, result: str, failed: bool = False) -> None:
        with self._lock:
            state.last_result = result
        self._record(state.rule.name, "failed" if failed else "done", result, "error" if failed else "info")
        if failed:
            try:
                self.actions.notify("error", f"Automation rule {state.rule.name!r} failed", result)
            except Exception:
                log.exception("notifying the failure of automation rule %s failed", state.rule.name)
        self._save()

    def _record(self, rule: str, kind: Any, message: str, level: Level = "info") -> None:
        event = AutomationEvent(self.clock(), rule, kind, message, level)
        with self._lock:
            self._events.append(event)
        log.log(logging.ERROR if level == "error" else logging.INFO, "automation %s: %s: %s", rule, kind, message)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("the automation event callback failed")

    # Persistence

    def _load(self) -> None:
        try:
            data = read_json(self.state_path)
        except CorruptStateError as exc:
            self._record("-", "failed", str(exc), "warning")
            return
        except OSError as exc:
            self._record("-", "failed", f"could not read {self.state_path}: {exc}", "warning")
            return
        saved = data.get("rules", {}) if isinstance(data, dict) else {}
        for name, state in self._states.items():
            entry = saved.get(name)
            if not isinstance(entry, dict):
                continue
            # A toggle from the cockpit wins until config.toml's own value for the rule changes.
            if entry.get("config_enabled") == state.rule.enabled and isinstance(entry.get("enabled"), bool):
                state.enabled = entry["enabled"]
            if isinstance(entry.get("last_fired"), (int, float)):
                state.last_fired = float(entry["last_fired"])
            if isinstance(entry.get("last_result"), str):
                state.last_result = entry["last_result"]

    def _save(self) -> None:
        with self._lock:
            data = {
                "rules": {
                    name: {
                        "enabled": state.enabled,
                        "config_enabled": state.rule.enabled,
                        "last_fired": state.last_fired,
                        "last_result": state.last_result,
                    }
                    for name, state in self._states.items()
                }
            }
            try:
                self.watcher.write_json(self.state_path, data)
            except StateError as exc:
                log.error("%s", exc)
                self._events.append(AutomationEvent(self.clock(), "-", "failed", str(exc), "error"))
