"""Orchestrator benchmarks: idle fleets, output throughput, dispatch latency, re-attach time.

Run one scenario at a time, for example:

    python benchmarks/bench_orchestrator.py idle --agents 1000 --start-rate 50
    python benchmarks/bench_orchestrator.py throughput --agents 100 --rate 50 --seconds 20
    python benchmarks/bench_orchestrator.py dispatch --repeats 30
    python benchmarks/bench_orchestrator.py reattach --agents 100

Each prints one JSON object with its measurements. Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from aipass_tui.config import load_settings
from aipass_tui.core.models import RequestStatus
from aipass_tui.core.orchestrator import Orchestrator

STREAMER = """
import sys, time
rate, seconds = float(sys.argv[1]), float(sys.argv[2])
line = "x" * 80
end = time.monotonic() + seconds
n = 0
start = time.monotonic()
while time.monotonic() < end:
    n += 1
    print(f'{{"type":"assistant","n":{n},"text":"{line}"}}', flush=True)
    delay = start + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""


def make_repo(agents: int, command: list[str], start_rate: float, max_parallel: int) -> Path:
    repo = Path(tempfile.mkdtemp(prefix="aipass-bench-"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    lines = ["[limits]", f"max_parallel = {max_parallel}", f"start_rate = {start_rate}", "cpu_hold_percent = 100", ""]
    for i in range(agents):
        lines += [f"[agents.a{i:04d}]", 'kind = "command"', f"command = {json.dumps(command)}", 'isolation = "shared"', 'stall_after = "1h"', ""]
    (repo / ".aipass").mkdir(mode=0o700)
    (repo / ".aipass" / "config.toml").write_text("\n".join(lines))
    return repo


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def running_count(orchestrator: Orchestrator) -> int:
    with orchestrator._mutex:  # noqa: SLF001 - a benchmark may look inside
        return len(orchestrator._live)  # noqa: SLF001


def idle(args: argparse.Namespace) -> dict:
    repo = make_repo(args.agents, ["sleep", "3600"], args.start_rate, args.agents)
    me = psutil.Process()
    orchestrator = Orchestrator(repo, load_settings(repo), role="bench")
    orchestrator.start_thread()
    time.sleep(1.0)
    rss_before = me.memory_info().rss
    threads_before = me.num_threads()
    start = time.monotonic()
    for i in range(args.agents):
        orchestrator.dispatch(f"a{i:04d}", "idle")
    ok = wait_for(lambda: running_count(orchestrator) == args.agents, timeout=args.agents / args.start_rate * 3 + 30)
    start_seconds = time.monotonic() - start
    time.sleep(2.0)
    cpu0, wall0 = cpu_seconds(me), time.monotonic()
    time.sleep(args.idle_seconds)
    idle_cpu = (cpu_seconds(me) - cpu0) / (time.monotonic() - wall0) * 100
    rss_after = me.memory_info().rss
    result = {
        "scenario": "idle",
        "agents": args.agents,
        "all_started": ok,
        "start_rate": args.start_rate,
        "seconds_to_start_all": round(start_seconds, 2),
        "ideal_seconds_at_start_rate": round(args.agents / args.start_rate, 2),
        "rss_mb_before": round(rss_before / 1e6, 1),
        "rss_mb_after": round(rss_after / 1e6, 1),
        "rss_kb_per_agent": round((rss_after - rss_before) / args.agents / 1e3, 1),
        "threads_before": threads_before,
        "threads_with_all_live": me.num_threads(),
        "open_fds": me.num_fds(),
        "idle_cpu_percent_of_one_core": round(idle_cpu, 1),
    }
    orchestrator.close(stop_runs=True)
    return result


def throughput(args: argparse.Namespace) -> dict:
    command = [sys.executable, "-c", STREAMER, str(args.rate), str(args.seconds)]
    repo = make_repo(args.agents, command, 1000.0, args.agents)
    me = psutil.Process()
    orchestrator = Orchestrator(repo, load_settings(repo), role="bench")
    lines = 0
    lock = threading.Lock()

    def count(notices: list) -> None:
        nonlocal lines
        n = sum(len(n.events) for n in notices if type(n).__name__ == "RunOutput")
        with lock:
            lines += n

    orchestrator.subscribe(count)
    orchestrator.start_thread()
    for i in range(args.agents):
        orchestrator.dispatch(f"a{i:04d}", "stream")
    wait_for(lambda: running_count(orchestrator) == args.agents, timeout=60)
    time.sleep(1.0)
    with lock:
        lines0 = lines
    cpu0, wall0 = cpu_seconds(me), time.monotonic()
    time.sleep(args.seconds - 3)
    wall = time.monotonic() - wall0
    cpu = (cpu_seconds(me) - cpu0) / wall * 100
    with lock:
        rate = (lines - lines0) / wall
    wait_for(lambda: running_count(orchestrator) == 0, timeout=args.seconds + 60)
    events_lines = sum(sum(1 for _ in open(p, "rb")) for p in (repo / ".aipass/runs").glob("*/events.jsonl"))
    orchestrator.close(stop_runs=True)
    return {
        "scenario": "throughput",
        "agents": args.agents,
        "offered_lines_per_second": args.agents * args.rate,
        "ingested_lines_per_second": round(rate),
        "orchestrator_cpu_percent_of_one_core": round(cpu, 1),
        "lines_per_cpu_second": round(rate / (cpu / 100)) if cpu else None,
        "events_persisted": events_lines,
    }


def dispatch(args: argparse.Namespace) -> dict:
    from aipass_tui.core.orchestrator import new_request_message
    from aipass_tui.core.store import write_json

    repo = make_repo(1, ["true"], 100.0, 4)
    orchestrator = Orchestrator(repo, load_settings(repo), role="bench")
    orchestrator.start_thread()
    started = threading.Event()
    started_at = [0.0]

    def on(notices: list) -> None:
        if any(type(n).__name__ == "RunStarted" for n in notices):
            # The run often starts before the dispatch process has exited, so the time is
            # taken here rather than when a waiter wakes up.
            started_at[0] = time.monotonic()
            started.set()

    def start_one() -> float:
        wait_for(lambda: running_count(orchestrator) == 0, timeout=10)
        time.sleep(0.3)
        started.clear()
        return time.monotonic()

    orchestrator.subscribe(on)
    cli, cli_to_start, drop_to_start = [], [], []
    for i in range(args.repeats):
        t0 = start_one()
        result = subprocess.run([sys.executable, "-m", "aipass_tui", "dispatch", "a0000", f"job {i}", "--repo", str(repo)], capture_output=True)
        assert result.returncode == 0, result.stderr
        cli.append((time.monotonic() - t0) * 1000)
        assert started.wait(10), "no run started within 10 s of the dispatch command"
        cli_to_start.append((started_at[0] - t0) * 1000)
    for i in range(args.repeats):
        # The two calls the dispatch command makes, without its interpreter start and imports.
        message = new_request_message("a0000", f"drop {i}", "", priority=0, sender="user")
        t0 = start_one()
        write_json(orchestrator.paths.inbox / f"{message['id']}.json", message)
        assert started.wait(10), "no run started within 10 s of the inbox file"
        drop_to_start.append((started_at[0] - t0) * 1000)
    orchestrator.close(stop_runs=True)
    return {
        "scenario": "dispatch",
        "repeats": args.repeats,
        "cli_process_ms_median": round(statistics.median(cli), 1),
        "cli_start_to_run_started_ms_median": round(statistics.median(cli_to_start), 1),
        "cli_start_to_run_started_ms_max": round(max(cli_to_start), 1),
        "inbox_file_to_run_started_ms_median": round(statistics.median(drop_to_start), 1),
        "inbox_file_to_run_started_ms_max": round(max(drop_to_start), 1),
    }


def reattach(args: argparse.Namespace) -> dict:
    repo = make_repo(args.agents, ["sh", "-c", "while true; do echo tick; sleep 1; done"], 1000.0, args.agents)
    first = Orchestrator(repo, load_settings(repo), role="bench")
    first.start_thread()
    for i in range(args.agents):
        first.dispatch(f"a{i:04d}", "tick")
    wait_for(lambda: running_count(first) == args.agents, timeout=60)
    time.sleep(2)
    first.close()
    samples = []
    for _ in range(args.repeats):
        second = Orchestrator(repo, load_settings(repo), role="bench")
        t0 = time.monotonic()
        second.start()
        samples.append(time.monotonic() - t0)
        attached = running_count(second)
        second.close()
    final = Orchestrator(repo, load_settings(repo), role="bench")
    final.start()
    final.close(stop_runs=True)
    return {
        "scenario": "reattach",
        "agents": args.agents,
        "attached": attached,
        "start_seconds_median": round(statistics.median(samples), 3),
        "start_seconds_max": round(max(samples), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)
    p = sub.add_parser("idle")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--start-rate", type=float, default=50.0)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p = sub.add_parser("throughput")
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=20.0)
    p = sub.add_parser("dispatch")
    p.add_argument("--repeats", type=int, default=30)
    p = sub.add_parser("reattach")
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = {"idle": idle, "throughput": throughput, "dispatch": dispatch, "reattach": reattach}[args.scenario](args)
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
