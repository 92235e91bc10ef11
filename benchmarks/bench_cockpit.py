"""Cockpit benchmarks: start to first frame, streaming load, a large idle fleet, the peer scenario.

Every scenario uses a real git repository in a temporary folder, a real orchestrator and
``command`` agents that run small Python scripts (or ``sleep``). Run one scenario at a time:

    python benchmarks/bench_cockpit.py first-frame --runs 5
    python benchmarks/bench_cockpit.py stream --agents 100 --rate 50 --seconds 15 --runs 3
    python benchmarks/bench_cockpit.py idle --agents 1000 --talking 10 --rate 5 --start-rate 100
    python benchmarks/bench_cockpit.py peer --agents 100 --start-rate 8 --start-rate 20 --runs 3

``first-frame`` starts ``python -m aipass_tui`` in a real pseudo-terminal (200 x 60,
``TERM=xterm-256color``) and times process start to the first complete screen: the output
contains the status bar's text, the last agent's pane and the footer's last key. The other
scenarios run the cockpit headless in this process (``App.run_test(size=(200, 60))``), with
the orchestrator the app creates and owns, as the ``aipass-tui`` command does. Measured there:

- lag: how late a repeated 10 ms ``asyncio.sleep`` wakes on the app's event loop (p50, p95, max);
- CPU: CPU time of this whole process (UI thread, orchestrator thread, workers) divided by wall
  time over a steady window, in percent of one core. The orchestrator thread is also reported
  alone. The agents' own processes are not counted.
- memory: resident set size of this process.

Each scenario prints one JSON object with the per-run values and their medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import fcntl
import threading
import time
from pathlib import Path
from typing import Any

SIZE = (200, 60)
LAG_PERIOD = 0.010
"""Period of the lag probe's timer, in seconds."""

STREAMER = """
import sys, time
rate = float(sys.argv[1])
text = "x" * 80
start = time.monotonic()
n = 0
while True:
    n += 1
    print(f"line {n} {text}", flush=True)
    delay = start + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""
"""A fake agent that prints ``rate`` plain-text lines per second until it is stopped."""


# ------------------------------------------------------------------------- repositories


def make_repo(commands: list[list[str]], *, start_rate: float, max_parallel: int, cpu_hold_percent: float | None) -> Path:
    """Create a git repository with one ``command`` agent per entry of ``commands``."""
    repo = Path(tempfile.mkdtemp(prefix="aipass-cockpit-bench-"))
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    lines = ["[limits]", f"max_parallel = {max_parallel}", f"start_rate = {start_rate}"]
    if cpu_hold_percent is not None:
        lines.append(f"cpu_hold_percent = {cpu_hold_percent}")
    lines.append("")
    for i, command in enumerate(commands):
        lines += [
            f"[agents.a{i:04d}]",
            'kind = "command"',
            f"command = {json.dumps(command)}",
            'isolation = "shared"',
            'stall_after = "1h"',
            "",
        ]
    (repo / ".aipass").mkdir(mode=0o700)
    (repo / ".aipass" / "config.toml").write_text("\n".join(lines))
    return repo


def streamer(rate: float) -> list[str]:
    return [sys.executable, "-c", STREAMER, str(rate)]


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def median(values: list[float], digits: int = 1) -> float | None:
    return round(statistics.median(values), digits) if values else None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# ------------------------------------------------------------------------- first frame


def set_window_size(fd: int, columns: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def spawn_in_pty(argv: list[str], repo: Path, marker: bytes | tuple[bytes, ...], timeout: float) -> tuple[float, float | None]:
    """Start ``argv`` in a pseudo-terminal; return its start time and when ``marker`` was first output.

    With several markers, the time is when the last of them has been output.

    The child is then hung up (SIGHUP, on which the cockpit exits and leaves the agents
    running) and reaped. Times are ``time.monotonic()`` values, which are system-wide.
    """
    master, slave = pty.openpty()
    set_window_size(slave, *SIZE)
    env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(SIZE[0]), LINES=str(SIZE[1]))
    env.pop("TEXTUAL", None)
    started = time.monotonic()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=repo, env=env, start_new_session=True, close_fds=True)
    os.close(slave)
    output = bytearray()
    markers = marker if isinstance(marker, tuple) else (marker,)
    seen: float | None = None
    deadline = started + timeout
    try:
        while seen is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if all(part in output for part in markers):
                seen = time.monotonic()
        process.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 65536)
                except OSError:
                    time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        os.close(master)
    if seen is None:
        tail = output[-2000:].decode("utf-8", "replace")
        raise RuntimeError(f"no first frame within {timeout:g} s from {argv!r} (exit code {process.returncode}); last output: {tail!r}")
    return started, seen


def first_frame_child(repo: str, timeline: str) -> int:
    """Run the cockpit like ``aipass-tui --repo REPO``, appending phase times to ``timeline``."""
    entered = time.monotonic()
    marks = open(timeline, "a", encoding="utf-8")

    def mark(name: str) -> None:
        marks.write(f"{name} {time.monotonic()!r}\n")
        marks.flush()

    marks.write(f"entered {entered!r}\n")
    import aipass_tui.cli as cli
    import aipass_tui.ui.app as app_module
    from aipass_tui.core.orchestrator import Orchestrator

    mark("imported")
    original_start = Orchestrator.start
    original_start_thread = Orchestrator.start_thread
    original_attach = app_module._attach_automation

    def start(self: Any, **kwargs: Any) -> Any:
        mark("orchestrator_start_begin")
        result = original_start(self, **kwargs)
        mark("orchestrator_started")
        return result

    def start_thread(self: Any) -> Any:
        result = original_start_thread(self)
        mark("orchestrator_thread_started")
        return result

    def attach(orchestrator: Any) -> Any:
        result = original_attach(orchestrator)
        mark("automation_attached")
        return result

    # Timing wrappers only: each calls the real function and records when it returned.
    Orchestrator.start = start  # type: ignore[method-assign]
    Orchestrator.start_thread = start_thread  # type: ignore[method-assign]
    app_module._attach_automation = attach
    try:
        return cli.main(["--repo", repo])
    finally:
        marks.close()


def read_timeline(path: Path) -> dict[str, float]:
    marks: dict[str, float] = {}
    for line in path.read_text().splitlines():
        name, value = line.split()
        marks.setdefault(name, float(value))
    return marks


def first_frame(args: argparse.Namespace) -> dict:
    # `pip install .` compiles the package to bytecode; an editable install compiles it on the
    # first run unless PYTHONDONTWRITEBYTECODE is set. Compile it here so that every run measures
    # an installed cockpit, not the compiler (about 120 ms for the whole package).
    import compileall

    import aipass_tui

    compileall.compile_dir(str(Path(aipass_tui.__file__).parent), quiet=1)
    repo = make_repo([["sleep", "3600"]] * 4, start_rate=8.0, max_parallel=8, cpu_hold_percent=None)
    # A frame counts once the top line (the repository's name), the last agent's pane and the
    # footer's last key are on the terminal. Textual may first send a partial update.
    marker = (repo.name.encode(), b"a0003", b"palette")
    command = [sys.executable, "-m", "aipass_tui", "--repo", str(repo)]
    warmup_started, warmup_seen = spawn_in_pty(command, repo, marker, args.timeout)
    totals = []
    for _ in range(args.runs):
        started, seen = spawn_in_pty(command, repo, marker, args.timeout)
        totals.append((seen - started) * 1000)

    phases: dict[str, list[float]] = {name: [] for name in ("interpreter", "imports", "settings_and_logging", "orchestrator_start", "app_to_first_screen", "total")}
    after: dict[str, list[float]] = {"tick_thread_started": [], "automation_attached": []}
    for run in range(args.runs):
        timeline = repo.parent / f"{repo.name}-timeline-{run}.txt"
        child = [sys.executable, str(Path(__file__).resolve()), "_first-frame-child", str(repo), str(timeline)]
        started, seen = spawn_in_pty(child, repo, marker, args.timeout)
        marks = read_timeline(timeline)
        timeline.unlink()
        phases["interpreter"].append(marks["entered"] - started)
        phases["imports"].append(marks["imported"] - marks["entered"])
        phases["settings_and_logging"].append(marks["orchestrator_start_begin"] - marks["imported"])
        phases["orchestrator_start"].append(marks["orchestrator_started"] - marks["orchestrator_start_begin"])
        phases["app_to_first_screen"].append(seen - marks["orchestrator_started"])
        phases["total"].append(seen - started)
        # The tick thread and file watching start after the first frame, unless SIGHUP ends the
        # cockpit first. These times count from the first frame.
        for name, key in (("tick_thread_started", "orchestrator_thread_started"), ("automation_attached", "automation_attached")):
            if key in marks:
                after[name].append(marks[key] - seen)
    shutil.rmtree(repo, ignore_errors=True)
    return {
        "scenario": "first-frame",
        "command": " ".join(command[1:4] + ["REPO"]),
        "agents": 4,
        "terminal": f"pty {SIZE[0]}x{SIZE[1]}, TERM=xterm-256color",
        "runs": args.runs,
        "warmup_ms": round((warmup_seen - warmup_started) * 1000, 1),
        "first_frame_ms_median": median(totals),
        "first_frame_ms_all": [round(value, 1) for value in totals],
        "split_runs_ms_median": {name: median([value * 1000 for value in values]) for name, values in phases.items()},
        "after_first_frame_ms_median": {name: median([value * 1000 for value in values]) for name, values in after.items()},
        "target_ms": 500,
    }


# ------------------------------------------------------------------------- headless cockpit


class LagProbe:
    """Measure how late a repeated 10 ms ``asyncio.sleep`` wakes on the running event loop."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.recording = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_PERIOD)
            late = time.perf_counter() - before - LAG_PERIOD
            if self.recording:
                self.samples.append(late * 1000)

    def take(self) -> list[float]:
        samples, self.samples = self.samples, []
        return samples

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    @staticmethod
    def summary(samples: list[float]) -> dict[str, float | int | None]:
        if not samples:
            return {"samples": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
        return {
            "samples": len(samples),
            "p50_ms": round(percentile(samples, 0.50), 1),
            "p95_ms": round(percentile(samples, 0.95), 1),
            "max_ms": round(max(samples), 1),
        }


def process_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def thread_cpu_seconds(name: str) -> float | None:
    """CPU seconds of the first thread called ``name`` in this process, or None when not found."""
    import psutil

    native = next((thread.native_id for thread in threading.enumerate() if thread.name == name), None)
    if native is None:
        return None
    for thread in psutil.Process().threads():
        if thread.id == native:
            return thread.user_time + thread.system_time
    return None


def running_count(orchestrator: Any) -> int:
    with orchestrator._mutex:  # noqa: SLF001 - a benchmark may look inside
        return len(orchestrator._live)  # noqa: SLF001


async def wait_until(predicate: Any, timeout: float, description: str) -> float:
    """Poll ``predicate`` every 50 ms and return the seconds it took; raise TimeoutError naming ``description``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {description}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def measure_window(app: Any, probe: LagProbe, seconds: float, counter: dict[str, int]) -> dict:
    """Measure CPU, lag, memory and ingested lines over ``seconds`` of steady state."""
    import psutil

    me = psutil.Process()
    probe.take()
    probe.recording = True
    lines_before = counter["lines"]
    orchestrator_before = thread_cpu_seconds("aipass-orchestrator")
    cpu_before, wall_before = process_cpu_seconds(), time.monotonic()
    rss_max = 0
    end = wall_before + seconds
    while time.monotonic() < end:
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))
        rss_max = max(rss_max, me.memory_info().rss)
    wall = time.monotonic() - wall_before
    cpu = process_cpu_seconds() - cpu_before
    orchestrator_after = thread_cpu_seconds("aipass-orchestrator")
    probe.recording = False
    samples = probe.take()
    orchestrator_cpu = None
    if orchestrator_before is not None and orchestrator_after is not None:
        orchestrator_cpu = round((orchestrator_after - orchestrator_before) / wall * 100, 1)
    return {
        "window_seconds": round(wall, 1),
        "cpu_percent_of_one_core": round(cpu / wall * 100, 1),
        "orchestrator_thread_cpu_percent": orchestrator_cpu,
        "lag": LagProbe.summary(samples),
        "rss_mb": round(me.memory_info().rss / 1e6, 1),
        "rss_mb_max": round(rss_max / 1e6, 1),
        "threads": me.num_threads(),
        "ingested_lines_per_second": round((counter["lines"] - lines_before) / wall),
        "load_average": load_average(),
    }


async def cockpit_run(repo: Path, *, agents: int, steady_seconds: float, settle_seconds: float, start_timeout: float, zoom: bool = False) -> dict:
    """Open the cockpit on ``repo``, dispatch one request per agent, then measure a steady window.

    With ``zoom`` the first agent's full-screen view (its transcript following the output) is
    opened before the window, so one streaming view is on screen as well.
    """
    from aipass_tui.config import load_settings
    from aipass_tui.ui.app import create_app
    from aipass_tui.ui.screens.main import MainScreen

    settings = load_settings(repo)
    app = create_app(repo, settings, low_bandwidth=False)
    counter = {"lines": 0}

    def count(notices: list) -> None:
        counter["lines"] += sum(len(notice.events) for notice in notices if type(notice).__name__ == "RunOutput")

    result: dict[str, Any] = {}
    probe = LagProbe()
    opened = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        probe.start()
        try:
            await wait_until(lambda: isinstance(app.screen, MainScreen) and app.screen.is_mounted, 60, "the main screen")
            result["cockpit_open_seconds"] = round(time.monotonic() - opened, 2)
            orchestrator = app.source
            orchestrator.subscribe(count)
            names = list(orchestrator.agent_names)

            probe.take()
            probe.recording = True
            dispatched = time.monotonic()

            def dispatch_all() -> None:
                for name in names:
                    orchestrator.dispatch(name, "bench")

            await asyncio.to_thread(dispatch_all)
            result["dispatch_seconds"] = round(time.monotonic() - dispatched, 2)
            try:
                await wait_until(lambda: running_count(orchestrator) >= agents, start_timeout, f"{agents} runs started")
                result["all_started"] = True
                result["seconds_to_start_all"] = round(time.monotonic() - dispatched, 2)
            except TimeoutError:
                # Measured all the same, and reported: a slow start is a result, not a crash.
                result["all_started"] = False
                result["started_after_timeout"] = running_count(orchestrator)
                result["start_timeout_seconds"] = start_timeout
            probe.recording = False
            result["lag_while_starting"] = LagProbe.summary(probe.take())
            result["holding"] = orchestrator.snapshot().holding

            if zoom:
                from aipass_tui.ui.screens.zoom import ZoomScreen

                app.show_zoom(names[0])
                await wait_until(lambda: isinstance(app.screen, ZoomScreen) and app.screen.is_mounted, 30, "the zoom screen")
            await asyncio.sleep(settle_seconds)
            result.update(await measure_window(app, probe, steady_seconds, counter))
            result["running_at_end"] = running_count(orchestrator)
            screen = app.screen
            if zoom:
                result["view"] = f"zoom on {names[0]}"
            else:
                result["view"] = "fleet table" if getattr(screen, "fleet", False) else "agent grid"
                grid = screen.query("AgentGrid")
                result["grid_mode"] = getattr(grid.first(), "mode", None) if grid else None
            result["panes_receiving_output"] = sum(1 for view in app.model.agents.values() if view.live)
        finally:
            probe.stop()
            orchestrator = app.source
            orchestrator.unsubscribe(count)
            # Leave the runs going and kill their processes afterwards (stop_leftovers): the
            # orchestrator's own stop of every run is not what is measured here, and it takes
            # minutes for 1,000 runs because each stopped run scans every process.
            app.quit_with("leave")
            await pilot.pause()
    result["closed"] = app.closed
    return result


def run_headless(repo: Path, **kwargs: Any) -> dict:
    """Run ``cockpit_run`` in a new Python process, so memory and threads start from zero each run."""
    child = [sys.executable, str(Path(__file__).resolve()), "_headless-run", str(repo), json.dumps(kwargs)]
    try:
        done = subprocess.run(child, capture_output=True, text=True)
    finally:
        shutil.rmtree(repo, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"headless cockpit run failed with exit code {done.returncode}: {done.stderr[-3000:]}")
    return json.loads(done.stdout)


def headless_child(repo: str, kwargs: str) -> int:
    try:
        result = asyncio.run(cockpit_run(Path(repo), **json.loads(kwargs)))
    finally:
        stop_leftovers()
    print(json.dumps(result))
    return 0


def stop_leftovers() -> None:
    """Kill the agent processes this benchmark started (children of this process) and reap them."""
    import psutil

    leftovers = psutil.Process().children(recursive=True)
    for child in leftovers:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(leftovers, timeout=10)


def medians(runs: list[dict], keys: list[str]) -> dict[str, float | None]:
    """Median of each key over the runs; ``lag.p95_ms`` style keys read nested values."""
    out: dict[str, float | None] = {}
    for key in keys:
        values = []
        for run in runs:
            value: Any = run
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, (int, float)):
                values.append(float(value))
        out[key] = median(values)
    return out


SUMMARY_KEYS = [
    "cpu_percent_of_one_core",
    "orchestrator_thread_cpu_percent",
    "lag.p50_ms",
    "lag.p95_ms",
    "lag.max_ms",
    "rss_mb",
    "rss_mb_max",
    "ingested_lines_per_second",
    "seconds_to_start_all",
    "lag_while_starting.p95_ms",
]


def stream(args: argparse.Namespace) -> dict:
    runs = []
    for _ in range(args.runs):
        repo = make_repo([streamer(args.rate)] * args.agents, start_rate=args.start_rate, max_parallel=args.agents, cpu_hold_percent=100)
        runs.append(run_headless(repo, agents=args.agents, steady_seconds=args.seconds, settle_seconds=args.settle, start_timeout=120, zoom=args.zoom))
    return {
        "scenario": "stream",
        "agents": args.agents,
        "lines_per_second_per_agent": args.rate,
        "offered_lines_per_second": args.agents * args.rate,
        "start_rate": args.start_rate,
        "zoom": args.zoom,
        "runs": runs,
        "median": medians(runs, SUMMARY_KEYS),
        "targets": {"cpu_percent_of_one_core": 50, "lag.p95_ms": 50, "rss_mb": 150},
    }


def idle(args: argparse.Namespace) -> dict:
    commands = [streamer(args.rate)] * args.talking + [["sleep", "3600"]] * (args.agents - args.talking)
    runs = []
    for _ in range(args.runs):
        repo = make_repo(commands, start_rate=args.start_rate, max_parallel=args.agents, cpu_hold_percent=100)
        runs.append(run_headless(repo, agents=args.agents, steady_seconds=args.seconds, settle_seconds=args.settle, start_timeout=args.agents / args.start_rate * 10 + 120))
    return {
        "scenario": "idle",
        "agents": args.agents,
        "talking": args.talking,
        "lines_per_second_per_talking_agent": args.rate,
        "start_rate": args.start_rate,
        "ideal_seconds_to_start_all": round(args.agents / args.start_rate, 1),
        "runs": runs,
        "median": medians(runs, SUMMARY_KEYS),
        "targets": {"lag.p95_ms": 100},
    }


def peer(args: argparse.Namespace) -> dict:
    by_rate = {}
    for start_rate in args.start_rate or [8.0, 20.0]:
        runs = []
        for _ in range(args.runs):
            repo = make_repo([streamer(10.0)] * args.agents, start_rate=start_rate, max_parallel=args.agents, cpu_hold_percent=None)
            runs.append(run_headless(repo, agents=args.agents, steady_seconds=args.seconds, settle_seconds=args.settle, start_timeout=args.agents / start_rate * 4 + 60))
        by_rate[f"{start_rate:g}"] = {
            "start_rate": start_rate,
            "ideal_seconds_to_start_all": round(args.agents / start_rate, 1),
            "runs": runs,
            "median": medians(runs, SUMMARY_KEYS),
        }
    return {
        "scenario": "peer",
        "agents": args.agents,
        "line_every_ms": 100,
        "limits": f"max_parallel = {args.agents}, other [limits] at their defaults (cpu_hold_percent 90)",
        "by_start_rate": by_rate,
        "targets": {"cpu_percent_of_one_core": 15, "rss_mb": 150, "seconds_to_start_all": 15},
    }


# ------------------------------------------------------------------------- command line


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "_first-frame-child":
        return first_frame_child(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 4 and sys.argv[1] == "_headless-run":
        return headless_child(sys.argv[2], sys.argv[3])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="scenario", required=True)

    p = sub.add_parser("first-frame", help="process start to the first screen in a pseudo-terminal")
    p.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up run (default 5)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the first frame (default 30)")

    for name, agents, help_text in (
        ("stream", 100, "every agent prints --rate lines per second"),
        ("idle", 1000, "--talking agents print, the rest run sleep"),
        ("peer", 100, "every agent prints a line every 100 ms"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--agents", type=int, default=agents, help=f"agents, each with one run (default {agents})")
        p.add_argument("--seconds", type=float, default=15.0, help="length of the measured steady window in seconds (default 15)")
        p.add_argument("--settle", type=float, default=2.0, help="seconds between the last start and the window (default 2)")
        p.add_argument("--runs", type=int, default=3 if name != "idle" else 1, help="repetitions; the medians are printed too")
        if name == "peer":
            p.add_argument("--start-rate", type=float, action="append", help="run starts per second; repeat for several (default 8 and 20)")
        else:
            p.add_argument("--start-rate", type=float, default=1000.0 if name == "stream" else 100.0, help="run starts per second")
        if name in ("stream", "idle"):
            p.add_argument("--rate", type=float, default=50.0 if name == "stream" else 5.0, help="lines per second of each printing agent")
        if name == "stream":
            p.add_argument("--zoom", action="store_true", help="open the first agent's full-screen view before the measured window")
        if name == "idle":
            p.add_argument("--talking", type=int, default=10, help="agents that print (default 10)")
    args = parser.parse_args()

    began = time.time()
    load_before = load_average()
    scenarios = {"first-frame": first_frame, "stream": stream, "idle": idle, "peer": peer}
    result = scenarios[args.scenario](args)

    result["load_average_before"] = load_before
    result["load_average_after"] = load_average()
    # Fourth field: runnable scheduling entities / all of them, at the end of the run.
    result["proc_loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    result["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began))
    result["seconds_in_all"] = round(time.time() - began, 1)
    result["python"] = sys.version.split()[0]
    result["cpus"] = os.cpu_count()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
