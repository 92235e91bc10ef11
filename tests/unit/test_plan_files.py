"""Plan files: finding a plan by id, listing plans, task lookups and editing a task in place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.models import Request
from aipass_tui.core.plans import (
    PlanError,
    PlanInvalid,
    allowed_globs,
    create_plan,
    edit_task,
    list_plans,
    resolve_plan,
    task_checks,
    task_globs,
)
from aipass_tui.core.plans.state import PlanState, TaskState, TaskStatus, save_state
from aipass_tui.core.store import Paths

AGENTS = {"alice": {"kind": "command", "command": ["true"]}, "bob": {"kind": "command", "command": ["true"]}}

PLAN = '''\
# A comment the edit must keep.
title = "Login"
goal = "Users sign in"

[[phases]]
name = "Build"
goal = "It works"

[[phases.tasks]]
id = "api"     # the endpoint
agent = "alice"
title = "API"
prompt = "Add the endpoint"
files = ["src/api/**"]
checks = ["pytest -q tests/test_api.py"]

[[phases.tasks]]
id = "ui"
agent = "bob"
title = "UI"
prompt = "Add the form"
files = ["src/ui/**"]
'''


@pytest.fixture
def paths(repo: Path) -> Paths:
    paths = Paths(repo)
    paths.ensure()
    return paths


@pytest.fixture
def settings() -> Settings:
    return Settings(agents=AGENTS)


@pytest.fixture
def plan_file(paths: Paths) -> Path:
    path = paths.plans / "FPLAN-0007_login.toml"
    path.write_text(PLAN)
    return path


def request(plan_task: str | None) -> Request:
    return Request(id="r-1", agent="alice", subject="s", created_at=clock.now(), plan_task=plan_task)


@pytest.mark.parametrize("ref", ["FPLAN-0007", "fplan-7", "FPLAN-7", "FPLAN-0007_login"])
def test_resolve_by_id(paths: Paths, plan_file: Path, ref: str) -> None:
    assert resolve_plan(paths, ref) == plan_file.resolve()


def test_resolve_by_path(paths: Paths, plan_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(paths.repo)
    assert resolve_plan(paths, ".aipass/plans/FPLAN-0007_login.toml") == plan_file.resolve()
    outside = tmp_path / "elsewhere.toml"
    outside.write_text(PLAN)
    assert resolve_plan(paths, str(outside)) == outside.resolve()


def test_resolve_unknown_id(paths: Paths, plan_file: Path) -> None:
    with pytest.raises(PlanError) as caught:
        resolve_plan(paths, "MPLAN-0001")
    assert str(caught.value) == f"plan 'MPLAN-0001' not found in {paths.plans}: run 'aipass-tui plan list' to see the plans"
    assert caught.value.exit_code == 2


def test_resolve_missing_path(paths: Paths) -> None:
    with pytest.raises(PlanError) as caught:
        resolve_plan(paths, "plans/missing.toml")
    assert str(caught.value) == "plan file plans/missing.toml not found: check the path, or give a plan id such as FPLAN-0001"


def test_resolve_ambiguous_id(paths: Paths, plan_file: Path) -> None:
    (paths.plans / "FPLAN-0007_copy.toml").write_text(PLAN)
    with pytest.raises(PlanError) as caught:
        resolve_plan(paths, "FPLAN-0007")
    assert "matches several files (FPLAN-0007_copy.toml, FPLAN-0007_login.toml)" in str(caught.value)


def test_list_plans(paths: Paths, settings: Settings, plan_file: Path) -> None:
    create_plan(paths, settings, "MPLAN", "Big")
    (paths.plans / "FPLAN-0008_broken.toml").write_text('title = "Broken"\n')
    state = PlanState(plan="FPLAN-0007", path=str(plan_file), tasks={"api": TaskState(id="api", status=TaskStatus.MERGED)})
    save_state(paths, state)
    rows = {row.plan_id: row for row in list_plans(paths, settings)}
    assert list(rows) == ["FPLAN-0007", "FPLAN-0008", "MPLAN-0001"]
    assert (rows["FPLAN-0007"].status, rows["FPLAN-0007"].done, rows["FPLAN-0007"].total) == ("running", 1, 2)
    assert (rows["FPLAN-0008"].title, rows["FPLAN-0008"].problems) == ("Broken", 2)
    assert rows["MPLAN-0001"].status == "not started"


def test_task_globs_from_plan_then_from_state(paths: Paths, settings: Settings, plan_file: Path) -> None:
    assert task_globs(paths, settings, "FPLAN-0007:api") == ["src/api/**"]
    state = PlanState(plan="FPLAN-0007", path=str(plan_file), tasks={"api": TaskState(id="api", request="r-1", files=["src/old/**"])})
    save_state(paths, state)
    assert task_globs(paths, settings, "FPLAN-0007:api") == ["src/old/**"]
    assert task_globs(paths, settings, "FPLAN-0007:nope") is None
    assert task_globs(paths, settings, "MPLAN-0099:api") is None


def test_task_globs_rejects_malformed_ref(paths: Paths, settings: Settings) -> None:
    with pytest.raises(ValueError) as caught:
        task_globs(paths, settings, "no-colon")
    assert str(caught.value) == "invalid plan task 'no-colon': expected '<plan-id>:<task-id>', for example 'FPLAN-0001:api'"


def test_task_checks(paths: Paths, settings: Settings, plan_file: Path) -> None:
    assert task_checks(paths, settings, "FPLAN-0007:api") == ["pytest -q tests/test_api.py"]
    assert task_checks(paths, settings, "FPLAN-0007:ui") is None


def test_allowed_globs_for_the_git_flow(paths: Paths, settings: Settings, plan_file: Path) -> None:
    lookup = allowed_globs(paths, settings)
    assert lookup(request(None)) is None
    assert lookup(request("FPLAN-0007:ui")) == ["src/ui/**"]
    assert lookup(request("FPLAN-0007:gone")) == []
    assert lookup(request("garbage")) == []


def test_edit_task_keeps_comments(paths: Paths, settings: Settings, plan_file: Path) -> None:
    edit_task(plan_file, "api", {"prompt": "Add the endpoint\nwith rate limiting", "files": ["src/api/**", "src/limits.py"]}, settings, paths.repo)
    text = plan_file.read_text()
    assert text.startswith("# A comment the edit must keep.\n")
    assert 'id = "api"     # the endpoint' in text
    assert 'files = ["src/api/**", "src/limits.py"]' in text
    assert '"""Add the endpoint\nwith rate limiting"""' in text


def test_edit_task_rejects_invalid_result(paths: Paths, settings: Settings, plan_file: Path) -> None:
    with pytest.raises(PlanInvalid) as caught:
        edit_task(plan_file, "api", {"agent": "carol"}, settings, paths.repo)
    assert "unknown agent 'carol'" in str(caught.value)
    assert plan_file.read_text() == PLAN


def test_edit_task_rejects_unknown_task_and_field(paths: Paths, settings: Settings, plan_file: Path) -> None:
    with pytest.raises(PlanError) as missing:
        edit_task(plan_file, "nope", {"prompt": "x"}, settings, paths.repo)
    assert str(missing.value) == f"task 'nope' not found in {plan_file}: check the id with 'aipass-tui plan show'"
    with pytest.raises(PlanError) as field:
        edit_task(plan_file, "api", {"id": "x"}, settings, paths.repo)
    assert str(field.value) == "cannot edit id of a task: editable fields are agent, title, prompt, files, depends_on, checks, review"
    assert plan_file.read_text() == PLAN


def test_edit_task_removes_a_field(paths: Paths, settings: Settings, plan_file: Path) -> None:
    edit_task(plan_file, "api", {"checks": None}, settings, paths.repo)
    assert "checks" not in plan_file.read_text()


def test_state_file_is_plain_json(paths: Paths, plan_file: Path) -> None:
    save_state(paths, PlanState(plan="FPLAN-0007", path=str(plan_file)))
    data = json.loads((paths.plan_state / "FPLAN-0007.json").read_text())
    assert data["schema_version"] == 1
    assert data["status"] == "running"
