#!/usr/bin/env python3
"""Write the README's cockpit screenshots (SVG) into ``screenshots/``.

The script runs the real orchestrator in a temporary git repository with fake claude, codex and
gemini CLIs (``tests/fakes``) and the scripted demo agents, waits until the agents have done
something worth showing, records the orchestrator's state, stops the runs, freezes the clock at
the moment of the recording, and renders the real cockpit headless from that recording:

    main.svg    the agent panes, CPU meter and waiting requests
    zoom.svg    one agent full screen: transcript, sub-agents
    queue.svg   every request, with a coalesced duplicate and a failed one
    fleet.svg   the fleet table of a 30-agent configuration

Run it from the repository root: ``.venv/bin/python scripts/screenshots.py [--out DIR]``.
It takes about half a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The screenshots show the cockpit in true colour whatever terminal runs this script. Textual
# picks 16 colours when TERM has no -256color and COLORTERM is unset (Textual 8.2.8, Rich 15.0.0),
# and the cockpit then restyles some widgets for them. An app reads COLORTERM when it is built.
# TEXTUAL_COLOR_SYSTEM, read when textual is imported, would override COLORTERM, so it is removed.
os.environ["COLORTERM"] = "truecolor"
os.environ.pop("TEXTUAL_COLOR_SYSTEM", None)

from aipass_tui.config import load_settings  # noqa: E402
from aipass_tui.core import clock  # noqa: E402
from aipass_tui.core.models import AgentStatus, RequestStatus  # noqa: E402
from aipass_tui.core.orchestrator import Orchestrator  # noqa: E402
from aipass_tui.ui.app import AipassApp, create_app  # noqa: E402
from aipass_tui.ui.source import RecordedSource  # noqa: E402
from aipass_tui.ui.widgets.transcript_view import TranscriptView  # noqa: E402

FAKES = ROOT / "tests" / "fakes"
DEMO_AGENT = ROOT / "aipass_tui" / "demo_agents" / "scripted_agent.py"
SIZE = (150, 42)
DEADLINE_SECONDS = 60.0

Step = Callable[[AipassApp], Awaitable[None]]


def make_repo(folder: Path) -> Path:
    repo = folder / "calc"
    repo.mkdir()
    identity = ["-c", "user.name=screenshots", "-c", "user.email=screenshots@aipass.local"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("# calc\n")
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), *identity, "commit", "-q", "-m", "Initial commit"], check=True)
    return repo


def write_config(repo: Path, blocks: list[str], max_parallel: int = 8) -> None:
    root = repo / ".aipass"
    root.mkdir(mode=0o700, exist_ok=True)
    limits = f"[limits]\nmax_parallel = {max_parallel}\nstart_rate = 8.0\nstop_grace = \"1s\"\n\n"
    text = limits + "\n".join(blocks)
    (root / "config.toml").write_text(text)


def fake_agent(name: str, kind: str, model: str | None = None) -> str:
    model_line = f'model = "{model}"\n' if model else ""
    return f'[agents.{name}]\nkind = "{kind}"\nbinary = "{FAKES / "bin" / kind}"\n{model_line}isolation = "shared"\n'


def command_agent(name: str, argv: list[str]) -> str:
    return f'[agents.{name}]\nkind = "command"\ncommand = {json.dumps(argv)}\nisolation = "shared"\n'


def wait_until(orchestrator: Orchestrator, predicate: Callable[[], bool], description: str) -> None:
    """Wait for ``predicate``; on time-out stop every run and exit with a message."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    orchestrator.close(stop_runs=True)
    raise SystemExit(f"screenshots: timed out after {DEADLINE_SECONDS:.0f} s waiting for {description}")


def record(orchestrator: Orchestrator) -> tuple[RecordedSource, float]:
    """Copy the orchestrator's state into a RecordedSource, then stop every run."""
    snapshot = orchestrator.snapshot()
    names = orchestrator.agent_names
    events = {name: orchestrator.recent_events(name) for name in names}
    history = {name: orchestrator.run_history(name) for name in names}
    when = clock.now()
    orchestrator.close(stop_runs=True)
    return RecordedSource(orchestrator.repo, orchestrator.settings, snapshot, events, history), when


def status(orchestrator: Orchestrator, agent: str) -> AgentStatus:
    return orchestrator.snapshot().agents[agent].status


def team_session(folder: Path) -> tuple[RecordedSource, float]:
    """Six agents: finished, failed, running, queued; one request sent twice."""
    repo = make_repo(folder)
    script = [sys.executable, str(DEMO_AGENT)]
    write_config(repo, [
        fake_agent("claude-a", "claude", "sonnet"),
        fake_agent("codex-b", "codex", "gpt-5-codex"),
        fake_agent("gemini-c", "gemini"),
        command_agent("coder", [*script, "coder", "{prompt}"]),
        command_agent("tester", [*script, "tester", "{prompt}"]),
        command_agent("docs", [*script, "docs", "{prompt}"]),
    ])
    orchestrator = Orchestrator(repo, load_settings(repo), role="screenshots")
    orchestrator.start_thread()
    orchestrator.dispatch("claude-a", "Add a duration parser to the config loader", "subagents=2")
    orchestrator.dispatch("codex-b", "Fix the flaky merge test")
    orchestrator.dispatch("gemini-c", "Write the plans guide", "scenario=rate_limit")
    orchestrator.dispatch("coder", "Handle division by zero in divide()")
    orchestrator.dispatch("tester", "Cover the error branch of divide()")
    orchestrator.dispatch("docs", "Add a usage example to the README")
    orchestrator.dispatch("coder", "Add a docstring to add()", sender="plan FPLAN-0001")
    orchestrator.dispatch("coder", "Add a docstring to add()", sender="watch: src changed")
    wait_until(orchestrator, lambda: status(orchestrator, "claude-a") in (AgentStatus.DONE, AgentStatus.FAILED), "claude-a to finish")
    wait_until(orchestrator, lambda: status(orchestrator, "gemini-c") == AgentStatus.FAILED, "gemini-c to fail")
    wait_until(orchestrator, lambda: status(orchestrator, "codex-b") in (AgentStatus.DONE, AgentStatus.FAILED), "codex-b to finish")
    wait_until(orchestrator, lambda: len(orchestrator.recent_events("coder")) >= 8, "coder output")
    return record(orchestrator)


def fleet_session(folder: Path) -> tuple[RecordedSource, float]:
    """Thirty scripted agents, some still working, some done, a few failed."""
    repo = make_repo(folder)
    text = [sys.executable, str(FAKES / "fake_agent.py"), "--flavor", "text", "{prompt}"]
    write_config(repo, [command_agent(f"worker-{i:02d}", text) for i in range(30)], max_parallel=30)
    orchestrator = Orchestrator(repo, load_settings(repo), role="screenshots")
    orchestrator.start_thread()
    for i in range(30):
        if i % 7 == 3:
            prompt = "scenario=ok exit=2"
        elif i % 3 == 0:
            prompt = "scenario=ok"
        else:
            prompt = "scenario=slow rate=2 seconds=60"
        orchestrator.dispatch(f"worker-{i:02d}", f"Update module {i}", prompt)

    def settled() -> bool:
        snapshot = orchestrator.snapshot()
        return not any(r.status in (RequestStatus.QUEUED, RequestStatus.HELD) for r in snapshot.requests) and all(
            len(orchestrator.recent_events(name)) >= 3 for name in snapshot.agents
        )

    wait_until(orchestrator, settled, "every worker to start")
    return record(orchestrator)


async def render(source: RecordedSource, when: float, target: Path, steps: Step | None = None) -> None:
    clock.freeze(when)
    try:
        app = create_app(source.repo, source.settings, source, frozen=True, low_bandwidth=False)
        if app.console.color_system != "truecolor":
            raise SystemExit(
                f"screenshots: the cockpit picked the {app.console.color_system} colour system although COLORTERM is "
                "truecolor, so the screenshots would not show its true colours"
            )
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause(0.2)
            if steps is not None:
                await steps(app)
                await pilot.pause(0.3)
            await pilot.wait_for_scheduled_animations()
            target.write_text(app.export_screenshot(title="aipass-tui"), encoding="utf-8")
    finally:
        clock.unfreeze()
    print(f"wrote {target}")


async def open_zoom(app: AipassApp) -> None:
    app.show_zoom("claude-a")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        views = app.screen.query(TranscriptView)
        if views and views.first().row_count and not views.first().indexing:
            break
    app.screen.query_one("#zoom-side").active = "tab-subagents"


async def open_queue(app: AipassApp) -> None:
    await app.run_action("show_queue")


async def open_fleet(app: AipassApp) -> None:
    app.screen.fleet = True


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Write the cockpit screenshots used by the README.")
    parser.add_argument("--out", default=str(ROOT / "screenshots"), help="output folder (default: screenshots/)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aipass-screenshots-") as tmp:
        (Path(tmp) / "team").mkdir()
        team, team_time = team_session(Path(tmp) / "team")
        asyncio.run(render(team, team_time, out / "main.svg"))
        asyncio.run(render(team, team_time, out / "zoom.svg", open_zoom))
        asyncio.run(render(team, team_time, out / "queue.svg", open_queue))
        (Path(tmp) / "fleet").mkdir()
        fleet, fleet_time = fleet_session(Path(tmp) / "fleet")
        asyncio.run(render(fleet, fleet_time, out / "fleet.svg", open_fleet))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
