"""``aipass-tui demo``: a sample git repository with scripted demo agents and queued requests."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from aipass_tui.core.orchestrator import new_request_message
from aipass_tui.core.store import Paths, write_json

SAMPLE_FILES = {
    "README.md": "# calc\n\nA tiny calculator used by the aipass-tui demo.\n",
    "src/calc.py": (
        "def add(a, b):\n    return a + b\n\n\n"
        "def divide(a, b):\n    return a / b\n"
    ),
    "tests/test_calc.py": (
        "from src.calc import add, divide\n\n\n"
        "def test_add():\n    assert add(2, 3) == 5\n\n\n"
        "def test_divide():\n    assert divide(6, 3) == 2\n"
    ),
}

ROLES = ("planner", "coder", "tester", "docs")

REQUESTS = [
    ("planner", "Plan the zero-division fix", "Read the code and write a short plan."),
    ("coder", "Handle division by zero in divide()", "Raise ValueError with a clear message."),
    ("tester", "Cover the error branch of divide()", ""),
    ("docs", "Add a usage example to the README", ""),
    ("coder", "Add a docstring to add()", ""),
]


def create_demo_repo(path: Path | None = None) -> Path:
    """Create the demo repository (a new temporary folder by default) and return its path."""
    repo = Path(path) if path else Path(tempfile.mkdtemp(prefix="aipass-demo-"))
    repo.mkdir(parents=True, exist_ok=True)
    if any(repo.iterdir()):
        raise FileExistsError(f"{repo} is not empty: pass an empty or new folder to --path")
    _git(repo, "init", "-q", "-b", "main")
    for name, text in SAMPLE_FILES.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=aipass demo", "-c", "user.email=demo@aipass.local", "commit", "-q", "-m", "Add the demo calculator")
    root = repo / ".aipass"
    root.mkdir(mode=0o700)
    (repo / ".git" / "info").mkdir(exist_ok=True)
    with open(repo / ".git" / "info" / "exclude", "a", encoding="utf-8") as handle:
        handle.write(".aipass/\n")
    (root / "config.toml").write_text(_config_text(), encoding="utf-8")
    paths = Paths(repo)
    paths.ensure()
    for agent, subject, body in REQUESTS:
        message = new_request_message(agent, subject, body, sender="demo")
        write_json(paths.inbox / f"{message['id']}.json", message)
    return repo


def _config_text() -> str:
    lines = [
        "# Demo configuration: the agents are scripted programs, not AI models.",
        "",
        "[limits]",
        "max_parallel = 4",
        "start_rate = 2.0",
        "",
        "[git]",
        'merge_strategy = "merge"',
    ]
    for role in ROLES:
        # The module, not its file path: reinstalling the package (pip install -e) moves the file,
        # and a demo repository made before must keep working.
        argv = [sys.executable, "-m", "aipass_tui.demo_agents.scripted_agent", role, "{prompt}"]
        lines += [
            "",
            f"[agents.{role}]",
            'kind = "command"',
            f"command = {json.dumps(argv)}",
            'stall_after = "30s"',
            f'env = {{ GIT_AUTHOR_NAME = "{role} (demo)", GIT_AUTHOR_EMAIL = "{role}@aipass.local", '
            f'GIT_COMMITTER_NAME = "{role} (demo)", GIT_COMMITTER_EMAIL = "{role}@aipass.local" }}',
        ]
    return "\n".join(lines) + "\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
