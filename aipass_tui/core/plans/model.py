"""The plan file's schema: a plan has phases, a phase has tasks, a task names an agent and files."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# A plan id is the "<PREFIX>-<NNNN>" part of the file name. A file named otherwise uses its stem.
PLAN_FILE_RE = re.compile(r"^(?P<prefix>[A-Z][A-Z0-9]*)-(?P<number>\d{4,})(?:_(?P<slug>.*))?$")
PLAN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TASK_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Review(StrEnum):
    MANUAL = "manual"
    AUTO = "auto"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Task(_Strict):
    """``[[phases.tasks]]``: one request for one agent, limited to some files."""

    id: str
    """Unique in the plan; other tasks name it in ``depends_on``."""
    agent: str
    """A configured agent (``[agents.<name>]`` in ``.aipass/config.toml``)."""
    title: str
    """One line: the subject of the request and of the pull request."""
    prompt: str
    """The instructions for the agent, sent as the body of the request."""
    files: list[str]
    """Globs relative to the repository root of the files the task may change."""
    depends_on: list[str] = Field(default_factory=list)
    """Tasks that must be merged (or skipped) before this one starts."""
    checks: list[str] | None = None
    """Commands that replace the configured checks for this task's pull request."""
    review: Literal["manual", "auto"] = "manual"
    """``manual``: a person merges the pull request. ``auto``: it is merged when its checks pass."""


class Phase(_Strict):
    """``[[phases]]``: tasks that run in parallel. Phases run one after the other."""

    name: str
    goal: str
    tasks: list[Task]


class Plan(_Strict):
    """A whole plan file."""

    title: str
    goal: str
    success_criteria: list[str] = Field(default_factory=list)
    phases: list[Phase]

    def tasks(self) -> list[tuple[int, Phase, Task]]:
        """Return every task with its phase index, in file order."""
        return [(index, phase, task) for index, phase in enumerate(self.phases) for task in phase.tasks]

    def task(self, task_id: str) -> tuple[int, Phase, Task] | None:
        for entry in self.tasks():
            if entry[2].id == task_id:
                return entry
        return None


def plan_id_for(path: Path) -> str:
    """Return the plan id of a plan file: ``FPLAN-0003`` for ``FPLAN-0003_login-form.toml``."""
    match = PLAN_FILE_RE.match(path.stem)
    return f"{match['prefix']}-{match['number']}" if match else path.stem


def task_ref(plan_id: str, task_id: str) -> str:
    """Return the ``plan_task`` value of a request: ``<plan-id>:<task-id>``."""
    return f"{plan_id}:{task_id}"


def split_task_ref(ref: str) -> tuple[str, str]:
    """Split ``<plan-id>:<task-id>``. Raise ValueError naming the value when it is malformed."""
    plan_id, sep, task_id = ref.rpartition(":")
    if not sep or not plan_id or not task_id:
        raise ValueError(f"invalid plan task {ref!r}: expected '<plan-id>:<task-id>', for example 'FPLAN-0001:api'")
    return plan_id, task_id
