"""The demo repository: its config, its scripted agents run through the real orchestrator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aipass_tui.config import load_settings
from aipass_tui.core.models import RequestStatus
from aipass_tui.core.orchestrator import Orchestrator
from aipass_tui.demo import create_demo_repo
from tests.conftest import wait_until


def test_demo_agents_run_by_module_name(tmp_path: Path, orchestrators: list) -> None:
    repo = create_demo_repo(tmp_path / "demo")
    settings = load_settings(repo)
    assert len(settings.agents) >= 3
    for config in settings.agents.values():
        # A module name survives reinstalling the package; a path into site-packages does not.
        assert config.command[:3] == [sys.executable, "-m", "aipass_tui.demo_agents.scripted_agent"]
    assert "scripted programs, not AI models" in (repo / ".aipass" / "config.toml").read_text()
    orchestrator = Orchestrator(repo, settings, role="test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)

    def finished() -> bool:
        requests = orchestrator.snapshot().requests
        return bool(requests) and all(r.status in (RequestStatus.DONE, RequestStatus.FAILED) for r in requests)

    wait_until(finished, timeout=120, message="the demo's first requests to finish")
    failed = [(r.agent, r.message) for r in orchestrator.snapshot().requests if r.status == RequestStatus.FAILED]
    assert failed == []


def test_demo_without_ui_prints_its_path(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "aipass_tui", "demo", "--path", str(target), "--no-ui"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    assert "scripted demo programs, not AI models" in done.stderr
