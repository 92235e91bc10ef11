"""Run workspaces: the interface between the orchestrator and the git flow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aipass_tui.config import AgentConfig
from aipass_tui.core.models import Request, RunRecord


@dataclass
class WorkspaceInfo:
    """The folder a run starts in, and its branch and worktree when it has them."""

    cwd: Path
    branch: str | None = None
    worktree: Path | None = None
    base_commit: str | None = None


class WorkspaceError(Exception):
    """Failure to prepare a run's workspace; the message gives the reason and what to do."""


class Workspace(Protocol):
    def prepare(self, agent: str, config: AgentConfig, request: Request) -> WorkspaceInfo:
        """Return the folder for a run of ``request`` (creating a worktree and branch if needed)."""
        ...

    def finish(self, run: RunRecord, request: Request, config: AgentConfig) -> dict[str, Any] | None:
        """Handle a finished run's changes; return the pull request record, or None without changes.

        Called on a worker thread, never on the orchestrator's tick, because checks may take minutes.
        """
        ...


class SharedWorkspace:
    """Every run works in the repository folder itself, and no pull request is recorded."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo

    def prepare(self, agent: str, config: AgentConfig, request: Request) -> WorkspaceInfo:
        return WorkspaceInfo(cwd=self.repo)

    def finish(self, run: RunRecord, request: Request, config: AgentConfig) -> dict[str, Any] | None:
        return None
