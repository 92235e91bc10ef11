"""PlanExecution against a stand-in orchestrator: phases, dependencies, failures, restarts.

``FakeOrchestrator`` replaces ``aipass_tui.core.orchestrator.Orchestrator`` here, with the
three methods a plan uses (``dispatch``, ``snapshot``, ``subscribe``). It is a queue with one
run per agent and a global cap, whose runs end when the test calls ``finish``. The plan code under test is real,
and so are the files it writes. Runs of real agents in real repositories are covered by the
integration tests of ``plan run``.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.handlers import HandlerContext, HandlerError, run_handler
from aipass_tui.core.models import Request, RequestStatus, RunRecord, RunStatus
from aipass_tui.core.notices import PullChanged, RequestChanged, RunFinished, RunStarted, UserNotice
from aipass_tui.core.plans import PlanError, PlanExecution, PlanHost, PlanInvalid, PlanStatus
from aipass_tui.core.plans.state import PlanState, save_state
from aipass_tui.core.store import Paths, write_json
from tests.conftest import git, wait_until


class ProcessKilled(BaseException):
    """Ends the test's 'process' at a chosen point, like kill -9, past every ``except Exception``."""


class FakeOrchestrator:
    """A queue with one run per agent and a global cap; runs end when the test calls ``finish``."""

    def __init__(self, agents: list[str], max_parallel: int = 8) -> None:
        self.agents = set(agents)
        self.max_parallel = max_parallel
        self.requests: dict[str, Request] = {}
        self.runs: dict[str, RunRecord] = {}
        self.subscribers: list[Any] = []
        self.extensions: dict[str, Any] = {}
        self.kill_after_dispatch = False
        self._seq = 0

    def dispatch(self, agent: str, subject: str, body: str = "", *, priority: int = 0, sender: str = "user",
                 plan_task: str | None = None, branch: str | None = None) -> Request:
        if agent not in self.agents:
            raise ValueError(f"unknown agent {agent!r}")
        return self._add(agent, subject, body, sender=sender, plan_task=plan_task, priority=priority, kill=self.kill_after_dispatch)

    def _add(self, agent: str, subject: str, body: str, *, sender: str, plan_task: str | None, priority: int = 0, kill: bool = False) -> Request:
        self._seq += 1
        request = Request(id=f"r-{self._seq}", agent=agent, subject=subject, body=body, sender=sender,
                          priority=priority, created_at=clock.now(), plan_task=plan_task, seq=self._seq)
        self.requests[request.id] = request
        self._publish([RequestChanged(request.model_copy(deep=True))])
        if kill:
            raise ProcessKilled()
        return request.model_copy(deep=True)

    def snapshot(self) -> Any:
        return SimpleNamespace(
            requests=[r.model_copy(deep=True) for r in sorted(self.requests.values(), key=lambda r: r.seq)],
            runs={rid: run.model_copy(deep=True) for rid, run in self.runs.items()},
        )

    def subscribe(self, callback: Any) -> None:
        self.subscribers.append(callback)

    def unsubscribe(self, callback: Any) -> None:
        self.subscribers.remove(callback)

    def _publish(self, notices: list[Any]) -> None:
        for callback in list(self.subscribers):
            callback(list(notices))

    # What the test drives

    def start_ready(self) -> list[str]:
        """Start queued requests: priority then FIFO, one run per agent, at most max_parallel."""
        running = [r for r in self.requests.values() if r.status == RequestStatus.RUNNING]
        busy = {r.agent for r in running}
        started = []
        for request in sorted(self.requests.values(), key=lambda r: (-r.priority, r.seq)):
            if request.status != RequestStatus.QUEUED or request.agent in busy or len(running) >= self.max_parallel:
                continue
            run = RunRecord(id=f"u-{request.id[2:]}", agent=request.agent, request=request.id, kind="command",
                            status=RunStatus.RUNNING, started_at=clock.now())
            self.runs[run.id] = run
            request.status = RequestStatus.RUNNING
            request.run = run.id
            request.runs.append(run.id)
            busy.add(request.agent)
            running.append(request)
            started.append(request.id)
            self._publish([RequestChanged(request.model_copy(deep=True)), RunStarted(run.model_copy(deep=True))])
        return started

    def finish(self, request_id: str, ok: bool = True, message: str = "") -> None:
        request = self.requests[request_id]
        run = self.runs[request.run]
        run.status = RunStatus.SUCCEEDED if ok else RunStatus.FAILED
        run.message = message or ("finished" if ok else "exit code 3")
        run.ended_at = clock.now()
        request.status = RequestStatus.DONE if ok else RequestStatus.FAILED
        request.message = run.message
        self._publish([RequestChanged(request.model_copy(deep=True)), RunFinished(run.model_copy(deep=True))])

    def retry_request(self, request_id: str, sender_prefix: str = "retry of") -> Request:
        old = self.requests[request_id]
        return self._add(old.agent, old.subject, old.body, sender=f"{sender_prefix} {old.id}", plan_task=old.plan_task)

    def publish(self, notice: Any) -> None:
        self._publish([notice])

    def by_task(self, ref: str) -> list[Request]:
        return [r for r in self.requests.values() if r.plan_task == ref]


SHARED = {"kind": "command", "command": ["true"], "isolation": "shared"}
WORKTREE = {"kind": "command", "command": ["true"]}

TWO_PHASES = '''\
title = "Release"
goal = "Ship it"

[[phases]]
name = "Build"
goal = "Parts exist"

[[phases.tasks]]
id = "t1"
agent = "alice"
title = "Part one"
prompt = "Write part one"
files = ["a/**"]

[[phases.tasks]]
id = "t2"
agent = "bob"
title = "Part two"
prompt = "Write part two"
files = ["b/**"]

[[phases.tasks]]
id = "t3"
agent = "carol"
title = "Part three"
prompt = "Write part three"
files = ["c/**"]

[[phases]]
name = "Finish"
goal = "Docs"

[[phases.tasks]]
id = "t4"
agent = "alice"
title = "Docs"
prompt = "Document the parts"
files = ["docs/**"]
'''

DEPENDENT = '''\
title = "Login"
goal = "Users sign in"

[[phases]]
name = "Build"
goal = "It works"

[[phases.tasks]]
id = "api"
agent = "alice"
title = "API"
prompt = "Add the endpoint"
files = ["src/api/**"]
review = "{review}"

[[phases.tasks]]
id = "ui"
agent = "bob"
title = "UI"
prompt = "Add the form"
files = ["src/ui/**"]
depends_on = ["api"]
'''


class Harness:
    """A plan file, a host of its execution, and the progress lines it printed."""

    def __init__(self, repo: Path, agents: dict[str, dict], text: str, *, merge: Any = None) -> None:
        self.paths = Paths(repo)
        self.paths.ensure()
        self.settings = Settings(agents=agents)
        self.fake = FakeOrchestrator(list(agents))
        self.merge = merge
        self.path = self.paths.plans / "FPLAN-0001_test.toml"
        if not self.path.exists():
            self.path.write_text(text)
        self.events: list[str] = []
        self.host = self.new_host()

    def new_host(self) -> PlanHost:
        host = PlanHost(self.fake, self.paths, self.settings, merge=self.merge, resync_seconds=0.0)
        host.add_listener(lambda event: self.events.append(event.text))
        return host

    def start(self) -> PlanExecution:
        return self.host.start_plan("FPLAN-0001")

    def pump(self) -> None:
        self.host.pump(0)

    def restart(self) -> PlanExecution:
        """Drop the host, as a dead process would, and start a new one on the same orchestrator."""
        self.fake.subscribers.clear()
        self.host = self.new_host()
        return self.start()

    def request_of(self, task_id: str) -> Request:
        requests = self.fake.by_task(f"FPLAN-0001:{task_id}")
        assert requests, f"task {task_id} was never dispatched"
        return requests[-1]

    def state(self) -> dict[str, Any]:
        return json.loads((self.paths.plan_state / "FPLAN-0001.json").read_text())

    def statuses(self) -> dict[str, str]:
        return {task_id: task["status"] for task_id, task in self.state()["tasks"].items()}

    def pull(self, task_id: str, pull_id: str = "1", status: str = "open", **fields: Any) -> dict[str, Any]:
        request = self.request_of(task_id)
        record = {"schema_version": 1, "id": pull_id, "agent": request.agent, "request": request.id, "requests": [request.id],
                  "status": status, "head": f"head-{pull_id}", "checks": [], "violations": [], **fields}
        write_json(self.paths.pulls / f"{pull_id}.json", record)
        return record


def three_agents(config: dict) -> dict[str, dict]:
    return {"alice": config, "bob": config, "carol": config}


# Phases, parallel tasks and dependencies


def test_two_phases_with_three_parallel_tasks(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()

    assert [r.plan_task for r in h.fake.requests.values()] == ["FPLAN-0001:t1", "FPLAN-0001:t2", "FPLAN-0001:t3"]
    first = h.request_of("t1")
    assert first.sender == "FPLAN-0001"
    assert first.subject == "FPLAN-0001:t1 Part one"
    assert first.body.startswith("Write part one\n")
    assert "Change only files matching: a/**." in first.body
    assert "Phase 1 of 2 (Build): Parts exist" in first.body
    assert h.statuses() == {"t1": "dispatched", "t2": "dispatched", "t3": "dispatched", "t4": "pending"}

    assert len(h.fake.start_ready()) == 3
    h.pump()
    assert h.statuses() == {"t1": "running", "t2": "running", "t3": "running", "t4": "pending"}

    h.fake.finish(h.request_of("t1").id)
    h.fake.finish(h.request_of("t2").id)
    h.pump()
    assert h.statuses()["t4"] == "pending"
    assert h.state()["phase"] == 0

    h.fake.finish(h.request_of("t3").id)
    h.pump()
    assert h.statuses()["t4"] == "dispatched"
    assert h.state()["phase"] == 1

    h.fake.start_ready()
    h.fake.finish(h.request_of("t4").id)
    h.pump()
    assert execution.status == PlanStatus.COMPLETED
    assert h.state()["status"] == "completed"
    assert len(h.fake.requests) == 4
    assert h.events[0] == "started: Release (4 tasks in 2 phases)"
    assert "phase 2/2 'Finish' started" in h.events
    assert h.events[-1] == "completed (4 of 4 tasks done)"


def test_queue_runs_one_per_agent(repo: Path) -> None:
    text = TWO_PHASES.replace('agent = "bob"', 'agent = "alice"').replace('agent = "carol"', 'agent = "alice"')
    h = Harness(repo, three_agents(SHARED), text)
    h.start()
    assert len(h.fake.requests) == 3
    assert h.fake.start_ready() == [h.request_of("t1").id]
    h.fake.finish(h.request_of("t1").id)
    assert h.fake.start_ready() == [h.request_of("t2").id]


def test_dependency_waits_for_the_merge(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    h.start()
    assert list(h.statuses().values()) == ["dispatched", "pending"]

    h.fake.start_ready()
    h.fake.finish(h.request_of("api").id)
    h.pump()
    assert h.statuses() == {"api": "succeeded", "ui": "pending"}
    assert h.events[-1] == "task api succeeded; its pull request is being recorded"

    h.fake.publish(PullChanged(h.pull("api", "7")))
    h.pump()
    assert h.statuses() == {"api": "succeeded", "ui": "pending"}
    assert h.state()["tasks"]["api"]["pull"] == "7"
    assert h.events[-1] == "task api waits for review: merge pull request 7 (aipass-tui pr merge 7)"

    # `aipass-tui pr merge` changes the pull request file without a notice to the plan.
    h.pull("api", "7", status="merged")
    h.pump()
    assert h.statuses() == {"api": "merged", "ui": "dispatched"}
    assert len(h.fake.by_task("FPLAN-0001:ui")) == 1


def test_pull_recorded_before_the_request_finished(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    h.start()
    h.fake.start_ready()
    h.fake.publish(PullChanged(h.pull("api", "3")))
    h.pump()
    assert h.statuses()["api"] == "running"
    h.fake.finish(h.request_of("api").id)
    h.pump()
    assert h.state()["tasks"]["api"]["needs_merge"] is True
    assert h.events[-1] == "task api waits for review: merge pull request 3 (aipass-tui pr merge 3)"


# Failures, retries, skips and aborts


def test_failing_task_pauses_and_is_retried(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    h.fake.start_ready()
    failed_id = h.request_of("t2").id
    h.fake.finish(failed_id, ok=False, message="exit code 3: tests failed")
    h.pump()
    assert execution.status == PlanStatus.PAUSED
    run_id = h.fake.requests[failed_id].run
    assert h.state()["reason"] == f"task t2 failed: run {run_id} failed: exit code 3: tests failed"
    assert h.statuses()["t2"] == "failed"
    assert any(line.startswith("paused: retry with 'aipass-tui plan retry FPLAN-0001 t2'") for line in h.events)

    # The other tasks of the phase finish while the plan is paused; nothing new is dispatched.
    h.fake.finish(h.request_of("t1").id)
    h.fake.finish(h.request_of("t3").id)
    h.pump()
    assert h.statuses() == {"t1": "succeeded", "t2": "failed", "t3": "succeeded", "t4": "pending"}

    execution.retry("t2")
    assert execution.status == PlanStatus.RUNNING
    retried = h.fake.by_task("FPLAN-0001:t2")
    assert len(retried) == 2
    task = h.state()["tasks"]["t2"]
    assert (task["status"], task["attempts"], task["requests"]) == ("dispatched", 2, [r.id for r in retried])
    assert task["reason"] is None

    h.fake.start_ready()
    h.fake.finish(retried[-1].id)
    h.pump()
    assert h.statuses()["t4"] == "dispatched"


def test_edit_task_and_retry(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("t1").id, ok=False)
    h.pump()
    execution.retry("t1", {"prompt": "Write part one, in smaller steps", "files": ["a/**", "shared/a.py"]})
    assert 'prompt = "Write part one, in smaller steps"' in h.path.read_text()
    latest = h.request_of("t1")
    assert latest.body.startswith("Write part one, in smaller steps\n")
    assert "Change only files matching: a/**, shared/a.py." in latest.body
    assert h.state()["tasks"]["t1"]["files"] == ["a/**", "shared/a.py"]


def test_edit_that_breaks_the_plan_is_refused(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("t1").id, ok=False)
    h.pump()
    before = h.path.read_text()
    with pytest.raises(PlanInvalid):
        execution.retry("t1", {"files": ["b/**"]})
    assert h.path.read_text() == before
    assert h.statuses()["t1"] == "failed"
    assert len(h.fake.by_task("FPLAN-0001:t1")) == 1


def test_retry_only_for_failed_tasks(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    with pytest.raises(PlanError) as caught:
        execution.retry("t1")
    assert str(caught.value) == "task t1 is dispatched: only a failed task, or one waiting for its merge, can be retried"
    with pytest.raises(PlanError) as unknown:
        execution.retry("t9")
    assert str(unknown.value) == "plan FPLAN-0001 has no task 't9': use one of t1, t2, t3, t4"


def test_skip_lets_dependents_go_on(repo: Path) -> None:
    h = Harness(repo, {"alice": SHARED, "bob": SHARED}, DEPENDENT.format(review="manual"))
    execution = h.start()
    with pytest.raises(PlanError) as running:
        execution.skip("api")
    assert "stop its run (aipass-tui stop alice) or let it finish, then skip it" in str(running.value)
    h.fake.start_ready()
    h.fake.finish(h.request_of("api").id, ok=False)
    h.pump()
    assert execution.status == PlanStatus.PAUSED
    execution.skip("api")
    assert execution.status == PlanStatus.RUNNING
    assert h.statuses() == {"api": "skipped", "ui": "dispatched"}
    h.fake.start_ready()
    h.fake.finish(h.request_of("ui").id)
    h.pump()
    assert execution.status == PlanStatus.COMPLETED


def test_abort_stops_dispatching(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    h.fake.start_ready()
    execution.abort()
    assert h.events[-1] == "aborted; tasks still queued or running: t1, t2, t3"
    for task_id in ("t1", "t2", "t3"):
        h.fake.finish(h.request_of(task_id).id)
    h.pump()
    assert h.state()["status"] == "aborted"
    assert h.statuses() == {"t1": "succeeded", "t2": "succeeded", "t3": "succeeded", "t4": "pending"}
    assert len(h.fake.requests) == 3
    with pytest.raises(PlanError):
        execution.abort()
    with pytest.raises(PlanError) as caught:
        execution.skip("t4")
    assert str(caught.value) == "plan FPLAN-0001 is aborted: tasks can no longer be skipped"


def test_dispatch_refused_pauses_the_plan(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    h.fake.agents.discard("bob")
    execution = h.start()
    assert execution.status == PlanStatus.PAUSED
    assert h.state()["tasks"]["t2"]["reason"] == "could not dispatch it to bob: unknown agent 'bob'"
    assert [r.plan_task for r in h.fake.requests.values()] == ["FPLAN-0001:t1"]


def test_retry_from_the_queue_continues_the_task(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    h.fake.start_ready()
    first = h.request_of("t1").id
    h.fake.finish(first, ok=False)
    h.pump()
    assert execution.status == PlanStatus.PAUSED
    again = h.fake.retry_request(first)
    h.pump()
    assert execution.status == PlanStatus.RUNNING
    assert h.state()["tasks"]["t1"]["request"] == again.id
    assert h.state()["tasks"]["t1"]["requests"] == [first, again.id]


def test_stall_retry_keeps_the_plan_running(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    execution = h.start()
    h.fake.start_ready()
    first = h.request_of("t1").id
    # The orchestrator queues the stall retry in the same tick that fails the stalled request.
    h.fake.retry_request(first, sender_prefix="stall retry of")
    h.fake.finish(first, ok=False, message="stalled: no output for 5m")
    h.pump()
    assert execution.status == PlanStatus.RUNNING
    assert h.state()["tasks"]["t1"]["status"] == "dispatched"
    assert len(h.state()["tasks"]["t1"]["requests"]) == 2


# Restarts


def test_restart_in_the_middle_of_a_phase(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("t1").id)
    h.pump()

    # t2 finishes while no plan process listens.
    h.fake.subscribers.clear()
    h.fake.finish(h.request_of("t2").id)
    execution = h.restart()

    assert len(h.fake.requests) == 3
    assert h.statuses() == {"t1": "succeeded", "t2": "succeeded", "t3": "running", "t4": "pending"}
    h.fake.finish(h.request_of("t3").id)
    h.pump()
    assert h.statuses()["t4"] == "dispatched"
    assert len(h.fake.requests) == 4
    assert execution.status == PlanStatus.RUNNING


def test_killed_between_dispatch_and_save(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    h.fake.kill_after_dispatch = True
    with pytest.raises(ProcessKilled):
        h.start()
    assert h.statuses() == {"t1": "pending", "t2": "pending", "t3": "pending", "t4": "pending"}
    assert len(h.fake.requests) == 1

    h.fake.kill_after_dispatch = False
    h.restart()
    assert [len(h.fake.by_task(f"FPLAN-0001:{t}")) for t in ("t1", "t2", "t3")] == [1, 1, 1]
    assert h.state()["tasks"]["t1"]["request"] == "r-1"
    assert "task t1 found its request from before a restart" in h.events


def test_lost_request_fails_the_task(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    h.start()
    lost = h.request_of("t3").id
    del h.fake.requests[lost]
    h.pump()
    assert h.state()["tasks"]["t3"]["reason"] == f"request {lost} is no longer in the orchestrator's queue: retry the task"


def test_host_resumes_running_and_paused_plans(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    for number in (2, 3):
        (h.paths.plans / f"FPLAN-000{number}_more.toml").write_text(TWO_PHASES)
    first = h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("t1").id, ok=False)
    h.pump()
    assert first.status == PlanStatus.PAUSED
    h.host.start_plan("FPLAN-0002")
    h.host.start_plan("FPLAN-0003").abort()

    dispatched = len(h.fake.requests)

    h.fake.subscribers.clear()
    host = h.new_host()
    assert host.resume() == ["FPLAN-0001", "FPLAN-0002"]
    assert [e.plan_id for e in host.executions()] == ["FPLAN-0001", "FPLAN-0002"]
    assert len(h.fake.requests) == dispatched


def test_saved_state_of_another_file_is_refused(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    save_state(h.paths, PlanState(plan="FPLAN-0001", path=str(repo / "elsewhere.toml")))
    with pytest.raises(PlanError) as caught:
        h.start()
    assert "already has progress for another file" in str(caught.value)


def test_invalid_plan_does_not_start(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES.replace('agent = "carol"', 'agent = "dave"'))
    with pytest.raises(PlanInvalid):
        h.start()
    assert h.fake.requests == {}
    assert not (h.paths.plan_state / "FPLAN-0001.json").exists()


# Pull requests and automatic review


class MergeStandIn:
    """Stands in for the git flow's pr.merge command: records calls and returns a set result."""

    def __init__(self, harness_paths: Paths, result: str = "merged") -> None:
        self.paths = harness_paths
        self.result = result
        self.calls: list[str] = []

    def __call__(self, pull_id: str) -> dict[str, Any]:
        self.calls.append(pull_id)
        record = json.loads((self.paths.pulls / f"{pull_id}.json").read_text())
        if self.result == "merged":
            record["status"] = "merged"
            return {"merged": True, "pull": record, "message": "merged"}
        if self.result == "conflict":
            record.update(status="conflict", conflict_files=["src/api/x.py"])
            return {"merged": False, "reason": "conflict", "pull": record, "message": "conflicts"}
        if self.result == "refused":
            return {"merged": False, "reason": "refused", "pull": record, "message": "the merge would change files you have modified: README.md"}
        raise HandlerError("pull request 1 is closed: it cannot be merged", 1)


def auto_harness(repo: Path, result: str = "merged") -> tuple[Harness, MergeStandIn]:
    merge = MergeStandIn(Paths(repo), result)
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="auto"), merge=merge)
    h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("api").id)
    return h, merge


def test_auto_review_merges_when_checks_pass(repo: Path) -> None:
    h, merge = auto_harness(repo)
    h.fake.publish(PullChanged(h.pull("api", "1", checks=[{"command": "pytest -q", "status": "passed"}])))
    h.pump()
    h.pump()
    assert merge.calls == ["1"]
    assert h.statuses() == {"api": "merged", "ui": "dispatched"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"checks": [{"command": "ruff check .", "status": "passed"}, {"command": "pytest -q", "status": "failed"}]},
         "checks failed on pull request 1: pytest -q"),
        ({"violations": ["setup.py"]},
         "pull request 1 changes files outside the task's globs (setup.py): review it and merge with "
         "aipass-tui pr merge 1 --allow-violations, or retry the task"),
    ],
)
def test_auto_review_does_not_merge(repo: Path, fields: dict, reason: str) -> None:
    h, merge = auto_harness(repo)
    h.fake.publish(PullChanged(h.pull("api", "1", **fields)))
    h.pump()
    assert merge.calls == []
    assert h.state()["tasks"]["api"]["reason"] == reason
    assert h.state()["status"] == "paused"


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ("conflict", "pull request 1 conflicts with its target branch (src/api/x.py): ask the agent to rebase "
                     "(aipass-tui pr rebase-request 1) or resolve it, then retry or skip the task"),
        ("refused", "automatic merge of pull request 1 did not happen: the merge would change files you have modified: README.md"),
        ("error", "automatic merge of pull request 1 failed: pull request 1 is closed: it cannot be merged"),
    ],
)
def test_auto_merge_failures_pause(repo: Path, result: str, reason: str) -> None:
    h, merge = auto_harness(repo, result)
    h.fake.publish(PullChanged(h.pull("api", "1")))
    h.pump()
    h.pump()
    assert merge.calls == ["1"]
    assert h.state()["tasks"]["api"]["reason"] == reason
    assert h.state()["status"] == "paused"


def test_closed_pull_fails_the_task(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("api").id)
    h.fake.publish(PullChanged(h.pull("api", "2", status="closed")))
    h.pump()
    assert h.state()["tasks"]["api"]["reason"] == "pull request 2 was closed without merging"


def test_merged_by_hand_after_failure_resumes(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    execution = h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("api").id)
    h.fake.publish(PullChanged(h.pull("api", "2", status="conflict", conflict_files=["src/api/a.py"])))
    h.pump()
    assert execution.status == PlanStatus.PAUSED
    h.fake.publish(PullChanged(h.pull("api", "2", status="merged")))
    h.pump()
    assert execution.status == PlanStatus.RUNNING
    assert h.statuses() == {"api": "merged", "ui": "dispatched"}


def test_merge_by_hand_without_notice_is_seen(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    execution = h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("api").id)
    h.fake.publish(PullChanged(h.pull("api", "4", status="closed")))
    h.pump()
    assert execution.status == PlanStatus.PAUSED
    h.pull("api", "4", status="merged")
    h.pump()
    assert execution.status == PlanStatus.RUNNING
    assert h.statuses() == {"api": "merged", "ui": "dispatched"}


def test_pull_not_recorded_fails_the_task(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    h.start()
    h.fake.start_ready()
    request = h.request_of("api")
    h.fake.finish(request.id)
    h.fake.publish(UserNotice("error", "alice: pull request not recorded", "WorkspaceError: the worktree is missing", "alice", request.run))
    h.pump()
    assert h.state()["tasks"]["api"]["reason"] == (
        "its changes could not be recorded as a pull request: WorkspaceError: the worktree is missing"
    )


def test_run_without_changes_needs_no_merge(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    h.start()
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "branch", "aipass/alice/nothing", base)
    h.fake.start_ready()
    request = h.request_of("api")
    run = h.fake.runs[request.run]
    run.branch, run.base_commit = "aipass/alice/nothing", base
    h.fake.finish(request.id)
    h.pump()
    assert h.statuses() == {"api": "succeeded", "ui": "dispatched"}
    assert "task api succeeded without changes, so there is nothing to merge" in h.events


def test_run_with_commits_waits_for_its_pull(repo: Path) -> None:
    h = Harness(repo, {"alice": WORKTREE, "bob": WORKTREE}, DEPENDENT.format(review="manual"))
    h.start()
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "-c", "aipass/alice/work")
    (repo / "new.txt").write_text("x\n")
    git(repo, "add", "new.txt")
    git(repo, "commit", "-q", "-m", "work")
    git(repo, "switch", "-q", "main")
    h.fake.start_ready()
    request = h.request_of("api")
    run = h.fake.runs[request.run]
    run.branch, run.base_commit = "aipass/alice/work", base
    h.fake.finish(request.id)
    h.pump()
    assert h.statuses() == {"api": "succeeded", "ui": "pending"}
    assert h.state()["tasks"]["api"]["needs_merge"] is True


# Commands handed to the orchestrator's process


class LockingOrchestrator(FakeOrchestrator):
    """Takes a lock in dispatch and snapshot, as the real orchestrator does.

    Every dispatch after the first waits for ``gate`` before it takes the lock, so a test can
    hold the lock at that moment.
    """

    def __init__(self, agents: list[str]) -> None:
        super().__init__(agents)
        self.mutex = threading.RLock()
        self.gate = threading.Event()

    def dispatch(self, *args: Any, **kwargs: Any) -> Request:
        if self.requests:
            self.gate.wait(timeout=10)
        with self.mutex:
            return super().dispatch(*args, **kwargs)

    def snapshot(self) -> Any:
        with self.mutex:
            return super().snapshot()


def test_handler_under_orchestrator_lock_does_not_deadlock(repo: Path) -> None:
    names = [f"agent{n}" for n in range(4)]
    text = 'title = "Many"\ngoal = "g"\n[[phases]]\nname = "All"\ngoal = "g"\n' + "".join(
        f'[[phases.tasks]]\nid = "t{n}"\nagent = "{name}"\ntitle = "t"\nprompt = "p"\nfiles = ["f{n}/**"]\n'
        for n, name in enumerate(names)
    )
    h = Harness(repo, {name: SHARED for name in names}, text)
    fake = LockingOrchestrator(names)
    h.fake = fake
    h.host = h.new_host()
    fake.extensions["plans"] = h.host
    ctx = HandlerContext(h.paths, h.settings, fake)  # type: ignore[arg-type]

    starter = threading.Thread(target=h.start, daemon=True)
    starter.start()
    wait_until(lambda: h.host.execution("FPLAN-0001") is not None and fake.requests, timeout=10, message="the first dispatch")

    # A command handler runs on the orchestrator's thread while it holds its lock, and the plan
    # is in the middle of dispatching its second task.
    results: list[Any] = []

    def command() -> None:
        with fake.mutex:
            fake.gate.set()
            time.sleep(0.05)
            results.append(run_handler(ctx, "plan.abort", {"plan": "FPLAN-0001"}))

    handler_thread = threading.Thread(target=command, daemon=True)
    handler_thread.start()
    handler_thread.join(timeout=10)
    starter.join(timeout=10)
    assert not handler_thread.is_alive(), "the command handler deadlocked with the plan"
    assert not starter.is_alive(), "the plan deadlocked with the command handler"
    assert results[0]["status"] == "aborted"
    assert len(fake.requests) == 2


def test_plan_commands_through_handlers(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    ctx = HandlerContext(h.paths, h.settings, h.fake)  # type: ignore[arg-type]
    result = run_handler(ctx, "plan.run", {"plan": "FPLAN-0001"})
    host = h.fake.extensions["plans"]
    try:
        assert (result["plan"], result["status"], result["total"]) == ("FPLAN-0001", "running", 4)
        h.fake.start_ready()
        h.fake.finish(h.request_of("t1").id, ok=False)
        wait_until(lambda: h.state()["status"] == "paused", timeout=10, message="the plan to pause")

        skipped = run_handler(ctx, "plan.skip", {"plan": "FPLAN-0001", "task": "t1"})
        assert skipped["tasks"]["t1"]["status"] == "skipped"
        assert skipped["status"] == "running"

        with pytest.raises(HandlerError) as caught:
            run_handler(ctx, "plan.retry", {"plan": "FPLAN-0001", "task": "t2"})
        assert caught.value.exit_code == 2
        assert "only a failed task" in str(caught.value)

        aborted = run_handler(ctx, "plan.abort", {"plan": str(h.path)})
        assert aborted["status"] == "aborted"
        assert host.execution("FPLAN-0001").status == PlanStatus.ABORTED
    finally:
        host.stop()


def test_retry_handler_without_a_host(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    h.start()
    h.fake.start_ready()
    h.fake.finish(h.request_of("t3").id, ok=False)
    h.pump()
    h.fake.subscribers.clear()
    ctx = HandlerContext(h.paths, h.settings, h.fake)  # type: ignore[arg-type]
    result = run_handler(ctx, "plan.retry", {"plan": "FPLAN-0001", "task": "t3", "changes": {"prompt": "Try again"}})
    assert result["tasks"]["t3"]["status"] == "dispatched"
    assert h.request_of("t3").body.startswith("Try again\n")


def test_handler_reports_plan_problems(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES.replace('agent = "carol"', 'agent = "dave"'))
    ctx = HandlerContext(h.paths, h.settings, h.fake)  # type: ignore[arg-type]
    with pytest.raises(HandlerError) as caught:
        run_handler(ctx, "plan.abort", {"plan": "FPLAN-0001"})
    assert caught.value.exit_code == 2
    assert "unknown agent 'dave'" in str(caught.value)


def test_state_records_every_field(repo: Path) -> None:
    h = Harness(repo, three_agents(SHARED), TWO_PHASES)
    h.start()
    h.fake.start_ready()
    h.pump()
    state = h.state()
    assert state["schema_version"] == 1
    assert (state["plan"], state["status"], state["phase"]) == ("FPLAN-0001", "running", 0)
    assert state["path"] == str(h.path.resolve())
    task = state["tasks"]["t1"]
    assert set(task) >= {"status", "request", "run", "pull", "attempts", "reason"}
    assert (task["status"], task["request"], task["run"], task["attempts"]) == ("running", "r-1", "u-1", 1)


def test_core_does_not_import_textual() -> None:
    code = "import sys, aipass_tui.core.plans, aipass_tui.commands.plan; print(any(m.startswith('textual') for m in sys.modules))"
    result = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
