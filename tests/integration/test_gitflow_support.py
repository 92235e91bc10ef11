"""Helpers for the git flow tests: real repositories in tmp_path and runs made by hand.

The fixtures run with no user or system git config, so the code under test cannot depend on a
configured identity. Test repositories commit with an identity passed on the command line.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.gitflow import GitWorkspace
from aipass_tui.core.handlers import HandlerContext
from aipass_tui.core.models import Request, RunRecord, RunStatus, RunSummary
from aipass_tui.core.store import Paths
from aipass_tui.core.workspace import WorkspaceInfo

IDENTITY = ["-c", "user.name=User", "-c", "user.email=user@example.invalid", "-c", "commit.gpgsign=false"]


@pytest.fixture(autouse=True)
def no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "surrogateescape").strip()


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def commit(cwd: Path, message: str) -> str:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


@dataclass
class Env:
    repo: Path
    paths: Paths
    settings: Settings
    workspace: GitWorkspace

    def ctx(self) -> HandlerContext:
        return HandlerContext(self.paths, self.settings, None)

    def config(self, agent: str):
        return self.settings.agents[agent]


def make_settings(agents: list[str], **git_settings: Any) -> Settings:
    return Settings(
        agents={name: {"kind": "command", "command": ["true"]} for name in agents},
        git=git_settings,
    )


def make_env(tmp_path: Path, agents: list[str] = ["alpha", "beta"], files: dict[str, str] | None = None, **git_settings: Any) -> Env:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "core.autocrlf", "false")
    for name, text in (files or {"README.md": "readme\n", "src/app.py": "print('app')\n", "src/util.py": "x = 1\n"}).items():
        write(repo, name, text)
    commit(repo, "initial")
    paths = Paths(repo)
    paths.ensure()
    settings = make_settings(agents, **git_settings)
    return Env(repo, paths, settings, GitWorkspace(repo, paths, settings))


def make_request(agent: str, subject: str, body: str = "", branch: str | None = None, plan_task: str | None = None) -> Request:
    return Request(id=clock.new_id("r"), agent=agent, subject=subject, body=body, created_at=clock.now(), branch=branch, plan_task=plan_task)


def make_run(agent: str, request: Request, info: WorkspaceInfo, summary: str = "Done.") -> RunRecord:
    return RunRecord(
        id=clock.new_id(agent),
        agent=agent,
        request=request.id,
        kind="command",
        status=RunStatus.SUCCEEDED,
        cwd=str(info.cwd),
        branch=info.branch,
        worktree=str(info.worktree) if info.worktree else None,
        base_commit=info.base_commit,
        summary=RunSummary(result_text=summary),
    )


def agent_work(env: Env, agent: str, subject: str, files: dict[str, str | bytes], *, branch: str | None = None, summary: str = "Done.") -> dict[str, Any] | None:
    """Prepare a worktree, write ``files`` there as the agent would (uncommitted), and finish the run."""
    request = make_request(agent, subject, branch=branch)
    config = env.config(agent)
    info = env.workspace.prepare(agent, config, request)
    for name, text in files.items():
        write(info.cwd, name, text)
    return env.workspace.finish(make_run(agent, request, info, summary), request, config)


def test_support_ignores_global_config(tmp_path: Path) -> None:
    proc = subprocess.run(["git", "config", "--global", "--list"], cwd=tmp_path, capture_output=True)
    env = make_env(tmp_path)

    assert proc.stdout == b""
    assert git(env.repo, "log", "--format=%an", "-1") == "User"
