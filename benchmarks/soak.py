"""Soak test of crash safety: the fault scenarios of tests/integration/test_faults.py, longer.

    python benchmarks/soak.py                       # every scenario with the defaults below
    python benchmarks/soak.py kills --requests 3000 --kill-rounds 3
    python benchmarks/soak.py agents --agents 100 --cockpit-kills 3
    python benchmarks/soak.py inbox --bursts 5

Scenarios:
- kills: ``aipass-tui work`` works through ``--requests`` requests and is killed with SIGKILL
  at random moments, then restarted. Each of the ``--kill-rounds`` rounds uses a fresh
  repository. Checks that every request ran exactly once and every JSON file parses.
- agents: a headless cockpit with ``--agents`` live agents is killed ``--cockpit-kills`` times
  and restarted. Checks that every restart re-attached every run and that each run's events
  are consecutive, with no gap and no repeat.
- inbox: ``--bursts`` times, 200 request files are dropped while no orchestrator runs and 200
  while one runs. Checks that each is taken once and reports the latency from the drop to the
  orchestrator accepting the request (its RequestChanged notice).

Prints one JSON object with the measurements, the machine and the date. A failed check is
reported in the JSON (``"ok": false`` with the message) and makes the exit code 1.
Results are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_faults import (  # noqa: E402 - the repository root is put on sys.path first
    check_each_request_ran_once,
    check_output_continuous,
    inbox_burst,
    kill_loop,
    live_agents_crash,
)

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Soak",
    "GIT_AUTHOR_EMAIL": "soak@example.com",
    "GIT_COMMITTER_NAME": "Soak",
    "GIT_COMMITTER_EMAIL": "soak@example.com",
}


def make_repo(parent: Path) -> Path:
    """Create a git repository with one commit on branch main inside ``parent``."""
    repo = parent / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("# soak\n")
    subprocess.run(["git", "-C", str(repo), "add", "README.md"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "Initial commit"], check=True)
    return repo


def in_temp_repo(scenario: Callable[[Path, Path], dict[str, Any]], keep: bool) -> dict[str, Any]:
    """Run ``scenario(repo, folder)`` in a fresh temp folder; report a failed check instead of raising."""
    folder = Path(tempfile.mkdtemp(prefix="aipass-soak-"))
    try:
        result = scenario(make_repo(folder), folder)
        result["ok"] = True
    except AssertionError as exc:
        result = {"ok": False, "error": str(exc), "traceback": traceback.format_exc(limit=3), "folder": str(folder)}
        keep = True
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def soak_kills(args: argparse.Namespace) -> dict[str, Any]:
    rounds = []
    for number in range(args.kill_rounds):

        def scenario(repo: Path, _folder: Path, number: int = number) -> dict[str, Any]:
            result = kill_loop(
                repo, requests=args.requests, agents=args.kill_agents, max_parallel=args.max_parallel,
                seed=args.seed + number, kill_after=(0.2, 1.5), time_limit=args.time_limit,
            )
            check_each_request_ran_once(repo, result["ids"], result["record"])
            return {"requests": len(result["ids"]), "kills": result["kills"], "seconds": round(result["seconds"], 1)}

        rounds.append(in_temp_repo(scenario, args.keep))
    done = [r for r in rounds if r["ok"]]
    return {
        "rounds": rounds,
        "requests_total": sum(r["requests"] for r in done),
        "kills_total": sum(r["kills"] for r in done),
        "ok": len(done) == len(rounds),
    }


def soak_agents(args: argparse.Namespace) -> dict[str, Any]:
    def scenario(repo: Path, folder: Path) -> dict[str, Any]:
        began = time.monotonic()
        result = live_agents_crash(repo, folder, agents=args.agents, kills=args.cockpit_kills)
        runs = sorted(result["runs"])
        for restart in result["restarts"]:
            assert sorted(restart["live"]) == runs, f"a restart re-attached {len(restart['live'])} of {len(runs)} runs"
        events = [check_output_continuous(repo, run_id) for run_id in runs]
        return {
            "agents": len(runs),
            "cockpit_kills": len(result["restarts"]),
            "reattached_per_restart": [len(r["live"]) for r in result["restarts"]],
            "restart_to_reattached_seconds": [round(r["seconds"], 2) for r in result["restarts"]],
            "events_per_run_min": min(events),
            "events_per_run_max": max(events),
            "seconds": round(time.monotonic() - began, 1),
        }

    return in_temp_repo(scenario, args.keep)


def soak_inbox(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    bursts = []
    for _ in range(args.bursts):

        def scenario(repo: Path, folder: Path) -> dict[str, Any]:
            result = inbox_burst(repo, folder)
            ids = result["before"] + result["after"]
            ran = result["record"].read_text().split()
            assert sorted(ran) == sorted(ids), "each dropped request must run exactly once"
            latencies.extend(result["latencies"])
            return {"requests": len(ids), "max_ms": round(result["latencies"][-1] * 1000, 1)}

        bursts.append(in_temp_repo(scenario, args.keep))
    ordered = sorted(latencies)
    summary: dict[str, Any] = {"bursts": bursts, "ok": all(b["ok"] for b in bursts)}
    if ordered:
        summary["latency_ms"] = {
            "samples": len(ordered),
            "median": round(statistics.median(ordered) * 1000, 1),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max": round(ordered[-1] * 1000, 1),
            "over_200ms": sum(1 for value in ordered if value > 0.2),
        }
    return summary


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", nargs="?", choices=["all", "kills", "agents", "inbox"], default="all")
    parser.add_argument("--requests", type=int, default=2000, help="requests per kill round (default 2000)")
    parser.add_argument("--kill-rounds", type=int, default=2, help="kill rounds, each on a fresh repository (default 2)")
    parser.add_argument("--kill-agents", type=int, default=24, help="agents sharing the requests (default 24)")
    parser.add_argument("--max-parallel", type=int, default=16, help="runs at once in the kill rounds (default 16)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds one kill round may take (default 600)")
    parser.add_argument("--agents", type=int, default=100, help="live agents in the cockpit scenario (default 100)")
    parser.add_argument("--cockpit-kills", type=int, default=3, help="times the cockpit is killed (default 3)")
    parser.add_argument("--bursts", type=int, default=5, help="inbox bursts of 200 files (default 5)")
    parser.add_argument("--seed", type=int, default=20261207, help="seed of the random kill moments")
    parser.add_argument("--keep", action="store_true", help="keep the temp repositories (always kept after a failed check)")
    args = parser.parse_args()

    xdg = tempfile.mkdtemp(prefix="aipass-soak-xdg-")
    os.environ.update(GIT_IDENTITY, XDG_CONFIG_HOME=xdg)
    for key in [key for key in os.environ if key.startswith("AIPASS_")]:
        del os.environ[key]

    began = time.monotonic()
    summary: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
    }
    scenarios = {"kills": soak_kills, "agents": soak_agents, "inbox": soak_inbox}
    for name, run in scenarios.items():
        if args.scenario in ("all", name):
            summary[name] = run(args)
    summary["seconds"] = round(time.monotonic() - began, 1)
    summary["ok"] = all(summary[name]["ok"] for name in scenarios if name in summary)
    shutil.rmtree(xdg, ignore_errors=True)
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
