"""Execution state of a plan, stored in ``.aipass/state/plans/<plan-id>.json``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from aipass_tui.core import clock
from aipass_tui.core.models import StateModel
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.store import CorruptStateError, Paths, StateError, read_model, write_json


class PlanStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABORTED = "aborted"


class TaskStatus(StrEnum):
    PENDING = "pending"  # not dispatched yet
    DISPATCHED = "dispatched"  # a request waits in the orchestrator's queue
    RUNNING = "running"  # the request's run is executing
    SUCCEEDED = "succeeded"  # the run succeeded; done unless its pull request still needs a merge
    FAILED = "failed"  # the run failed, or its pull request was closed, conflicted or failed its checks
    MERGED = "merged"  # its pull request was merged
    SKIPPED = "skipped"  # the user skipped it


class TaskState(BaseModel):
    """Progress of one task. ``requests`` lists the request of every attempt, oldest first."""

    model_config = ConfigDict(extra="ignore")

    id: str
    status: TaskStatus = TaskStatus.PENDING
    agent: str | None = None
    request: str | None = None
    run: str | None = None
    pull: str | None = None
    attempts: int = 0
    reason: str | None = None
    needs_merge: bool = False
    merge_requested: str | None = None
    files: list[str] = Field(default_factory=list)
    requests: list[str] = Field(default_factory=list)
    updated_at: float | None = None

    @property
    def done(self) -> bool:
        """Whether the task no longer holds up its phase or the tasks that depend on it."""
        if self.status in (TaskStatus.MERGED, TaskStatus.SKIPPED):
            return True
        return self.status == TaskStatus.SUCCEEDED and not self.needs_merge

    @property
    def open(self) -> bool:
        """Whether the task's request is in the orchestrator's queue or running."""
        return self.status in (TaskStatus.DISPATCHED, TaskStatus.RUNNING)


class PlanState(StateModel):
    """Progress of one plan: ``phase`` is the index of the phase being worked on."""

    plan: str
    path: str
    status: PlanStatus = PlanStatus.RUNNING
    phase: int = 0
    reason: str | None = None
    tasks: dict[str, TaskState] = Field(default_factory=dict)
    started_at: float = Field(default_factory=clock.now)
    updated_at: float | None = None
    finished_at: float | None = None

    def progress(self, task_ids: list[str]) -> tuple[int, int]:
        """Return how many of ``task_ids`` are done, and how many there are."""
        done = sum(1 for task_id in task_ids if task_id in self.tasks and self.tasks[task_id].done)
        return done, len(task_ids)


def state_path(paths: Paths, plan_id: str) -> Path:
    return paths.plan_state / f"{plan_id}.json"


def load_state(paths: Paths, plan_id: str) -> PlanState | None:
    """Read a plan's execution state. Raise PlanError when the file is unreadable (it is moved aside)."""
    path = state_path(paths, plan_id)
    try:
        return read_model(path, PlanState)
    except CorruptStateError as exc:
        raise PlanError(
            f"{exc}. Run the plan again: its progress is rebuilt from the orchestrator's "
            "requests and pull requests of its tasks",
            1,
        ) from exc
    except StateError as exc:
        raise PlanError(str(exc), 1) from exc


def save_state(paths: Paths, state: PlanState) -> None:
    state.updated_at = clock.now()
    write_json(state_path(paths, state.plan), state)
