"""The models' detached copies: equal to deep copies, and sharing nothing that can change."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from aipass_tui.core.models import AgentState, Request, RunRecord, SubAgent, TodoItem


def shared_parts(original: Any, copy: Any, path: str = "") -> list[str]:
    """Return the paths of lists, dicts and models that ``copy`` shares with ``original``."""
    shared: list[str] = []
    if isinstance(original, (list, dict, BaseModel)) and original is copy:
        return [path or "(the object)"]
    if isinstance(original, BaseModel):
        for name in type(original).model_fields:
            shared += shared_parts(getattr(original, name), getattr(copy, name), f"{path}.{name}")
    elif isinstance(original, list):
        for index, (a, b) in enumerate(zip(original, copy)):
            shared += shared_parts(a, b, f"{path}[{index}]")
    elif isinstance(original, dict):
        for key in original:
            shared += shared_parts(original[key], copy[key], f"{path}[{key!r}]")
    return shared


def full_record() -> RunRecord:
    record = RunRecord(id="a-1", agent="a", request="r-1", kind="claude", argv=["claude", "-p"])
    record.summary.todo = [TodoItem(text="write tests")]
    record.summary.subagents = {"t1": SubAgent(id="t1", description="search")}
    record.summary.errors = ["rate limited"]
    record.summary.error_kinds = ["rate_limit"]
    return record


def test_run_record_copy_is_detached() -> None:
    record = full_record()
    copy = record.detached_copy()
    assert copy == record.model_copy(deep=True)
    assert shared_parts(record, copy) == []


def test_agent_state_copy_is_detached() -> None:
    state = AgentState(name="a", kind="claude", todo=[TodoItem(text="x")], subagents=[SubAgent(id="s")])
    copy = state.detached_copy()
    assert copy == state.model_copy(deep=True)
    assert shared_parts(state, copy) == []


def test_request_copy_is_detached() -> None:
    request = Request(id="r-1", agent="a", subject="s", created_at=1.0, duplicate_senders=["user"], duplicate_ids=["r-2"], runs=["a-1"])
    copy = request.detached_copy()
    assert copy == request.model_copy(deep=True)
    assert shared_parts(request, copy) == []


def test_changes_to_a_copy_stay_in_it() -> None:
    record = full_record()
    copy = record.detached_copy()
    copy.summary.todo[0].status = "completed"
    copy.summary.subagents["t1"].events = 5
    copy.argv.append("--verbose")
    assert record.summary.todo[0].status == "pending"
    assert record.summary.subagents["t1"].events == 0
    assert record.argv == ["claude", "-p"]
