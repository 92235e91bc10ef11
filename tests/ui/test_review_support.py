"""Helpers for the review screen tests: real repositories, agents that edit files, fixed scenes.

``edit_agent`` is a ``command`` agent that changes files named in the first line of its
prompt, so runs in worktrees end with real pull requests. ``review_scene`` builds pull requests
through the real git flow (worktree, commit, checks, merge) with the clock and git dates fixed,
so snapshots render the same commits, ids and ages every time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from aipass_tui.config import AgentConfig, Settings, load_settings
from aipass_tui.core import clock
from aipass_tui.core.gitflow import GitWorkspace
from aipass_tui.core.gitflow_review import merge_pull
from aipass_tui.core.models import AgentState, AgentStatus, Request, RunRecord, RunStatus, RunSummary
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.core.pulls import PullRequest, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.ui.app import AipassApp, create_app
from aipass_tui.ui.source import RecordedSource
from tests.conftest import write_config

GIT_DATE = "2026-05-28T20:13:20+00:00"

AGENT_SCRIPT = '''
"""Change files named in the first prompt line.

edit=PATH appends a numbered line to PATH, top=PATH inserts one at its start, and
lines=PATH:N writes N numbered lines to PATH.
"""
import re, sys
from pathlib import Path

prompt = sys.argv[1] if len(sys.argv) > 1 else ""
first = prompt.splitlines()[0] if prompt else ""
for kind, name in re.findall(r"(edit|top|lines)=(\\S+)", first):
    count = None
    if kind == "lines":
        name, count = name.rsplit(":", 1)
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text().splitlines() if path.exists() else []
    if kind == "edit":
        lines.append(f"change {len(lines) + 1}")
    elif kind == "top":
        lines.insert(0, f"top change {len(lines) + 1}")
    else:
        lines = [f"generated line {n}" for n in range(int(count))]
    path.write_text("\\n".join(lines) + "\\n")
print("changed:", first)
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def review_repo(tmp_path: Path) -> Path:
    """A repository on main with a Python module and a text file, and the editing agent's script."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "core.autocrlf", "false")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("def main():\n    return 1\n")
    (repo / "notes.txt").write_text("".join(f"note {n}\n" for n in range(1, 31)))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "Initial commit")
    (tmp_path / "edit_agent.py").write_text(AGENT_SCRIPT)
    return repo


def review_settings(repo: Path, checks: list[str] | None = None) -> Settings:
    """Write a config with agents alpha and beta (editing agents in worktrees) and return it."""
    script = repo.parent / "edit_agent.py"
    command = json.dumps([sys.executable, str(script), "{prompt}"])
    lines = [
        f"[agents.{name}]\nkind = \"command\"\ncommand = {command}\nisolation = \"worktree\"\n"
        for name in ("alpha", "beta")
    ]
    lines.append("[limits]\nstop_grace = \"1s\"\n")
    lines.append(f"[git]\nchecks = {json.dumps(checks or [])}\n")
    write_config(repo, "\n".join(lines))
    return load_settings(repo)


# A fixed scene for snapshots ------------------------------------------------------------------

CONFIG_PY = textwrap.dedent(
    '''\
    """Typed configuration."""
    from __future__ import annotations

    import os
    from pathlib import Path

    DEFAULT_TIMEOUT = 600


    def load(path: Path) -> dict[str, str]:
        """Read KEY=VALUE lines."""
        values: dict[str, str] = {}
        for line in path.read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
        return values


    def timeout(values: dict[str, str]) -> int:
        return int(values.get("timeout", DEFAULT_TIMEOUT))


    def home() -> Path:
        return Path(os.environ.get("HOME", "/"))
    '''
)
CONFIG_PY_NEW = (
    CONFIG_PY.replace("DEFAULT_TIMEOUT = 600\n", "DEFAULT_TIMEOUT = 600\nUNITS = {\"s\": 1, \"m\": 60, \"h\": 3600}\n")
    .replace(
        '    return int(values.get("timeout", DEFAULT_TIMEOUT))\n',
        '    text = values.get("timeout", str(DEFAULT_TIMEOUT))\n'
        "    if text[-1:] in UNITS:\n"
        "        return int(text[:-1]) * UNITS[text[-1]]\n"
        "    return int(text)\n",
    )
)
TEST_PY = 'from src.config import UNITS\n\n\ndef test_units() -> None:\n    assert UNITS["m"] == 60\n'
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00"


def _scene_git(repo: Path, *args: str) -> None:
    env_args = ["-c", "user.name=Test User", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "-C", str(repo), *env_args, *args], check=True, capture_output=True)


def _work(workspace: GitWorkspace, settings: Settings, agent: str, subject: str, change: Any) -> dict[str, Any]:
    """Prepare the agent's worktree, let ``change(folder)`` edit it, and record the pull request."""
    request = Request(id=clock.new_id("r"), agent=agent, subject=subject, created_at=clock.now())
    config = settings.agents[agent]
    info = workspace.prepare(agent, config, request)
    change(info.cwd)
    run = RunRecord(
        id=clock.new_id(agent), agent=agent, request=request.id, kind="command", status=RunStatus.SUCCEEDED,
        cwd=str(info.cwd), branch=info.branch, worktree=str(info.worktree), base_commit=info.base_commit,
        summary=RunSummary(result_text=f"{subject}. Done."),
    )
    pull = workspace.finish(run, request, config)
    assert pull is not None
    return pull


def _alpha_change(folder: Path) -> None:
    (folder / "src" / "config.py").write_text(CONFIG_PY_NEW)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_config.py").write_text(TEST_PY)
    (folder / "docs" / "guide").mkdir(parents=True)
    (folder / "docs" / "old name.md").rename(folder / "docs" / "guide" / "settings.md")
    (folder / "logo.png").write_bytes(PNG)
    (folder / "legacy.txt").unlink()
    script = folder / "run.sh"
    script.write_text("#!/bin/sh\nexec python -m src.config \"$@\"\n")
    script.chmod(0o755)


def review_scene(tmp_path: Path, monkeypatch: Any) -> tuple[Path, Settings]:
    """Three pull requests in a repository called ``repo``: open with a failing check, a conflict, merged.

    Call with the clock frozen; git identity, dates and config come from ``monkeypatch``. Check
    durations are set to fixed values afterwards, because real runs take a different time on
    every machine.
    """
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test User")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
        monkeypatch.setenv(f"GIT_{role}_DATE", GIT_DATE)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = tmp_path / "repo"
    repo.mkdir()
    _scene_git(repo, "init", "-q", "-b", "main")
    _scene_git(repo, "config", "core.autocrlf", "false")
    files = {
        "README.md": "# sample\n\nA sample project.\n",
        "src/config.py": CONFIG_PY,
        "docs/old name.md": "# Settings\n\nEvery setting, one by one.\n",
        "legacy.txt": "old\n",
        "run.sh": "#!/bin/sh\nexec python -m src.config\n",
    }
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _scene_git(repo, "add", ".")
    _scene_git(repo, "commit", "-q", "-m", "Initial commit")
    # Checks found on PATH, so the command column reads the same on every machine.
    passing = "sh -c 'echo lint ok'"
    failing = "sh -c 'echo \"test_units FAILED: 60 != 61\"; echo \"1 failed, 3 passed\"; exit 1'"
    settings = Settings(
        agents={
            "alpha": AgentConfig(kind="command", command=["true"], checks=[passing, failing]),
            "beta": AgentConfig(kind="command", command=["true"], checks=[]),
            "gamma": AgentConfig(kind="command", command=["true"], checks=[passing]),
        }
    )
    paths = Paths(repo)
    paths.ensure()
    workspace = GitWorkspace(repo, paths, settings)
    _work(workspace, settings, "alpha", "Accept units in timeouts", _alpha_change)
    _work(workspace, settings, "beta", "Reword the README", lambda f: (f / "README.md").write_text("# Sample\n\nA small sample project.\n"))
    _work(workspace, settings, "gamma", "Fix the settings heading", lambda f: (f / "docs" / "old name.md").write_text("# All settings\n\nEvery setting, one by one.\n"))
    (repo / "README.md").write_text("# sample project\n\nA sample project.\n")
    _scene_git(repo, "commit", "-q", "-am", "Edit the README title")
    assert merge_pull(repo, paths, settings, "2")["reason"] == "conflict"
    assert merge_pull(repo, paths, settings, "3")["merged"]
    store = PullStore(paths)
    for pull in store.list():
        for number, check in enumerate(pull.checks):
            check.duration = 0.4 + number
        store.save(pull)
    return repo, settings


def frozen_review_app(repo: Path, settings: Settings) -> AipassApp:
    """The cockpit over a recorded snapshot of idle agents, rendering once without timers."""
    agents = {name: AgentState(name=name, kind="command", status=AgentStatus.IDLE) for name in settings.agents}
    source = RecordedSource(repo, settings, Snapshot(agents=agents, requests=[], runs={}))
    return create_app(repo, settings, source, frozen=True, low_bandwidth=False)


def stored_pull(repo: Path, pull_id: str = "1") -> PullRequest:
    return PullStore(Paths(repo)).load(pull_id)


def stored_pulls(repo: Path) -> list[PullRequest]:
    return PullStore(Paths(repo)).list()
