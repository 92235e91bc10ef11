"""The automation hub on a real orchestrator: inbox, plans, state, ownership, rules and stalls."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from aipass_tui.config import load_settings
from aipass_tui.core.automation import AutomationHub, PlanChange, attach_automation, automation_of
from aipass_tui.core.models import RequestStatus, RunStatus
from aipass_tui.core.notices import RunFinished, UserNotice
from aipass_tui.core.orchestrator import Orchestrator, new_request_message
from aipass_tui.core.store import Paths
from aipass_tui.core.watch import FileChange, Watcher, WatchLimitObserver
from tests.conftest import processes_of, py_command, wait_until, write_config

PLAN = '''\
title = "One file"
goal = "a.txt exists"

[[phases]]
name = "Write"
goal = "File exists"

[[phases.tasks]]
id = "a"
agent = "alpha"
title = "File a"
prompt = "Write a.txt and nothing else"
files = ["a.txt"]
'''

BROKEN_PLAN = PLAN.replace('agent = "alpha"', 'agent = "nobody"')


class Collected:
    """Values handed to a callback on another thread, readable from the test."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        with self._lock:
            if isinstance(value, list):
                self.items.extend(value)
            else:
                self.items.append(value)

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.items)

    def notices(self, title: str) -> list[UserNotice]:
        return [n for n in self.snapshot() if isinstance(n, UserNotice) and n.title.startswith(title)]


class WakeRecorder(Orchestrator):
    """An orchestrator that records when something wakes it."""

    woken: threading.Event

    def wake(self) -> None:
        self.woken.set()
        super().wake()


@pytest.fixture
def hubs(orchestrators: list) -> Iterator[list[AutomationHub]]:
    started: list[AutomationHub] = []
    yield started
    for hub in started:
        hub.close()


def start(repo: Path, orchestrators: list, hubs: list, **options: Any) -> tuple[Any, AutomationHub, Collected]:
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    notices = Collected()
    orchestrator.subscribe(notices.add)
    orchestrators.append(orchestrator)
    orchestrator.start_thread()
    hub = attach_automation(orchestrator, **options)
    hubs.append(hub)
    return orchestrator, hub, notices


def write_elsewhere(path: Path, data: Any) -> None:
    """Write a JSON file atomically from another process, as a headless command would."""
    script = "import json, sys, pathlib; from aipass_tui.core.store import write_json; write_json(pathlib.Path(sys.argv[1]), json.loads(sys.argv[2]))"
    subprocess.run([sys.executable, "-c", script, str(path), json.dumps(data)], check=True, timeout=30)


def request_of(orchestrator: Orchestrator, request_id: str):
    return next(r for r in orchestrator.snapshot().requests if r.id == request_id)


def finished(orchestrator: Orchestrator, request_id: str) -> bool:
    return request_of(orchestrator, request_id).status in (RequestStatus.DONE, RequestStatus.FAILED, RequestStatus.CANCELLED)


SHARED_ECHO = """
    [agents.echo]
    kind = "command"
    command = ["sh", "-c", "echo \\"$AIPASS_REQUEST_ID\\""]
    isolation = "shared"
"""


# Attaching and closing -----------------------------------------------------------------------


def test_attach_stores_hub_and_is_idempotent(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO)
    orchestrator, hub, _ = start(repo, orchestrators, hubs)
    assert orchestrator.extensions["automation"] is hub
    assert automation_of(orchestrator) is hub
    assert attach_automation(orchestrator) is hub


def test_close_stops_threads_and_detaches(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO)
    orchestrator, hub, _ = start(repo, orchestrators, hubs)
    hub.close()
    assert "automation" not in orchestrator.extensions
    assert automation_of(orchestrator) is None
    names = {thread.name for thread in threading.enumerate()}
    assert "aipass-automation-hub" not in names
    assert "aipass-watch-debounce" not in names
    hub.close()  # a second close does nothing
    request = orchestrator.dispatch("echo", "still works without automation")
    wait_until(lambda: finished(orchestrator, request.id), message="the request to run")


# Inbox ---------------------------------------------------------------------------------------


def test_inbox_file_from_other_process_wakes(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO)
    orchestrator = WakeRecorder(repo, load_settings(repo), role="test")
    orchestrator.woken = threading.Event()
    orchestrators.append(orchestrator)
    orchestrator.start()
    hubs.append(attach_automation(orchestrator))
    orchestrator.woken.clear()
    message = new_request_message("echo", "dropped by another process")
    write_elsewhere(Paths(repo).inbox / f"{message['id']}.json", message)
    assert orchestrator.woken.wait(10), "the inbox watch must wake the orchestrator"
    orchestrator.tick()
    assert request_of(orchestrator, message["id"]).status in (RequestStatus.QUEUED, RequestStatus.RUNNING)


# Plans ---------------------------------------------------------------------------------------


def test_plan_changed_on_disk_is_revalidated(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, """
        [agents.alpha]
        kind = "command"
        command = ["true"]
    """)
    paths = Paths(repo)
    paths.ensure()
    plan = paths.plans / "FPLAN-0001_one.toml"
    plan.write_text(PLAN)
    _, hub, notices = start(repo, orchestrators, hubs)
    changes = Collected()
    hub.plan_listeners.add(changes.add)

    subprocess.run([sys.executable, "-c", f"open({str(plan)!r}, 'w').write({BROKEN_PLAN!r})"], check=True, timeout=30)
    wait_until(lambda: changes.snapshot(), message="the plan change")
    change = changes.snapshot()[0]
    assert isinstance(change, PlanChange)
    assert change.path == plan
    assert change.kind == "modified"
    assert any("nobody" in problem for problem in change.problems), change.problems
    warning = wait_until(lambda: notices.notices("Plan FPLAN-0001_one.toml changed on disk and has problems"))
    assert warning[0].level == "warning"
    assert "nobody" in warning[0].message

    subprocess.run([sys.executable, "-c", f"open({str(plan)!r}, 'w').write({PLAN!r})"], check=True, timeout=30)
    wait_until(lambda: len(changes.snapshot()) == 2, message="the second plan change")
    assert changes.snapshot()[1].problems == ()

    plan.unlink()
    wait_until(lambda: len(changes.snapshot()) == 3, message="the deletion")
    assert changes.snapshot()[2].kind == "deleted"
    assert len(notices.notices("Plan FPLAN-0001_one.toml")) == 1


def test_plan_own_save_not_reported(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO)
    paths = Paths(repo)
    paths.ensure()
    _, hub, _ = start(repo, orchestrators, hubs)
    changes = Collected()
    hub.plan_listeners.add(changes.add)
    own = paths.plans / "FPLAN-0002_own.toml"
    hub.suppress(own)
    own.write_text(PLAN)
    other = paths.plans / "FPLAN-0003_other.toml"
    subprocess.run([sys.executable, "-c", f"open({str(other)!r}, 'w').write({PLAN!r})"], check=True, timeout=30)
    wait_until(lambda: changes.snapshot(), message="the other process's plan")
    hub.wait_idle()
    assert [change.path for change in changes.snapshot()] == [other]


# State files ---------------------------------------------------------------------------------


def test_state_change_by_other_process_reported(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO)
    orchestrator, hub, _ = start(repo, orchestrators, hubs)
    changes = Collected()
    hub.state_listeners.add(changes.add)
    # Own writes: orchestrator.json, local.json and run.json files of a few runs.
    for n in range(5):
        request = orchestrator.dispatch("echo", f"own write {n}")
        wait_until(lambda: finished(orchestrator, request.id), message="the run")
    orchestrator.flush(force=True)
    pull = Paths(repo).pulls / "7.json"
    write_elsewhere(pull, {"id": "7", "note": "written by a headless command"})
    wait_until(lambda: any(change.path == pull for change in changes.snapshot()), message="the other process's write")
    hub.wait_idle()
    reported = [change.path for change in changes.snapshot()]
    assert all(isinstance(change, FileChange) for change in changes.snapshot())
    assert reported == [pull], "the orchestrator's own state writes must not be reported"


# Ownership -----------------------------------------------------------------------------------


def test_file_outside_task_raises_live_alert(repo: Path, orchestrators: list, hubs: list, tmp_path: Path) -> None:
    go = tmp_path / "go"
    # The agent keeps writing until the test lets it finish, so the alert is seen while it runs.
    script = f"n=0; while [ ! -e {go} ] && [ $n -lt 300 ]; do echo a >> a.txt; echo x >> stray.txt; n=$((n+1)); sleep 0.1; done"
    write_config(repo, f"""
        [agents.alpha]
        kind = "command"
        command = ["sh", "-c", "{script}"]
    """)
    paths = Paths(repo)
    paths.ensure()
    (paths.plans / "FPLAN-0001_one.toml").write_text(PLAN)
    orchestrator, hub, notices = start(repo, orchestrators, hubs)
    alerts = Collected()
    hub.alert_listeners.add(alerts.add)
    request = orchestrator.dispatch("alpha", "write a.txt", plan_task="FPLAN-0001:a")

    wait_until(lambda: alerts.snapshot(), timeout=30, message="the ownership alert")
    run_id = request_of(orchestrator, request.id).run
    assert hub.watched_agents() == ["alpha"]
    alert = alerts.snapshot()[0]
    assert alert.agent == "alpha"
    assert alert.path == "stray.txt"
    assert alert.plan_task == "FPLAN-0001:a"
    assert alert.run_id == run_id
    assert request_of(orchestrator, request.id).status == RequestStatus.RUNNING, "the alert must come while the agent runs"
    warning = wait_until(lambda: notices.notices("alpha changed a file outside its task"))
    assert warning[0].agent == "alpha"
    assert "stray.txt" in warning[0].message and "a.txt" in warning[0].message

    go.touch()
    wait_until(lambda: finished(orchestrator, request.id), timeout=30, message="the run to end")
    wait_until(lambda: hub.watched_agents() == [], message="the watch to stop")
    assert [a.path for a in hub.ownership_alerts("alpha")] == ["stray.txt"], "each path is reported once"


def test_run_without_plan_task_not_watched(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, """
        [agents.alpha]
        kind = "command"
        command = ["sh", "-c", "echo x > stray.txt; sleep 1"]
    """)
    orchestrator, hub, _ = start(repo, orchestrators, hubs)
    request = orchestrator.dispatch("alpha", "no plan")
    wait_until(lambda: request_of(orchestrator, request.id).status == RequestStatus.RUNNING, message="the run")
    hub.wait_idle()
    assert hub.watched_agents() == []
    wait_until(lambda: finished(orchestrator, request.id), timeout=30)
    assert hub.ownership_alerts("alpha") == []


def test_unknown_plan_task_owns_nothing(repo: Path, orchestrators: list, hubs: list, tmp_path: Path) -> None:
    go = tmp_path / "go"
    write_config(repo, f"""
        [agents.alpha]
        kind = "command"
        command = ["sh", "-c", "n=0; while [ ! -e {go} ] && [ $n -lt 300 ]; do echo a >> a.txt; n=$((n+1)); sleep 0.1; done"]
    """)
    orchestrator, hub, notices = start(repo, orchestrators, hubs)
    request = orchestrator.dispatch("alpha", "task of a missing plan", plan_task="FPLAN-0099:a")
    wait_until(lambda: hub.ownership_alerts("alpha"), timeout=30, message="the alert")
    assert hub.ownership_alerts("alpha")[0].path == "a.txt"
    missing = notices.notices("alpha: plan task not found")
    assert missing and "FPLAN-0099:a" in missing[0].message
    go.touch()
    wait_until(lambda: finished(orchestrator, request.id), timeout=30)


def test_reattached_run_gets_ownership_watch(repo: Path, orchestrators: list, hubs: list, tmp_path: Path) -> None:
    go = tmp_path / "go"
    write_config(repo, f"""
        [agents.alpha]
        kind = "command"
        command = ["sh", "-c", "while [ ! -e {go} ]; do sleep 0.1; done; echo x > stray.txt; sleep 2"]
    """)
    paths = Paths(repo)
    paths.ensure()
    (paths.plans / "FPLAN-0001_one.toml").write_text(PLAN)
    first = Orchestrator(repo, load_settings(repo), role="first")
    first.start_thread()
    request = first.dispatch("alpha", "write a.txt", plan_task="FPLAN-0001:a")
    wait_until(lambda: request_of(first, request.id).status == RequestStatus.RUNNING, timeout=30, message="the run")
    first.close()
    orchestrator, hub, _ = start(repo, orchestrators, hubs)
    wait_until(lambda: hub.watched_agents() == ["alpha"], message="the re-attached run to be watched")
    go.touch()
    wait_until(lambda: hub.ownership_alerts("alpha"), timeout=30, message="the alert")
    assert hub.ownership_alerts("alpha")[0].path == "stray.txt"


# Automation rules ----------------------------------------------------------------------------


def test_file_rule_dispatches_with_sender(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO + """
        [[automation]]
        name = "docs-changed"
        paths = ["docs/*.md"]
        debounce = "0.1s"
        action = "dispatch"
        agent = "echo"
        subject = "Review {paths}"
    """)
    (repo / "docs").mkdir()
    orchestrator, hub, _ = start(repo, orchestrators, hubs)
    (repo / "docs" / "guide.md").write_text("# Guide\n")
    request = wait_until(lambda: next((r for r in orchestrator.snapshot().requests if r.sender == "automation:docs-changed"), None), message="the dispatched request")
    assert request.subject == "Review docs/guide.md"
    wait_until(lambda: finished(orchestrator, request.id), message="the run")
    status = hub.rules()[0]
    assert status.name == "docs-changed"
    assert status.last_fired is not None
    assert status.last_result == "dispatched to echo: Review docs/guide.md"
    kinds = [event.kind for event in hub.events()]
    assert kinds[-2:] == ["fired", "done"]


def test_notify_rule_reaches_subscribers(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO + """
        [[automation]]
        name = "heartbeat"
        every = "0.2s"
        action = "notify"
        subject = "still here at {time}"
    """)
    _, hub, notices = start(repo, orchestrators, hubs, schedule_tick=0.05)
    notice = wait_until(lambda: notices.notices("Automation: heartbeat"), message="the notification")
    assert notice[0].level == "info"
    assert notice[0].message.startswith("still here at ")


def test_own_state_writes_never_trigger_rules(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO + """
        [[automation]]
        name = "state-watch"
        paths = [".aipass/state/*.json"]
        debounce = "0.1s"
        action = "notify"
        subject = "state changed: {paths}"
    """)
    orchestrator, hub, notices = start(repo, orchestrators, hubs)
    for n in range(5):
        request = orchestrator.dispatch("echo", f"write state {n}")
        wait_until(lambda: finished(orchestrator, request.id))
    orchestrator.flush(force=True)
    write_elsewhere(Paths(repo).state / "foreign.json", {"from": "another process"})
    fired = wait_until(lambda: notices.notices("Automation: state-watch"), message="the foreign write to fire the rule")
    hub.wait_idle()
    assert [n.message for n in fired] == ["state changed: .aipass/state/foreign.json"]
    assert len(notices.notices("Automation: state-watch")) == 1


def test_disabled_rule_stays_quiet_until_enabled(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO + """
        [[automation]]
        name = "docs"
        paths = ["docs/*.md"]
        debounce = "0.1s"
        action = "notify"
        subject = "docs: {paths}"
    """)
    (repo / "docs").mkdir()
    _, hub, notices = start(repo, orchestrators, hubs)
    hub.set_enabled("docs", False)
    assert hub.rules()[0].enabled is False
    (repo / "docs" / "quiet.md").write_text("x")
    hub.set_enabled("docs", True)
    (repo / "docs" / "loud.md").write_text("x")
    fired = wait_until(lambda: notices.notices("Automation: docs"), message="the enabled rule")
    assert fired[0].message == "docs: docs/loud.md"
    with pytest.raises(KeyError, match="unknown automation rule 'nope'"):
        hub.set_enabled("nope", True)


def test_invalid_rules_reported_and_rest_runs(repo: Path, orchestrators: list, hubs: list) -> None:
    rule = """
        [[automation]]
        name = "twice"
        every = "1h"
        action = "notify"
    """
    write_config(repo, SHARED_ECHO + rule + rule)
    orchestrator, hub, notices = start(repo, orchestrators, hubs)
    assert hub.engine is None
    assert "two automation rules are named 'twice'" in (hub.rules_error or "")
    error = wait_until(lambda: notices.notices("Automation rules not started"))
    assert error[0].level == "error"
    assert hub.rules() == []
    request = orchestrator.dispatch("echo", "the inbox still works")
    wait_until(lambda: finished(orchestrator, request.id))


def test_polling_fallback_reported_once(repo: Path, orchestrators: list, hubs: list) -> None:
    write_config(repo, SHARED_ECHO)
    watcher = Watcher(debounce=0.05, poll_interval=0.1, observer_factory=lambda: WatchLimitObserver(max_watches=1))
    _, hub, notices = start(repo, orchestrators, hubs, watcher=watcher)
    fallback = wait_until(lambda: notices.notices("File watching fell back to polling"))
    assert fallback[0].level == "warning"
    assert "fs.inotify.max_user_watches" in fallback[0].message
    assert watcher.polling
    changes = Collected()
    hub.state_listeners.add(changes.add)
    target = Paths(repo).state / "foreign.json"
    write_elsewhere(target, {"polled": True})
    wait_until(lambda: changes.snapshot(), message="a change seen by polling")
    hub.wait_idle()
    assert len(notices.notices("File watching fell back to polling")) == 1


# The `work` command --------------------------------------------------------------------------


def test_work_command_runs_rules(repo: Path, tmp_path: Path) -> None:
    record = tmp_path / "record.log"
    write_config(repo, f"""
        [agents.echo]
        kind = "command"
        command = ["sh", "-c", "echo \\"$AIPASS_REQUEST_ID\\" >> {record}"]
        isolation = "shared"

        [[automation]]
        name = "on-drop"
        paths = ["drop/*.txt"]
        debounce = "0.1s"
        action = "dispatch"
        agent = "echo"
        subject = "Handle {{paths}}"
    """)
    (repo / "drop").mkdir()
    paths = Paths(repo)
    proc = subprocess.Popen(
        [sys.executable, "-m", "aipass_tui", "work", "--repo", str(repo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: (paths.state / "orchestrator.json").exists() and paths.orchestrator_lock.exists(), message="work to start")
        # The rule's watch exists once automation.json can be written; drop files until one fires.
        deadline = time.monotonic() + 20
        n = 0
        while time.monotonic() < deadline and not record.exists():
            (repo / "drop" / f"file{n}.txt").write_text("x")
            n += 1
            time.sleep(0.3)
        wait_until(lambda: record.exists(), message="the rule's request to run")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    state = json.loads((paths.state / "orchestrator.json").read_text())
    senders = {request["sender"] for request in state["requests"].values()}
    assert senders == {"automation:on-drop"}
    saved = json.loads((paths.state / "automation.json").read_text())
    assert saved["rules"]["on-drop"]["last_fired"] is not None


# Stalls --------------------------------------------------------------------------------------


STALLER = py_command(
    """
    import time
    print("started, now waiting for ever", flush=True)
    time.sleep(120)
    """
)


def test_stall_action_stop(repo: Path, orchestrators: list) -> None:
    write_config(repo, f"""
        [limits]
        stop_grace = "0.5s"

        [agents.staller]
        kind = "command"
        command = {STALLER}
        isolation = "shared"
        stall_after = "0.5s"
        stall_action = "stop"
    """)
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    notices = Collected()
    orchestrator.subscribe(notices.add)
    orchestrators.append(orchestrator)
    orchestrator.start_thread()
    request = orchestrator.dispatch("staller", "wait for ever")
    wait_until(lambda: finished(orchestrator, request.id), timeout=20, message="the stalled run to be stopped")
    done = request_of(orchestrator, request.id)
    assert done.status == RequestStatus.FAILED
    run = orchestrator.snapshot().runs[done.run]
    assert run.status == RunStatus.STOPPED
    assert run.stop_requested == "stall"
    assert "stalled" in (run.message or "")
    stalled = notices.notices("staller stalled")
    assert len(stalled) == 1
    assert "stall action: stop" in stalled[0].message
    wait_until(lambda: not processes_of(run.id), timeout=5, message="no process left")
    assert len(orchestrator.snapshot().requests) == 1, "the stop action must not retry"


def test_stall_action_retry_once(repo: Path, orchestrators: list) -> None:
    write_config(repo, f"""
        [limits]
        stop_grace = "0.5s"

        [agents.staller]
        kind = "command"
        command = {STALLER}
        isolation = "shared"
        stall_after = "0.5s"
        stall_action = "retry"
    """)
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    notices = Collected()
    orchestrator.subscribe(notices.add)
    orchestrators.append(orchestrator)
    orchestrator.start_thread()
    request = orchestrator.dispatch("staller", "wait for ever")

    def retry():
        return next((r for r in orchestrator.snapshot().requests if r.sender == f"stall retry of {request.id}"), None)

    wait_until(lambda: finished(orchestrator, request.id), timeout=20, message="the first run to be stopped")
    retried = wait_until(retry, message="the retry request")
    wait_until(lambda: finished(orchestrator, retried.id), timeout=20, message="the retry to be stopped too")
    assert (retried.agent, retried.subject, retried.body) == ("staller", "wait for ever", "")
    # A retry is queued in the same tick as the finish it follows, before the RunFinished
    # notice, so once the second finish is seen a third attempt would already be listed.
    wait_until(lambda: len([n for n in notices.snapshot() if isinstance(n, RunFinished)]) == 2, message="two finished runs")
    requests = orchestrator.snapshot().requests
    assert [r.id for r in requests] == [request.id, retried.id]
    assert [r.status for r in requests] == [RequestStatus.FAILED, RequestStatus.FAILED]
    runs = [orchestrator.snapshot().runs[r.runs[0]] for r in requests]
    assert [run.stop_requested for run in runs] == ["stall", "stall"]
    assert [run.status for run in runs] == [RunStatus.STOPPED, RunStatus.STOPPED]
    assert len(notices.notices("staller stalled")) == 2
