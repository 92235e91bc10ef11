"""Pull request records: the model stored in ``.aipass/state/pulls/<id>.json`` and its store.

Ids are small integers as strings (``"1"``, ``"2"``, ...), so that ``aipass-tui pr merge 3``
is easy to type. New ids are allocated while the repo lock is held, which makes them unique
across processes.
"""

from __future__ import annotations

import logging
import re
import threading
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aipass_tui.core import clock
from aipass_tui.core.models import StateModel
from aipass_tui.core.store import Paths, StateError, read_model, write_json

log = logging.getLogger(__name__)


class PullStatus(StrEnum):
    OPEN = "open"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    MERGED = "merged"
    CLOSED = "closed"
    CONFLICT = "conflict"


PULL_WRITE_LOCK = threading.RLock()
"""Taken around every read-modify-write of a pull request record in this process.

Recording a run's pull request happens on a worker thread while review commands run on the
orchestrator's thread; both write the same files, and only one process writes state.
"""

ACTIVE_STATUSES = frozenset({PullStatus.OPEN, PullStatus.CHANGES_REQUESTED, PullStatus.APPROVED, PullStatus.CONFLICT})


class PullFile(BaseModel):
    """One changed file of a pull request, as listed by ``git diff --raw --numstat``."""

    model_config = ConfigDict(extra="ignore")

    path: str
    old_path: str | None = None
    status: str
    binary: bool = False
    additions: int = 0
    deletions: int = 0
    old_mode: str | None = None
    new_mode: str | None = None
    mode_change: str | None = None
    blob: str | None = None
    """Content id in the head commit; a viewed mark stores it, so the mark resets when the file changes again."""
    similarity: int | None = None


class CheckResult(BaseModel):
    """The result of one configured check run in the worktree."""

    model_config = ConfigDict(extra="ignore")

    command: str
    status: Literal["passed", "failed", "timed_out", "error"]
    exit_code: int | None = None
    duration: float = 0.0
    """Seconds the check ran."""
    log: str | None = None
    """Full output, relative to ``.aipass/state/pulls/``."""
    output_tail: str = ""
    """The last part of the output (at most 4,000 characters)."""
    message: str | None = None
    """Reason the check could not run or was stopped."""


class ReviewComment(BaseModel):
    """A review comment on the pull request, a file, a line or a hunk."""

    model_config = ConfigDict(extra="ignore")

    id: int
    body: str
    path: str | None = None
    line: int | None = None
    """Line number on ``side``; None for a comment on the whole file or pull request."""
    side: Literal["new", "old"] = "new"
    hunk: str | None = None
    """Hunk header the comment refers to, for a comment on a hunk."""
    author: str = "user"
    created_at: float
    sent: bool = False
    """True once the comment went back to the agent in a request."""


class PullRequest(StateModel):
    """A pull request: an agent's branch waiting for review and merge."""

    id: str
    agent: str
    request: str
    """Id of the request that produced the branch."""
    requests: list[str] = Field(default_factory=list)
    """Every request that produced or updated the branch, oldest first."""
    run: str | None = None
    runs: list[str] = Field(default_factory=list)
    branch: str
    target: str
    """Branch the pull request merges into."""
    base: str
    """Merge base of the branch and the target when the pull request was recorded or updated."""
    head: str
    title: str
    body: str = ""
    files: list[PullFile] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    status: PullStatus = PullStatus.OPEN
    comments: list[ReviewComment] = Field(default_factory=list)
    viewed: dict[str, str] = Field(default_factory=dict)
    """Path -> blob id of the content the user marked as viewed."""
    violations: list[str] = Field(default_factory=list)
    """Changed paths outside the globs the plan assigned to the task."""
    plan_task: str | None = None
    """The plan task (``<plan-id>:<task-id>``) this pull request delivers, if any."""
    conflict_files: list[str] = Field(default_factory=list)
    merge_commit: str | None = None
    message: str | None = None
    """The last problem or outcome to show the user (a refused merge, a conflict)."""
    created_at: float
    updated_at: float
    merged_at: float | None = None

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)

    @property
    def checks_summary(self) -> str:
        """``"2/3 passed"``, or ``"none"`` without checks."""
        if not self.checks:
            return "none"
        passed = sum(1 for c in self.checks if c.status == "passed")
        return f"{passed}/{len(self.checks)} passed"

    def is_viewed(self, path: str) -> bool:
        """Tell whether ``path`` is marked viewed at its current content."""
        current = next((f.blob for f in self.files if f.path == path), None)
        return current is not None and self.viewed.get(path) == current

    def record(self) -> dict[str, Any]:
        """Return the JSON-ready record."""
        return self.model_dump(mode="json")


class PullNotFound(LookupError):
    """No pull request has the id; the message names it."""


_ID = re.compile(r"#?(\d{1,9})")
_USED_NAME = re.compile(r"(\d+)(?:\.json|$)")


def normalize_id(value: str) -> str:
    """Return the canonical id for ``"3"``, ``"#3"`` or ``"03"``; raise ValueError for anything else."""
    match = _ID.fullmatch(str(value).strip())
    if match is None:
        raise ValueError(f"invalid pull request id {value!r}: use the number shown by 'aipass-tui pr list', for example 3")
    return str(int(match.group(1)))


class PullStore:
    """Reads and writes the pull request files of one repository."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.problems: list[str] = []
        """Messages about unreadable pull request files met by ``list()`` (each was moved aside)."""

    @property
    def folder(self) -> Path:
        return self.paths.pulls

    def path(self, pull_id: str) -> Path:
        return self.folder / f"{normalize_id(pull_id)}.json"

    def artifacts(self, pull_id: str) -> Path:
        """Return the folder of a pull request's check logs."""
        return self.folder / normalize_id(pull_id)

    def load(self, pull_id: str) -> PullRequest:
        """Return pull request ``pull_id``; raise PullNotFound or ValueError for a bad id."""
        pull = read_model(self.path(pull_id), PullRequest)
        if pull is None:
            raise PullNotFound(f"pull request {pull_id} not found: 'aipass-tui pr list' shows the existing ones")
        return pull

    def save(self, pull: PullRequest) -> None:
        write_json(self.path(pull.id), pull)

    def ids(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        numbers = [int(p.stem) for p in self.folder.glob("*.json") if p.stem.isdigit()]
        return [str(n) for n in sorted(numbers)]

    def list(self) -> list[PullRequest]:
        """Return every readable pull request, oldest first.

        An unreadable file is moved aside by the reader, logged, and named in ``problems``.
        """
        pulls: list[PullRequest] = []
        for pull_id in self.ids():
            try:
                pull = read_model(self.path(pull_id), PullRequest)
            except StateError as exc:
                log.error("skipped pull request %s: %s", pull_id, exc)
                self.problems.append(str(exc))
                continue
            if pull is not None:
                pulls.append(pull)
        return pulls

    def next_id(self) -> str:
        """Return an id that no record, check-log folder or moved-aside record uses (call with the repo lock held)."""
        used = [0]
        if self.folder.is_dir():
            for entry in self.folder.iterdir():
                match = _USED_NAME.match(entry.name)
                if match:
                    used.append(int(match.group(1)))
        return str(max(used) + 1)

    def find_active(self, branch: str) -> PullRequest | None:
        """Return the pull request of ``branch`` that is not merged or closed, if any."""
        for pull in reversed(self.list()):
            if pull.branch == branch and pull.status in ACTIVE_STATUSES:
                return pull
        return None


def touch(pull: PullRequest) -> None:
    pull.updated_at = clock.now()
