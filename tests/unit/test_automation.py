"""Automation rules with an injected clock: schedules, enable/disable, templates, persistence, bad rules."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

import pytest

from aipass_tui.config import AutomationRule
from aipass_tui.core.store import Paths
from aipass_tui.core.watch import AutomationEngine, AutomationError, Watcher
from aipass_tui.core.watch_rules import next_daily, previous_daily, render, render_argv

DEADLINE = 5.0


class RecordingActions:
    """Stands in for the orchestrator: records each dispatch and notification."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[str, str, str, str]] = []
        self.notified: list[tuple[str, str, str]] = []
        self.fail_dispatch: str | None = None
        self.cond = threading.Condition()

    def dispatch(self, agent: str, subject: str, body: str, sender: str) -> str:
        if self.fail_dispatch:
            raise ValueError(self.fail_dispatch)
        with self.cond:
            self.dispatched.append((agent, subject, body, sender))
            self.cond.notify_all()
        return "r-1"

    def notify(self, level: str, title: str, message: str) -> None:
        with self.cond:
            self.notified.append((level, title, message))
            self.cond.notify_all()

    def wait(self, predicate, timeout: float = DEADLINE) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), (self.dispatched, self.notified)


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def local(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").timestamp()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    Paths(tmp_path).ensure()
    return tmp_path


@pytest.fixture
def watcher():
    instance = Watcher()
    yield instance
    instance.stop()


def make_engine(repo, watcher, rules, clock, actions=None, **kwargs) -> tuple[AutomationEngine, RecordingActions]:
    actions = actions or RecordingActions()
    engine = AutomationEngine(repo, rules, watcher, actions, clock=clock, tick=0.02, **kwargs)
    return engine, actions


def test_every_schedule_fires_on_interval(repo, watcher):
    clock = FakeClock(local("2026-03-01 10:00"))
    rule = AutomationRule(name="lint", every="30m", action="notify", subject="Lint at {time}")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    try:
        engine.check_schedules()
        assert actions.notified == []
        clock.now += 29 * 60
        engine.check_schedules()
        assert actions.notified == []
        clock.now += 60
        actions.wait(lambda: len(actions.notified) == 1)
        assert actions.notified[0] == ("info", "Automation: lint", "Lint at 2026-03-01 10:30")
        clock.now += 30 * 60
        actions.wait(lambda: len(actions.notified) == 2)
        status = engine.rules()[0]
        assert status.last_fired == clock.now
        assert status.next_due == clock.now + 1800
        assert status.trigger == "every 30m"
    finally:
        engine.stop()


def test_every_schedule_no_burst_after_sleep(repo, watcher):
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="tick", every=60, action="notify")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    try:
        # The machine slept for ten hours: one firing, then the interval starts again.
        clock.now += 10 * 3600
        for _ in range(5):
            engine.check_schedules()
        assert len(actions.notified) == 1
        assert engine.rules()[0].next_due == clock.now + 60
    finally:
        engine.stop()


def test_at_schedule_fires_daily(repo, watcher):
    clock = FakeClock(local("2026-03-01 01:00"))
    rule = AutomationRule(name="nightly", at="02:00", action="dispatch", agent="claude-a", subject="Nightly {time}", body="paths: {paths}.")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    try:
        clock.now = local("2026-03-01 01:59")
        engine.check_schedules()
        assert actions.dispatched == []
        clock.now = local("2026-03-01 02:00")
        actions.wait(lambda: len(actions.dispatched) == 1)
        assert actions.dispatched[0] == ("claude-a", "Nightly 2026-03-01 02:00", "paths: .", "automation:nightly")
        clock.now = local("2026-03-01 23:00")
        engine.check_schedules()
        assert len(actions.dispatched) == 1
        assert engine.rules()[0].next_due == local("2026-03-02 02:00")
        clock.now = local("2026-03-02 02:01")
        actions.wait(lambda: len(actions.dispatched) == 2)
        assert engine.rules()[0].last_result == "dispatched to claude-a: Nightly 2026-03-02 02:01"
    finally:
        engine.stop()


def test_missed_schedule_made_up_once_after_restart(repo, watcher):
    clock = FakeClock(local("2026-03-01 01:00"))
    rule = AutomationRule(name="nightly", at="02:00", action="notify")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    clock.now = local("2026-03-01 02:00")
    actions.wait(lambda: len(actions.notified) == 1)
    engine.stop()
    # No orchestrator ran over the next two nights.
    clock.now = local("2026-03-03 09:00")
    again, actions_again = make_engine(repo, watcher, [rule], clock)
    again.start()
    try:
        actions_again.wait(lambda: len(actions_again.notified) == 1)
        again.check_schedules()
        assert len(actions_again.notified) == 1
        assert again.rules()[0].next_due == local("2026-03-04 02:00")
    finally:
        again.stop()


def test_first_start_does_not_fire_past_time(repo, watcher):
    clock = FakeClock(local("2026-03-01 03:00"))
    rule = AutomationRule(name="nightly", at="02:00", action="notify")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    engine.check_schedules()
    engine.stop()
    assert actions.notified == []
    assert engine.rules()[0].next_due is None


def test_disable_and_enable(repo, watcher):
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="tick", every=60, action="notify")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    try:
        engine.set_enabled("tick", False)
        clock.now += 600
        engine.check_schedules()
        assert actions.notified == []
        assert engine.rules()[0].enabled is False
        engine.set_enabled("tick", True)
        engine.check_schedules()
        assert actions.notified == []
        clock.now += 60
        actions.wait(lambda: len(actions.notified) == 1)
        kinds = [event.kind for event in engine.events()]
        assert kinds[:2] == ["disabled", "enabled"]
        assert "fired" in kinds
    finally:
        engine.stop()


def test_enabled_flag_persists(repo, watcher):
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="tick", every=60, action="notify")
    engine, _ = make_engine(repo, watcher, [rule], clock)
    engine.set_enabled("tick", False)
    saved = json.loads((repo / ".aipass" / "state" / "automation.json").read_text())
    assert saved["rules"]["tick"]["enabled"] is False
    restarted, _ = make_engine(repo, watcher, [rule], clock)
    assert restarted.rules()[0].enabled is False


def test_config_change_overrides_saved_flag(repo, watcher):
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="tick", every=60, action="notify")
    engine, _ = make_engine(repo, watcher, [rule], clock)
    engine.set_enabled("tick", False)
    edited = AutomationRule(name="tick", every=60, action="notify", enabled=False)
    engine, _ = make_engine(repo, watcher, [edited], clock)
    engine.set_enabled("tick", True)
    reenabled_in_config = AutomationRule(name="tick", every=60, action="notify", enabled=True)
    restarted, _ = make_engine(repo, watcher, [reenabled_in_config], clock)
    assert restarted.rules()[0].enabled is True


def test_last_fired_persists(repo, watcher):
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="tick", every=60, action="notify")
    engine, _ = make_engine(repo, watcher, [rule], clock)
    engine.run_now("tick")
    restarted, _ = make_engine(repo, watcher, [rule], clock)
    status = restarted.rules()[0]
    assert status.last_fired == 1_000_000.0
    assert status.last_result == "notified"


def test_corrupt_state_moved_aside(repo, watcher):
    state = repo / ".aipass" / "state" / "automation.json"
    state.write_bytes(b"\0\0\0")
    clock = FakeClock(1_000_000.0)
    engine, _ = make_engine(repo, watcher, [AutomationRule(name="tick", every=60, action="notify")], clock)
    assert not state.exists()
    assert list(state.parent.glob("automation.json.corrupt-*"))
    assert engine.events()[0].level == "warning"
    assert "NUL bytes" in engine.events()[0].message
    assert engine.rules()[0].enabled is True


def test_state_write_failure_reported(repo, watcher):
    clock = FakeClock(1_000_000.0)
    engine, _ = make_engine(repo, watcher, [AutomationRule(name="tick", every=60, action="notify")], clock)
    # A folder in the file's place makes the final rename fail, as a broken disk would.
    (repo / ".aipass" / "state" / "automation.json").mkdir()
    engine.set_enabled("tick", False)
    errors = [event for event in engine.events() if event.level == "error"]
    assert len(errors) == 1
    assert "could not write" in errors[0].message
    assert "automation.json" in errors[0].message
    assert engine.rules()[0].enabled is False


def test_dispatch_failure_recorded_and_notified(repo, watcher):
    actions = RecordingActions()
    actions.fail_dispatch = "unknown agent 'ghost'"
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="ping", every=60, action="dispatch", agent="ghost")
    engine, _ = make_engine(repo, watcher, [rule], clock, actions=actions)
    engine.run_now("ping")
    status = engine.rules()[0]
    assert status.last_result == "failed: unknown agent 'ghost'"
    assert actions.notified == [("error", "Automation rule 'ping' failed", "failed: unknown agent 'ghost'")]
    assert engine.events()[-1].kind == "failed"


def test_event_log_bounded(repo, watcher):
    clock = FakeClock(1_000_000.0)
    engine, _ = make_engine(repo, watcher, [AutomationRule(name="tick", every=60, action="notify")], clock, max_events=10)
    for _ in range(20):
        engine.run_now("tick")
    events = engine.events()
    assert len(events) == 10
    assert all(event.rule == "tick" for event in events)


def test_on_event_callback(repo, watcher):
    clock = FakeClock(1_000_000.0)
    seen = []
    engine, _ = make_engine(repo, watcher, [AutomationRule(name="tick", every=60, action="notify")], clock, on_event=seen.append)
    engine.run_now("tick")
    assert [event.kind for event in seen] == ["fired", "done"]


def test_unknown_rule_name(repo, watcher):
    engine, _ = make_engine(repo, watcher, [AutomationRule(name="tick", every=60, action="notify")], FakeClock(0))
    with pytest.raises(KeyError, match="unknown automation rule 'nope' \\(rules: tick\\)"):
        engine.set_enabled("nope", True)


def test_duplicate_rule_names_rejected(repo, watcher):
    rules = [AutomationRule(name="x", every=60, action="notify"), AutomationRule(name="x", every=120, action="notify")]
    with pytest.raises(AutomationError, match="two automation rules are named 'x'"):
        make_engine(repo, watcher, rules, FakeClock(0))


def test_escaping_glob_rejected(repo, watcher):
    rules = [AutomationRule(name="outside", paths=["../other/*.py"], action="notify")]
    with pytest.raises(AutomationError, match="automation rule 'outside': glob '../other/\\*.py' leaves the repository"):
        make_engine(repo, watcher, rules, FakeClock(0))


def test_templates():
    assert render("Changed: {paths} at {time}", ["a.py", "b.py"], "2026-03-01 10:00") == "Changed: a.py, b.py at 2026-03-01 10:00"
    assert render("{unknown} {paths}", [], "t") == "{unknown} "
    argv = render_argv(["ruff", "check", "{paths}", "--output={time}.txt"], ["a.py", "b c.py"], "T")
    assert argv == ["ruff", "check", "a.py", "b c.py", "--output=T.txt"]


def test_daily_helpers():
    base = local("2026-03-01 02:00")
    assert next_daily("02:00", base) == local("2026-03-02 02:00")
    assert next_daily("02:00", base - 1) == base
    assert previous_daily("02:00", base) == base
    assert previous_daily("02:00", base - 1) == local("2026-02-28 02:00")


def test_schedule_thread_uses_injected_clock(repo, watcher):
    clock = FakeClock(1_000_000.0)
    rule = AutomationRule(name="tick", every="1h", action="notify")
    engine, actions = make_engine(repo, watcher, [rule], clock)
    engine.start()
    try:
        clock.now += 3600
        actions.wait(lambda: len(actions.notified) == 1)
    finally:
        engine.stop()
    assert engine._thread is None
