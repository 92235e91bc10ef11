"""Shared fixtures: real git repositories in temp folders and a real orchestrator."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator

import psutil
import pytest

FAKES = Path(__file__).parent / "fakes"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give every test a git identity, no user config and no inherited AIPASS_* settings."""
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.setenv("AIPASS_FAKE_PYTHON", sys.executable)
    for key in list(os.environ):
        if key.startswith("AIPASS_") and key != "AIPASS_FAKE_PYTHON":
            monkeypatch.delenv(key, raising=False)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with one commit on branch main."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("# sample\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "Initial commit")
    return path


def write_config(repo: Path, text: str) -> Path:
    """Write .aipass/config.toml (dedented) and return its path."""
    root = repo / ".aipass"
    root.mkdir(mode=0o700, exist_ok=True)
    config = root / "config.toml"
    config.write_text(textwrap.dedent(text))
    return config


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.02, message: str = "") -> object:
    """Poll ``predicate`` until it returns a true value or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message or predicate}")


@pytest.fixture
def orchestrators() -> Iterator[list]:
    """Collect orchestrators a test starts and close them (leaving runs stopped) at the end."""
    started: list = []
    yield started
    for orchestrator in started:
        try:
            orchestrator.close(stop_runs=True)
        except Exception:
            pass


def py_command(script: str) -> str:
    """Return a TOML argv list that runs a Python snippet with this interpreter."""
    import json

    return json.dumps([sys.executable, "-c", textwrap.dedent(script)])


def processes_of(run_id: str) -> list[psutil.Process]:
    """Return the live (not zombie) processes whose environment carries ``AIPASS_RUN_ID=run_id``."""
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("AIPASS_RUN_ID") == run_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found
