"""Cluster runs on a real three-node Ray cluster on loopback addresses (see ray_cluster.py).

One cluster serves the whole module: a head and worker nodes ``node_a`` and ``node_b`` with two
logical CPUs each. Agents are placed on a node through its custom resource. The git remote is a
bare repository in the test's temp folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

ray = pytest.importorskip("ray")

from aipass_tui.config import load_settings  # noqa: E402
from aipass_tui.core.gitflow import merge_pull  # noqa: E402
from aipass_tui.core.models import RequestStatus, RunStatus  # noqa: E402
from aipass_tui.core.orchestrator import Orchestrator  # noqa: E402
from aipass_tui.core.pulls import PullStore  # noqa: E402
from aipass_tui.core.runners.ray import actor_name, cluster_nodes, namespace_for  # noqa: E402
from aipass_tui.core.runners.ray_node import NodeRun  # noqa: E402
from tests.conftest import git, wait_until, write_config  # noqa: E402
from tests.integration.ray_cluster import LoopbackCluster  # noqa: E402

RUN_TIMEOUT = 90.0  # a run on a loaded two-core machine: worker start, clone, agent, push


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    driver_env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    previous = {key: os.environ.get(key) for key in driver_env}
    os.environ.update(driver_env)
    started = LoopbackCluster().start({"node_a": 2, "node_b": 2})
    try:
        yield started
    finally:
        if ray.is_initialized():
            ray.shutdown()
        started.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def remote(tmp_path: Path, repo: Path) -> Path:
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(path))
    git(repo, "push", "-q", str(path), "main")
    return path


def agent_table(name: str, node: str, script: str, *args: str) -> str:
    command = json.dumps([sys.executable, "-c", textwrap.dedent(script), *args])
    return f"""
        [agents.{name}]
        kind = "command"
        command = {command}
        runner = "ray"
        resources = {{ cpus = 0.2, custom = {{ {node} = 1 }} }}
    """


def configure(repo: Path, cluster: LoopbackCluster, remote: Path, *agents: str) -> None:
    write_config(repo, f"""
        [cluster]
        address = "{cluster.address}"
        repo_url = "{remote}"
    """ + "".join(textwrap.dedent(agent) for agent in agents))


def start(repo: Path, orchestrators: list) -> Orchestrator:
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    return orchestrator


def request_of(orchestrator: Orchestrator, request_id: str):
    return next(r for r in orchestrator.snapshot().requests if r.id == request_id)


def ended(orchestrator: Orchestrator, request_id: str) -> bool:
    return request_of(orchestrator, request_id).status in (RequestStatus.DONE, RequestStatus.FAILED, RequestStatus.CANCELLED)


def remote_info(repo: Path, run_id: str) -> dict:
    path = repo / ".aipass" / "runs" / run_id / "remote.json"
    return json.loads(path.read_text()) if path.exists() else {}


def local_stdout(repo: Path, run_id: str) -> str:
    path = repo / ".aipass" / "runs" / run_id / "stdout"
    return path.read_text() if path.exists() else ""


def event_texts(repo: Path, run_id: str) -> list[str]:
    lines = (repo / ".aipass" / "runs" / run_id / "events.jsonl").read_text().splitlines()
    return [json.loads(line).get("text") for line in lines]


def processes_on_node(node: str, run_id: str) -> list[dict]:
    """List the run's processes by asking an actor placed on ``node`` to scan that node."""
    probe = ray.remote(NodeRun).options(num_cpus=0, resources={node: 0.01}).remote(run_id, {})
    try:
        return ray.get(probe.processes.remote(), timeout=60)
    finally:
        ray.kill(probe)


def named_actors(repo: Path) -> set[str]:
    namespace = namespace_for(repo)
    return {entry["name"] for entry in ray.util.list_named_actors(all_namespaces=True) if entry["namespace"] == namespace}


WRITER = """
    import pathlib, sys, time
    name = sys.argv[1]
    for i in range(30):
        print(f"{name} line {i}", flush=True)
        time.sleep(0.02)
    print(f"{name} warning", file=sys.stderr, flush=True)
    pathlib.Path(f"{name}.txt").write_text(f"written by {name}\\n")
"""


def test_runs_spread_stream_and_merge(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list) -> None:
    configure(repo, cluster, remote, agent_table("alpha", "node_a", WRITER, "alpha"), agent_table("beta", "node_b", WRITER, "beta"))
    orchestrator = start(repo, orchestrators)

    first = orchestrator.dispatch("alpha", "Write the alpha file")
    second = orchestrator.dispatch("beta", "Write the beta file")
    wait_until(lambda: ended(orchestrator, first.id) and ended(orchestrator, second.id), timeout=RUN_TIMEOUT, message="both cluster runs")

    runs = {name: request_of(orchestrator, r.id).run for name, r in (("alpha", first), ("beta", second))}
    for name, run_id in runs.items():
        assert request_of(orchestrator, first.id if name == "alpha" else second.id).status == RequestStatus.DONE
        run = orchestrator.snapshot().runs[run_id]
        assert run.status == RunStatus.SUCCEEDED
        assert run.runner == "ray"
        assert run.exit_code == 0
        assert local_stdout(repo, run_id) == "".join(f"{name} line {i}\n" for i in range(30))
        assert event_texts(repo, run_id) == [f"{name} line {i}" for i in range(30)] + [f"{name} warning"]
    alpha, beta = remote_info(repo, runs["alpha"]), remote_info(repo, runs["beta"])
    assert alpha["node_id"] != beta["node_id"]
    assert alpha["node_ip"] == cluster.nodes["node_a"].ip
    assert beta["node_ip"] == cluster.nodes["node_b"].ip
    assert alpha["push"]["ok"] is True

    store = PullStore(orchestrator.paths)
    wait_until(lambda: len(store.list()) == 2, timeout=30, message="two pull requests recorded")
    pulls = {pull.agent: pull for pull in store.list()}
    branch_heads = git(repo, "ls-remote", "--heads", str(remote))
    for name in ("alpha", "beta"):
        pull = pulls[name]
        assert [f.path for f in pull.files] == [f"{name}.txt"]
        assert f"{pull.head}\trefs/heads/{pull.branch}" in branch_heads
    result = merge_pull(repo, orchestrator.paths, orchestrator.settings, pulls["alpha"].id)
    assert result["merged"] is True
    assert git(repo, "show", "main:alpha.txt") == "written by alpha\n"

    wait_until(lambda: not named_actors(repo) & {actor_name(r) for r in runs.values()}, timeout=30, message="actors of ended runs removed")
    wait_until(lambda: not Path(alpha["node_dir"]).exists(), timeout=30, message="node folder removed")
    runner = orchestrator.runner_for("ray")
    ended_handle = runner.adopt_ended(runs["alpha"], repo / ".aipass" / "runs" / runs["alpha"])
    try:
        assert runner.repo_changed(ended_handle) is True
        assert runner.exit_code(ended_handle) == 0
    finally:
        runner.release(ended_handle)


HOLDER = """
    import subprocess, sys, time
    subprocess.Popen(["sleep", "300"], start_new_session=True)
    print("ready", flush=True)
    time.sleep(300)
"""


def test_stop_leaves_no_process_on_node(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list) -> None:
    configure(repo, cluster, remote, agent_table("holder", "node_a", HOLDER))
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("holder", "Hold the node")
    wait_until(lambda: request_of(orchestrator, request.id).run and "ready" in local_stdout(repo, request_of(orchestrator, request.id).run), timeout=RUN_TIMEOUT, message="agent ready on node_a")
    run_id = request_of(orchestrator, request.id).run
    assert len(processes_on_node("node_a", run_id)) >= 3  # wrapper, agent, escaped sleep
    node_id = remote_info(repo, run_id)["node_id"]
    nodes = {node["node_id"]: node for node in cluster_nodes()}
    assert nodes[node_id]["agents"] == 1
    assert nodes[node_id]["address"] == cluster.nodes["node_a"].ip
    assert nodes[node_id]["memory_total"] > 0

    assert orchestrator.stop("holder") == [run_id]
    wait_until(lambda: ended(orchestrator, request.id), timeout=RUN_TIMEOUT, message="stopped run finalized")

    assert orchestrator.snapshot().runs[run_id].status == RunStatus.STOPPED
    wait_until(lambda: processes_on_node("node_a", run_id) == [], timeout=30, message="no process of the run on node_a")


def test_stop_of_run_waiting_for_node(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list) -> None:
    whole_node = HOLDER.replace("print(\"ready\", flush=True)", "print(\"holding\", flush=True)")
    configure(repo, cluster, remote, agent_table("hog", "node_b", whole_node).replace("node_b = 1", "node_b = 100"), agent_table("waiter", "node_b", "print('never runs')").replace("node_b = 1", "node_b = 100"))
    orchestrator = start(repo, orchestrators)
    hog = orchestrator.dispatch("hog", "Take all of node_b")
    wait_until(lambda: request_of(orchestrator, hog.id).run and "holding" in local_stdout(repo, request_of(orchestrator, hog.id).run), timeout=RUN_TIMEOUT, message="node_b taken")
    waiter = orchestrator.dispatch("waiter", "Wait for node_b")
    wait_until(lambda: request_of(orchestrator, waiter.id).run, timeout=30, message="waiting run submitted")
    run_id = request_of(orchestrator, waiter.id).run

    orchestrator.stop("waiter")
    wait_until(lambda: ended(orchestrator, waiter.id), timeout=60, message="waiting run stopped")

    assert orchestrator.snapshot().runs[run_id].status == RunStatus.STOPPED
    assert "pid" not in remote_info(repo, run_id)
    assert remote_info(repo, run_id)["state"] == "stopped"
    assert local_stdout(repo, run_id) == ""
    assert "stopped while waiting for a cluster node" in (repo / ".aipass" / "runs" / run_id / "stderr").read_text()
    orchestrator.stop("hog")
    wait_until(lambda: ended(orchestrator, hog.id), timeout=RUN_TIMEOUT, message="hog stopped")


def test_cluster_warnings_go_to_log(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    configure(repo, cluster, remote, agent_table("alpha", "node_a", "print('hi')"))
    orchestrator = start(repo, orchestrators)
    orchestrator.runner_for("ray")
    capsys.readouterr()

    with caplog.at_level("WARNING", logger="aipass_tui.cluster"):
        ray._private.worker.print_to_stdstream({"lines": ["WARNING: 12 PYTHON worker processes have been started"], "pid": "raylet", "is_err": False}, ignore_prefix=False)

    assert capsys.readouterr().out == ""
    assert "raylet: WARNING: 12 PYTHON worker processes have been started" in caplog.text


def test_unplaceable_run_fails_its_request(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list) -> None:
    configure(repo, cluster, remote, agent_table("nowhere", "gpu_rack", "print('never')"))
    orchestrator = start(repo, orchestrators)

    request = orchestrator.dispatch("nowhere", "Run somewhere")
    wait_until(lambda: ended(orchestrator, request.id), timeout=30, message="request failed")

    failed = request_of(orchestrator, request.id)
    assert failed.status == RequestStatus.FAILED
    assert "needs CPU=0.2, gpu_rack=1, which no node of the cluster has" in failed.message


SLOW = """
    import os, sys, time
    release = sys.argv[1]
    for i in range(400):
        print(f"line {i}", flush=True)
        while i >= 5 and not os.path.exists(release):
            time.sleep(0.05)
        time.sleep(0.01)
    open("slow.txt", "w").write("done")
"""


def test_restarted_orchestrator_reattaches(cluster: LoopbackCluster, repo: Path, remote: Path, tmp_path: Path, orchestrators: list) -> None:
    release = tmp_path / "release"
    configure(repo, cluster, remote, agent_table("slow", "node_b", SLOW, str(release)))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    work_log = tmp_path / "work-output.log"
    with open(work_log, "wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "aipass_tui", "work", "--repo", str(repo)],
            env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        subprocess.run([sys.executable, "-m", "aipass_tui", "dispatch", "slow", "Count slowly", "--repo", str(repo)], check=True, capture_output=True, timeout=60)
        runs = repo / ".aipass" / "runs"
        try:
            wait_until(lambda: runs.exists() and any("line 5" in local_stdout(repo, d.name) for d in runs.iterdir()), timeout=RUN_TIMEOUT, message="first lines streamed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; output of aipass-tui work:\n{work_log.read_text()[-3000:]}") from None
        run_id = next(d.name for d in runs.iterdir())
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)

    orchestrator = start(repo, orchestrators)
    assert actor_name(run_id) in named_actors(repo)
    release.write_text("go")
    request_id = next(r.id for r in orchestrator.snapshot().requests)
    wait_until(lambda: ended(orchestrator, request_id), timeout=RUN_TIMEOUT, message="re-attached run finished")

    assert request_of(orchestrator, request_id).status == RequestStatus.DONE
    assert orchestrator.snapshot().runs[run_id].status == RunStatus.SUCCEEDED
    assert local_stdout(repo, run_id) == "".join(f"line {i}\n" for i in range(400))
    assert event_texts(repo, run_id) == [f"line {i}" for i in range(400)]
    store = PullStore(orchestrator.paths)
    wait_until(lambda: len(store.list()) == 1, timeout=30, message="pull request of the re-attached run")
    assert [f.path for f in store.list()[0].files] == ["slow.txt"]


TICKER = """
    import time
    print("ready", flush=True)
    for i in range(600):
        print(f"tick {i}", flush=True)
        time.sleep(0.1)
"""


def test_dead_node_makes_run_lost(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list) -> None:
    cluster.add_node("doomed", 1)
    configure(repo, cluster, remote, agent_table("ticker", "doomed", TICKER), agent_table("after", "node_a", "print('still working')"))
    orchestrator = start(repo, orchestrators)
    request = orchestrator.dispatch("ticker", "Tick on the doomed node")
    wait_until(lambda: request_of(orchestrator, request.id).run and "tick 3" in local_stdout(repo, request_of(orchestrator, request.id).run), timeout=RUN_TIMEOUT, message="ticks streamed")
    run_id = request_of(orchestrator, request.id).run

    cluster.kill_node("doomed")
    wait_until(lambda: ended(orchestrator, request.id), timeout=RUN_TIMEOUT, message="lost run finalized")

    run = orchestrator.snapshot().runs[run_id]
    failed = request_of(orchestrator, request.id)
    assert run.status == RunStatus.LOST
    assert run.exit_code is None
    assert run.message == "command process ended without an exit status"
    assert failed.status == RequestStatus.FAILED
    assert failed.message == run.message
    assert "the cluster node running this run was lost" in (repo / ".aipass" / "runs" / run_id / "stderr").read_text()
    assert remote_info(repo, run_id)["state"] == "lost"
    after = orchestrator.dispatch("after", "Keep going")
    wait_until(lambda: ended(orchestrator, after.id), timeout=RUN_TIMEOUT, message="next run on a live node")
    assert request_of(orchestrator, after.id).status == RequestStatus.DONE


PLAN = """
title = "Cluster plan"
goal = "Two agents on two nodes each write a file"

[[phases]]
name = "Write"
goal = "Both files exist on main"

[[phases.tasks]]
id = "alpha"
agent = "alpha"
title = "Write alpha.txt"
prompt = "Write alpha.txt"
files = ["alpha.txt"]
review = "auto"

[[phases.tasks]]
id = "beta"
agent = "beta"
title = "Write beta.txt"
prompt = "Write beta.txt"
files = ["beta.txt"]
review = "auto"
"""


def test_plan_with_cluster_agents_merges(cluster: LoopbackCluster, repo: Path, remote: Path, orchestrators: list) -> None:
    from aipass_tui.core.handlers import HandlerContext, run_handler

    configure(repo, cluster, remote, agent_table("alpha", "node_a", WRITER, "alpha"), agent_table("beta", "node_b", WRITER, "beta"))
    plans = repo / ".aipass" / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "FPLAN-0001_cluster-plan.toml").write_text(PLAN)
    orchestrator = start(repo, orchestrators)
    run_handler(HandlerContext(orchestrator.paths, orchestrator.settings, orchestrator), "plan.run", {"plan": "FPLAN-0001"})

    state_path = repo / ".aipass" / "state" / "plans" / "FPLAN-0001.json"
    wait_until(
        lambda: state_path.exists() and json.loads(state_path.read_text()).get("status") == "completed",
        timeout=2 * RUN_TIMEOUT, message="the plan to complete",
    )
    assert git(repo, "show", "main:alpha.txt") == "written by alpha\n"
    assert git(repo, "show", "main:beta.txt") == "written by beta\n"
    pulls = PullStore(orchestrator.paths).list()
    assert sorted(pull.status.value for pull in pulls) == ["merged", "merged"]
    runs = [run for run in orchestrator.snapshot().runs.values() if run.status == RunStatus.SUCCEEDED]
    assert len({remote_info(repo, run.id)["node_id"] for run in runs}) == 2, "the tasks ran on two nodes"
