"""Reading a finished run's last events back from events.jsonl, and telling runs of agents apart."""

from __future__ import annotations

import json
from pathlib import Path

from aipass_tui.core import orchestrator as orchestrator_module
from aipass_tui.core import recovery
from aipass_tui.core.models import Event, EventKind


def test_tail_skips_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(Event(EventKind.TEXT, f"line {n}").to_dict()) for n in range(10)]
    path.write_text("\n".join(lines) + "\n" + '{"kind": "text", "text": "torn')
    events = recovery._tail_events(path, 3)
    assert [event.text for event in events] == ["line 8", "line 9"]


def test_tail_starts_at_whole_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(recovery, "TAIL_BYTES", 100)
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(Event(EventKind.RAW, f"row {n:03d}").to_dict()) + "\n" for n in range(50)))
    events = recovery._tail_events(path, 400)
    assert events
    assert events[-1].text == "row 049"
    assert all(event.text.startswith("row ") for event in events)


def test_tail_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert recovery._tail_events(tmp_path / "none.jsonl", 5) == []


def test_run_ids_of_similar_agent_names_stay_apart() -> None:
    assert orchestrator_module._run_agent("a-20261205-001122-abc123", "a")
    assert not orchestrator_module._run_agent("a-b-20261205-001122-abc123", "a")
    assert orchestrator_module._run_agent("a-b-20261205-001122-abc123", "a-b")
