"""Automation rules on real file events and real commands."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from aipass_tui.config import AutomationRule
from aipass_tui.core.store import Paths, write_json
from aipass_tui.core.watch import AutomationEngine, Watcher

DEADLINE = 5.0


class RecordingActions:
    """Stands in for the orchestrator: records each dispatch and notification."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[str, str, str, str]] = []
        self.notified: list[tuple[str, str, str]] = []
        self.cond = threading.Condition()

    def dispatch(self, agent: str, subject: str, body: str, sender: str) -> None:
        with self.cond:
            self.dispatched.append((agent, subject, body, sender))
            self.cond.notify_all()

    def notify(self, level: str, title: str, message: str) -> None:
        with self.cond:
            self.notified.append((level, title, message))
            self.cond.notify_all()

    def wait(self, predicate, timeout: float = DEADLINE) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), (self.dispatched, self.notified)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    Paths(tmp_path).ensure()
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    return tmp_path


@pytest.fixture
def watcher():
    instance = Watcher(debounce=0.05)
    yield instance
    instance.stop()


@pytest.fixture
def run_engine(repo, watcher):
    engines: list[AutomationEngine] = []

    def start(rules: list[AutomationRule], **kwargs) -> tuple[AutomationEngine, RecordingActions]:
        actions = RecordingActions()
        engine = AutomationEngine(repo, rules, watcher, actions, tick=0.05, **kwargs)
        engine.start()
        engines.append(engine)
        return engine, actions

    yield start
    for engine in engines:
        engine.stop()


def wait_result(engine: AutomationEngine, name: str, prefix: str) -> str:
    """Wait until the rule's last result starts with ``prefix``; return it."""
    deadline = threading.Event()
    for _ in range(int(DEADLINE / 0.02) * 2):
        status = next(rule for rule in engine.rules() if rule.name == name)
        if status.last_result and status.last_result.startswith(prefix):
            return status.last_result
        deadline.wait(0.02)
    raise AssertionError(f"rule {name} has result {status.last_result!r}, expected {prefix!r}...")


def test_burst_fires_once_with_all_paths(repo, run_engine):
    rule = AutomationRule(
        name="review-python",
        paths=["src/**/*.py"],
        debounce=0.5,
        action="dispatch",
        agent="claude-a",
        subject="Review {paths}",
        body="Files changed at {time}: {paths}",
    )
    engine, actions = run_engine([rule])
    names = [f"src/pkg/m{i}.py" for i in range(10)]
    for name in names:
        (repo / name).write_text("x = 1\n")
    (repo / "src" / "notes.txt").write_text("not python")
    actions.wait(lambda: len(actions.dispatched) == 1)
    agent, subject, body, sender = actions.dispatched[0]
    assert agent == "claude-a"
    assert sender == "automation:review-python"
    assert subject == "Review " + ", ".join(sorted(names))
    assert body.endswith(", ".join(sorted(names)))
    # The next change fires again with only its own path, so the burst fired exactly once.
    (repo / "src" / "later.py").write_text("y = 2\n")
    actions.wait(lambda: len(actions.dispatched) == 2)
    assert actions.dispatched[1][1] == "Review src/later.py"
    assert [event.kind for event in engine.events()].count("fired") == 2


def test_event_kinds_filter(repo, run_engine):
    target = repo / "src" / "old.py"
    target.write_text("x")
    rule = AutomationRule(name="deletions", paths=["src/*.py"], events=["deleted"], debounce=0.1, action="notify", subject="Deleted: {paths}")
    _, actions = run_engine([rule])
    target.write_text("changed")
    (repo / "src" / "new.py").write_text("x")
    target.unlink()
    actions.wait(lambda: len(actions.notified) == 1)
    assert actions.notified[0][2] == "Deleted: src/old.py"


def test_atomic_save_matches_modified_rule(repo, run_engine):
    rule = AutomationRule(name="configs", paths=["conf/*.json"], events=["modified"], debounce=0.1, action="notify", subject="{paths}")
    (repo / "conf").mkdir()
    _, actions = run_engine([rule])
    write_json(repo / "conf" / "app.json", {"a": 1})
    actions.wait(lambda: len(actions.notified) == 1)
    assert actions.notified[0][2] == "conf/app.json"


def test_own_writes_never_trigger(repo, watcher, run_engine):
    rule = AutomationRule(name="data", paths=["data/*.json"], debounce=0.1, action="notify", subject="{paths}")
    _, actions = run_engine([rule])
    (repo / "data").mkdir()
    watcher.write_json(repo / "data" / "ours.json", {"mine": True})
    write_json(repo / "data" / "theirs.json", {"theirs": True})
    actions.wait(lambda: len(actions.notified) == 1)
    assert actions.notified[0][2] == "data/theirs.json"


def test_excluded_folders_never_trigger(repo, run_engine):
    rule = AutomationRule(name="all-python", paths=["**/*.py"], debounce=0.1, action="notify", subject="{paths}")
    _, actions = run_engine([rule])
    (repo / ".git" / "hook.py").write_text("x")
    (repo / ".aipass" / "state" / "x.py").write_text("x")
    (repo / "top.py").write_text("x")
    actions.wait(lambda: len(actions.notified) == 1)
    assert actions.notified[0][2] == "top.py"


def test_disabled_file_rule_does_not_fire(repo, watcher, run_engine):
    rule = AutomationRule(name="py", paths=["src/*.py"], debounce=0.1, action="notify", subject="{paths}")
    engine, actions = run_engine([rule])
    engine.set_enabled("py", False)
    assert not any(path == repo / "src" for path, _, _ in watcher.watched())
    (repo / "src" / "while_off.py").write_text("x")
    engine.set_enabled("py", True)
    (repo / "src" / "while_on.py").write_text("x")
    actions.wait(lambda: len(actions.notified) == 1)
    assert actions.notified[0][2] == "src/while_on.py"


COMMAND = textwrap.dedent(
    """
    import sys, pathlib
    print("args:", sys.argv[1:], flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    pathlib.Path("command-ran.txt").write_text("yes")
    sys.exit(3 if "fail" in sys.argv else 0)
    """
)


def test_command_runs_with_paths_and_keeps_output(repo, run_engine):
    rule = AutomationRule(name="check files", paths=["src/*.py"], debounce=0.1, action="command", command=[sys.executable, "-c", COMMAND, "{paths}"])
    engine, _ = run_engine([rule])
    (repo / "src" / "a.py").write_text("x")
    result = wait_result(engine, "check files", "exit")
    assert result.startswith("exit 0 in ")
    assert (repo / "command-ran.txt").read_text() == "yes"
    logs = list((repo / ".aipass" / "logs" / "automation").glob("check_files-*.log"))
    assert len(logs) == 1
    text = logs[0].read_text()
    assert "args: ['src/a.py']" in text
    assert "to stderr" in text
    assert "exited with status 0" in text
    assert str(logs[0].relative_to(repo)) in result


def test_command_failure_notifies(repo, run_engine):
    rule = AutomationRule(name="failing", every="1h", action="command", command=[sys.executable, "-c", COMMAND, "fail"])
    engine, actions = run_engine([rule])
    engine.run_now("failing")
    result = wait_result(engine, "failing", "exit")
    assert result.startswith("exit 3")
    actions.wait(lambda: len(actions.notified) == 1)
    assert actions.notified[0][0] == "error"
    assert engine.events()[-1].kind == "failed"


def test_missing_program_reported(repo, run_engine):
    rule = AutomationRule(name="missing", every="1h", action="command", command=["/nonexistent/tool", "--flag"])
    engine, actions = run_engine([rule])
    engine.run_now("missing")
    result = wait_result(engine, "missing", "failed")
    assert "could not start '/nonexistent/tool'" in result
    assert "No such file or directory" in result
    actions.wait(lambda: len(actions.notified) == 1)


# The leader starts a child in its process group that ignores SIGTERM, prints both pids and waits.
STUBBORN = textwrap.dedent(
    """
    import os, signal, sys, time
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
        os._exit(0)
    print("leader", os.getpid(), "child", pid, flush=True)
    time.sleep(120)
    """
)


def test_command_timeout_kills_process_group(repo, run_engine):
    rule = AutomationRule(name="slow", every="1h", action="command", command=[sys.executable, "-c", STUBBORN], timeout=1.0)
    engine, _ = run_engine([rule], stop_grace=0.5)
    engine.run_now("slow")
    result = wait_result(engine, "slow", "timed out")
    assert "its process group was killed" in result
    log_file = next((repo / ".aipass" / "logs" / "automation").glob("slow-*.log"))
    text = log_file.read_text()
    assert "timed out with status" in text
    fields = text.split("leader ", 1)[1].split()
    leader, child = int(fields[0]), int(fields[2])
    for pid in (leader, child):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_running_command_skips_next_firing(repo, run_engine):
    rule = AutomationRule(name="long", every="1h", action="command", command=[sys.executable, "-c", "import time; time.sleep(30)"], timeout=60)
    engine, _ = run_engine([rule], stop_grace=0.2)
    engine.run_now("long")
    engine.run_now("long")
    skipped = [event for event in engine.events() if event.kind == "skipped"]
    assert len(skipped) == 1
    assert "still running" in skipped[0].message
    assert engine.rules()[0].running


def test_stop_ends_running_commands(repo, watcher):
    actions = RecordingActions()
    rule = AutomationRule(name="long", every="1h", action="command", command=[sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"], timeout=120)
    engine = AutomationEngine(repo, [rule], watcher, actions, stop_grace=0.2)
    engine.start()
    engine.run_now("long")
    log_dir = repo / ".aipass" / "logs" / "automation"

    def started() -> bool:
        logs = list(log_dir.glob("long-*.log"))
        return bool(logs) and "up" in logs[0].read_text()

    waiter = threading.Event()
    for _ in range(250):
        if started():
            break
        waiter.wait(0.02)
    assert started()
    engine.stop()
    assert engine.wait_idle(DEADLINE)
    status = engine.rules()[0]
    assert not status.running
    assert status.last_result is not None
    assert status.last_result.startswith("stopped after")
    assert actions.notified == []
