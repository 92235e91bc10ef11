"""Measure the cost of one metrics sample with about 500 processes in agent trees.

Starts AGENTS process trees of TREE processes each (a shell with sleeping children), registers
their roots as agents, and times PsutilReader calls: the median and 95th percentile of SAMPLES
samples, with and without the agents. The budget is 40 ms of sampling per second at 500
processes, so at one sample per second the median must stay below 40 ms.

Usage: python benchmarks/bench_metrics.py [--agents 50] [--tree 10] [--samples 30] [--psutil-objects]
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import time

import psutil

from aipass_tui.core.metrics import PsutilReader


def start_trees(agents: int, tree: int) -> list[subprocess.Popen[bytes]]:
    children = " ".join(["sleep 600 &"] * (tree - 1))
    script = f"{children} wait"
    return [subprocess.Popen(["sh", "-c", script], start_new_session=True) for _ in range(agents)]


def wait_for_trees(roots: list[subprocess.Popen[bytes]], tree: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [len(psutil.Process(root.pid).children(recursive=True)) + 1 for root in roots]
        if all(count >= tree for count in counts):
            return sum(counts)
        time.sleep(0.1)
    raise SystemExit(f"the process trees did not reach {tree} processes each within {timeout:.0f} s")


def time_samples(reader: PsutilReader, agents: dict[str, int], samples: int) -> list[float]:
    reader(agents)
    durations = []
    for _ in range(samples):
        started = time.perf_counter()
        reader(agents)
        durations.append((time.perf_counter() - started) * 1000)
        time.sleep(0.05)
    return durations


def describe(label: str, durations: list[float]) -> str:
    ordered = sorted(durations)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"{label}: median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, max {ordered[-1]:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=50, help="number of agent process trees")
    parser.add_argument("--tree", type=int, default=10, help="processes per tree, the root included")
    parser.add_argument("--samples", type=int, default=30, help="samples timed per measurement")
    parser.add_argument(
        "--psutil-objects", action="store_true", help="read processes through psutil.Process objects instead of /proc/<pid>/stat"
    )
    args = parser.parse_args()

    roots = start_trees(args.agents, args.tree)
    try:
        in_trees = wait_for_trees(roots, args.tree)
        agents = {f"agent-{i:03d}": root.pid for i, root in enumerate(roots)}
        reader = PsutilReader(use_proc_stat=not args.psutil_objects)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, psutil {psutil.__version__}")
        print(f"processes on the machine: {len(psutil.pids())}, in agent trees: {in_trees}")
        print("process source:", "psutil.Process objects" if args.psutil_objects else "/proc/<pid>/stat")
        print(describe("sample without agents", time_samples(reader, {}, args.samples)))
        with_agents = time_samples(reader, agents, args.samples)
        print(describe(f"sample with {len(agents)} agents", with_agents))
        print(f"cost at one sample per second: {statistics.median(with_agents):.1f} ms/s (budget 40 ms/s)")
    finally:
        for root in roots:
            try:
                os.killpg(root.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for root in roots:
            root.wait()


if __name__ == "__main__":
    sys.exit(main())
