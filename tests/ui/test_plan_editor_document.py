"""Unit tests of the plan editor's document edits: layout and comments kept, references followed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aipass_tui.ui.plan_document import PlanDocument, StructureError, parse, text_edit, write_atomic

PLAN = '''\
# Top comment.
title = "T"  # kept
goal = "G"

[[phases]]
name = "One"
goal = "first"

[[phases.tasks]]
id = "a"
agent = "alpha"
title = "A"
prompt = """
Line one
"""
files = ["a/**"]
# comment at the end of task a

[[phases.tasks]]
id = "b"
agent = "beta"
title = "B"
prompt = "b"
files = ["b/**"]
depends_on = ["a"]

[[phases]]
name = "Two"
goal = "second"

[[phases.tasks]]
id = "c"
agent = "alpha"
title = "C"
prompt = "c"
files = ["c/**"]
depends_on = ["a", "b"]
'''


def ids(document: PlanDocument) -> list[list[str]]:
    return [[task.id for task in phase.tasks] for phase in document.outline()]


def test_value_edit_changes_one_line() -> None:
    document = PlanDocument(PLAN)
    assert document.set_task_field(0, 1, "title", "Bee")
    assert document.dumps() == PLAN.replace('title = "B"', 'title = "Bee"')
    assert not document.set_task_field(0, 1, "title", "Bee")


def test_plan_title_keeps_comment() -> None:
    document = PlanDocument(PLAN)
    document.set_plan_field("title", "New")
    assert 'title = "New"  # kept' in document.dumps()


def test_multiline_prompt_starts_own_line() -> None:
    document = PlanDocument(PLAN)
    document.set_task_field(0, 1, "prompt", 'first\nsecond "quoted"\n')
    text = document.dumps()
    assert 'prompt = """\nfirst\nsecond "quoted"\n"""' in text
    assert tomllib.loads(text)["phases"][0]["tasks"][1]["prompt"] == 'first\nsecond "quoted"\n'


def test_prompt_with_leading_newline_round_trips() -> None:
    document = PlanDocument(PLAN)
    document.set_task_field(0, 0, "prompt", "\nafter a blank line\n")
    assert tomllib.loads(document.dumps())["phases"][0]["tasks"][0]["prompt"] == "\nafter a blank line\n"


def test_default_fields_stay_unwritten() -> None:
    document = PlanDocument(PLAN)
    assert not document.set_task_field(0, 0, "review", "manual")
    assert "review" not in document.dumps()
    document.set_task_field(0, 1, "depends_on", [])
    assert tomllib.loads(document.dumps())["phases"][0]["tasks"][1].get("depends_on") is None


def test_form_cannot_set_id() -> None:
    with pytest.raises(ValueError, match="cannot set the task field 'id'"):
        PlanDocument(PLAN).set_task_field(0, 0, "id", "x")


def test_add_phase_and_tasks() -> None:
    document = PlanDocument(PLAN)
    index = document.add_phase(0)
    assert index == 1
    assert document.add_task(1, None, "beta") == 0
    assert document.add_task(1, 0, "beta") == 1
    assert ids(document) == [["a", "b"], ["task-4", "task-5"], ["c"]]
    data = tomllib.loads(document.dumps())
    assert data["phases"][1] == {
        "name": "Phase 2",
        "goal": "",
        "tasks": [
            {"id": "task-4", "agent": "beta", "title": "", "prompt": "", "files": []},
            {"id": "task-5", "agent": "beta", "title": "", "prompt": "", "files": []},
        ],
    }
    assert "\n\n[[phases]]\nname = \"Phase 2\"" in document.dumps()


def test_add_phase_to_empty_plan() -> None:
    document = PlanDocument('title = "T"\ngoal = "G"\n')
    document.add_phase(None, "First")
    document.add_task(0, None, "alpha")
    assert ids(document) == [["task-1"]]
    assert tomllib.loads(document.dumps())["phases"][0]["name"] == "First"


def test_move_task_across_phases() -> None:
    document = PlanDocument(PLAN)
    assert document.move_task(0, 1, 1) == (1, 0)
    assert ids(document) == [["a"], ["b", "c"]]
    assert document.move_task(1, 0, -1) == (0, 1)
    assert ids(document) == [["a", "b"], ["c"]]
    assert document.move_task(0, 0, -1) is None
    assert document.move_task(1, 0, 1) is None


def test_move_task_keeps_its_comment() -> None:
    document = PlanDocument(PLAN)
    document.move_task(0, 0, 1)
    text = document.dumps()
    assert ids(document) == [["b", "a"], ["c"]]
    assert text.index('id = "a"') < text.index("# comment at the end of task a")
    assert "# Top comment." in text


def test_move_phase() -> None:
    document = PlanDocument(PLAN)
    assert document.move_phase(1, -1) == 0
    assert ids(document) == [["c"], ["a", "b"]]
    assert document.move_phase(0, -1) is None
    tomllib.loads(document.dumps())


def test_duplicate_phase_remaps_inner_dependencies() -> None:
    document = PlanDocument(PLAN)
    assert document.duplicate_phase(0) == 1
    assert ids(document) == [["a", "b"], ["a-copy", "b-copy"], ["c"]]
    data = tomllib.loads(document.dumps())
    assert data["phases"][1]["name"] == "One (copy)"
    assert data["phases"][1]["tasks"][1]["depends_on"] == ["a-copy"]
    assert data["phases"][2]["tasks"][0]["depends_on"] == ["a", "b"]


def test_duplicate_task_twice() -> None:
    document = PlanDocument(PLAN)
    document.duplicate_task(0, 0)
    document.duplicate_task(0, 0)
    assert ids(document) == [["a", "a-copy-2", "a-copy", "b"], ["c"]]


def test_rename_task_follows_dependencies() -> None:
    document = PlanDocument(PLAN)
    assert document.rename_task(0, 0, "alpha-part") == ["b", "c"]
    data = tomllib.loads(document.dumps())
    assert data["phases"][1]["tasks"][0]["depends_on"] == ["alpha-part", "b"]


@pytest.mark.parametrize(
    ("new_id", "message"),
    [("b", "task id 'b' is already used"), ("has space", "invalid task id 'has space'"), ("", "invalid task id ''")],
)
def test_rename_task_rejects_bad_ids(new_id: str, message: str) -> None:
    document = PlanDocument(PLAN)
    with pytest.raises(ValueError, match=message):
        document.rename_task(0, 0, new_id)
    assert document.dumps() == PLAN


def test_rename_phase_rejects_empty_name() -> None:
    with pytest.raises(ValueError, match="empty phase name"):
        PlanDocument(PLAN).rename_phase(0, "  ")


def test_delete_task_drops_dependencies() -> None:
    document = PlanDocument(PLAN)
    assert document.delete_task(0, 0) == ["b", "c"]
    data = tomllib.loads(document.dumps())
    assert "depends_on" not in data["phases"][0]["tasks"][0]
    assert data["phases"][1]["tasks"][0]["depends_on"] == ["b"]


def test_delete_phase() -> None:
    document = PlanDocument(PLAN)
    assert document.delete_phase(0) == ["c"]
    assert ids(document) == [["c"]]
    assert "depends_on" not in tomllib.loads(document.dumps())["phases"][0]["tasks"][0]


def test_inline_phases_are_not_edited() -> None:
    document = PlanDocument('title = "T"\ngoal = "G"\nphases = [{name = "P", goal = "g", tasks = []}]\n')
    assert [phase.name for phase in document.outline()] == ["P"]
    with pytest.raises(StructureError, match=r"phases is written as an inline value: write each entry as a \[\[phases\]\] table"):
        document.add_phase(None)


def test_outline_of_odd_values() -> None:
    document = PlanDocument('title = 3\n[[phases]]\nname = ["x"]\n[[phases.tasks]]\nid = 7\n')
    assert document.outline()[0].name == ""
    assert document.outline()[0].tasks[0].id == ""
    assert document.task_fields(0, 0)["files"] == []
    assert document.plan_fields()["title"] == ""


def test_parse_rejects_invalid_toml() -> None:
    assert parse("title = ") is None
    assert parse(PLAN) is not None


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [("abcdef", "abXef", (2, 4, "X")), ("same", "same", None), ("", "new", (0, 0, "new")), ("aaa", "aaaa", (3, 3, "a"))],
)
def test_text_edit(old: str, new: str, expected: tuple[int, int, str] | None) -> None:
    assert text_edit(old, new) == expected
    if expected is not None:
        start, end, replacement = expected
        assert old[:start] + replacement + old[end:] == new


def test_write_atomic_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("old\n")
    path.chmod(0o640)
    write_atomic(path, "new\r\n")
    assert path.read_bytes() == b"new\r\n"
    assert path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["plan.toml"]


def test_write_atomic_failure_keeps_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text("old\n")
    with pytest.raises(TypeError):
        write_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.toml"]
