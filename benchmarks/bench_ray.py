"""Measure cluster runs: many fake agents on a three-node Ray cluster on loopback addresses.

The orchestrator runs in this process, as in the cockpit, with ``runner = "ray"`` for every
agent. Each fake agent is a small Python program that waits for a start file, prints
``--lines`` lines at ``--rate`` lines per second and exits without changing files. Printed:

- start: dispatch of all requests until every run's process has started on a node, and the
  time to the first output line in the local run folder;
- throughput: lines per second that reach the local run folders while all agents print;
- orchestrator CPU: CPU seconds of this process (tick thread, Ray driver threads and the
  benchmark's own polling) per wall second and per 1,000 lines;
- memory: this process's RSS, and the RSS of the Ray worker processes that host the runs;
- idle: CPU of this process and of the run workers while every agent waits for the start file.

Usage: python benchmarks/bench_ray.py [--agents 200] [--lines 300] [--rate 10] [--start-rate 2]

Each run's Ray worker process costs about one CPU-second to start, so on a two-core machine a
start rate above about 2 per second only queues work and starves the nodes' heartbeats.
Needs the ``ray`` extra. Every process it starts is on 127.0.0.x and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
IDLE_SECONDS = 10.0
sys.path.insert(0, str(ROOT))

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from aipass_tui.config import load_settings  # noqa: E402
from aipass_tui.core.models import RequestStatus  # noqa: E402
from aipass_tui.core.orchestrator import Orchestrator  # noqa: E402
from tests.integration.ray_cluster import LoopbackCluster  # noqa: E402

AGENT = """
    import os, sys, time
    start_file, lines, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print("ready", flush=True)
    while not os.path.exists(start_file):
        time.sleep(0.2)
    pause = 1.0 / rate
    for i in range(lines):
        print(f"agent line {i} " + "x" * 60, flush=True)
        time.sleep(pause)
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.invalid", *args], cwd=cwd, check=True, capture_output=True)


def make_repo(root: Path, cluster: LoopbackCluster, agents: int, lines: int, rate: float, start_rate: float, start_file: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("bench\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    remote = root / "remote.git"
    git(root, "init", "-q", "--bare", str(remote))
    command = json.dumps([sys.executable, "-c", textwrap.dedent(AGENT), str(start_file), str(lines), str(rate)])
    tables = "".join(
        f'\n[agents.a{index:03d}]\nkind = "command"\ncommand = {command}\nrunner = "ray"\nresources = {{ cpus = 0.01 }}\nstall_after = "1h"\n'
        for index in range(agents)
    )
    (repo / ".aipass").mkdir()
    (repo / ".aipass" / "config.toml").write_text(
        f'[cluster]\naddress = "{cluster.address}"\nrepo_url = "{remote}"\n'
        f"[limits]\nmax_parallel = {agents + 10}\nstart_rate = {start_rate}\ncpu_hold_percent = 100\n" + tables
    )
    return repo


def local_output(repo: Path) -> dict[str, int]:
    """Return the size of each run's local stdout file, in bytes."""
    sizes = {}
    for folder in (repo / ".aipass" / "runs").iterdir():
        try:
            sizes[folder.name] = (folder / "stdout").stat().st_size
        except FileNotFoundError:
            sizes[folder.name] = 0
    return sizes


def started_remotely(repo: Path) -> int:
    count = 0
    for folder in (repo / ".aipass" / "runs").iterdir():
        try:
            if json.loads((folder / "remote.json").read_text()).get("pid"):
                count += 1
        except (FileNotFoundError, ValueError):
            continue
    return count


def worker_rss() -> tuple[int, int]:
    """Return the number of Ray worker processes hosting runs and their total RSS in bytes."""
    count, total = 0, 0
    for proc in psutil.process_iter(["name", "memory_info"]):
        if (proc.info["name"] or "").startswith("ray::ClusterRun"):
            count += 1
            total += proc.info["memory_info"].rss
    return count, total


def idle_cpu(me: psutil.Process, seconds: float) -> tuple[float, float]:
    """Return the CPU percent of this process and the summed percent of the run workers while agents wait."""
    workers = [proc for proc in psutil.process_iter(["name"]) if (proc.info["name"] or "").startswith("ray::ClusterRun")]

    def total(procs: list[psutil.Process]) -> float:
        used = 0.0
        for proc in procs:
            try:
                used += sum(proc.cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
        return used

    own, others = total([me]), total(workers)
    time.sleep(seconds)
    return 100 * (total([me]) - own) / seconds, 100 * (total(workers) - others) / seconds


def wait(predicate, timeout: float, condition: str) -> float:
    """Poll ``predicate`` until it is true and return the seconds it took; exit after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {condition}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200, help="fake agents, one run each (default 200)")
    parser.add_argument("--lines", type=int, default=300, help="lines each agent prints (default 300)")
    parser.add_argument("--rate", type=float, default=10.0, help="lines per second per agent (default 10)")
    parser.add_argument("--start-rate", type=float, default=2.0, help="limits.start_rate, run starts per second (default 2)")
    parser.add_argument("--timeout", type=float, default=900.0, help="limit of each phase in seconds (default 900)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    start_file = root / "start"
    results: dict[str, object] = {
        "agents": args.agents, "lines_per_agent": args.lines, "rate_per_agent": args.rate, "start_rate": args.start_rate,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
    }
    began = time.monotonic()
    cluster = LoopbackCluster(fast_failure_detection=False).start({"node_a": 2, "node_b": 2}, head_cpus=2)
    results["cluster_start_s"] = round(time.monotonic() - began, 1)
    orchestrator = None
    try:
        import ray

        results["ray"] = ray.__version__
        repo = make_repo(root, cluster, args.agents, args.lines, args.rate, args.start_rate, start_file)
        orchestrator = Orchestrator(repo, load_settings(repo), role="bench")
        orchestrator.start_thread()
        me = psutil.Process()

        dispatched = time.monotonic()
        requests = [orchestrator.dispatch(f"a{index:03d}", f"Benchmark run {index}") for index in range(args.agents)]
        results["all_started_s"] = round(wait(lambda: started_remotely(repo) == args.agents, args.timeout, "every run to start on a node"), 1)
        wait(lambda: sum(1 for size in local_output(repo).values() if size > 0) == args.agents, args.timeout, "first output of every run")
        results["all_first_output_s"] = round(time.monotonic() - dispatched, 1)
        results["nodes"] = {node["NodeManagerAddress"]: 0 for node in ray.nodes() if node["Alive"]}
        for folder in (repo / ".aipass" / "runs").iterdir():
            ip = json.loads((folder / "remote.json").read_text()).get("node_ip")
            results["nodes"][ip] = results["nodes"].get(ip, 0) + 1  # type: ignore[index]
        workers, rss = worker_rss()
        results["run_workers"] = workers
        results["run_worker_rss_mb_each"] = round(rss / max(workers, 1) / 2**20, 1)
        idle_orchestrator, idle_workers = idle_cpu(me, IDLE_SECONDS)
        results["idle_orchestrator_cpu_percent"] = round(idle_orchestrator, 1)
        results["idle_run_worker_cpu_percent_each"] = round(idle_workers / max(workers, 1), 2)

        per_agent = len("ready\n") + sum(len(f"agent line {i} " + "x" * 60 + "\n") for i in range(args.lines))
        expected = args.agents * per_agent
        cpu_before = sum(me.cpu_times()[:2])
        streamed = time.monotonic()
        start_file.write_text("go")
        wait(lambda: sum(local_output(repo).values()) >= expected, args.timeout, "all lines in the local run folders")
        elapsed = time.monotonic() - streamed
        cpu = sum(me.cpu_times()[:2]) - cpu_before
        lines = args.agents * args.lines
        results["stream_s"] = round(elapsed, 1)
        results["offered_lines_per_s"] = round(args.agents * args.rate)
        results["lines_per_s"] = round(lines / elapsed)
        results["orchestrator_cpu_percent"] = round(100 * cpu / elapsed, 1)
        results["orchestrator_cpu_s_per_1000_lines"] = round(1000 * cpu / lines, 3)
        results["orchestrator_rss_mb"] = round(me.memory_info().rss / 2**20, 1)

        wait(lambda: all(r.status in (RequestStatus.DONE, RequestStatus.FAILED) for r in orchestrator.snapshot().requests), args.timeout, "every request to end")
        statuses = [r.status.value for r in orchestrator.snapshot().requests if r.id in {q.id for q in requests}]
        results["requests_done"] = statuses.count("done")
        results["total_s"] = round(time.monotonic() - dispatched, 1)
    finally:
        if orchestrator is not None:
            orchestrator.close(stop_runs=True)
        import ray

        if ray.is_initialized():
            ray.shutdown()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
