"""Snapshots of the plan editor with problems and of a running plan, at 80×24 with the clock frozen."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import textual.constants
from textual.pilot import Pilot

from aipass_tui.core.plans import TaskState, TaskStatus, create_plan
from aipass_tui.core.plans.state import PlanState, PlanStatus, save_state
from aipass_tui.core.pulls import PullRequest, PullStatus, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.ui.screens.plan_editor import PlanEditorScreen
from aipass_tui.ui.screens.plan_run import PlanRunScreen
from tests.ui import scenes
from tests.ui.conftest import wait_for


@pytest.fixture(autouse=True)
def true_color_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render in true colour whatever TERM the tests run under, so snapshots match on every machine.

    With 16 colours the footer and some tables restyle themselves (tests/ui/test_standard_colors.py).
    """
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


SIZE = (80, 24)
PLAN = '''\
title = "Add a login form"
goal = "Users sign in with a password"

[[phases]]
name = "Build"
goal = "The form and its API work"

[[phases.tasks]]
id = "api"
agent = "claude-a"
title = "Add the login endpoint"
prompt = "Add POST /login"
files = ["src/api/**"]
review = "auto"

[[phases.tasks]]
id = "form"
agent = "codex-b"
title = "Add the login form"
prompt = "Add the form"
files = ["src/web/**"]

[[phases.tasks]]
id = "tests"
agent = "gemini-c"
title = "Test the login"
prompt = "Cover both"
files = ["tests/**"]
depends_on = ["api"]

[[phases]]
name = "Document"
goal = "Users know how to sign in"

[[phases.tasks]]
id = "docs"
agent = "claude-a"
title = "Document the login"
prompt = "Write docs/login.md"
files = ["docs/**"]
'''


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    """A folder named ``repo``, so titles and file names read the same in every test."""
    path = tmp_path / "repo"
    path.mkdir()
    return path


def _settings():
    return scenes.settings_for({"claude-a": ("claude", "sonnet"), "codex-b": ("codex", None), "gemini-c": ("gemini", None)})


def test_editor_with_problems(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    settings = _settings()
    created = create_plan(Paths(repo_dir), settings, "FPLAN", "Add a login form", date="2026-05-28")
    text = created.path.read_text(encoding="utf-8")
    # Every placeholder but the selected task's title is filled in, so the list shows both kinds of problem.
    text = re.sub(r"<([^<>]+)>", lambda match: match.group(0) if match.group(1) == "Add tests for the feature" else match.group(1), text)
    text = text.replace('agent = "codex-b"', 'agent = "ghost"', 1).replace('files = ["tests/**"]', 'files = ["/etc/**"]')
    created.path.write_text(text, encoding="utf-8")
    app = scenes.app_for(repo_dir, settings, scenes.Snapshot(agents={}, requests=[], runs={}))

    async def open_editor(pilot: Pilot) -> None:
        editor = PlanEditorScreen(created.path)
        await pilot.app.push_screen(editor)
        await wait_for(pilot, lambda: editor.loaded and editor.checked_text == editor.source.text, message="checked")
        await pilot.press("down", "down", "down")
        await pilot.pause(0.1)
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_editor)


def test_running_plan(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    settings = _settings()
    paths = Paths(repo_dir)
    paths.plans.mkdir(parents=True)
    plan_path = paths.plans / "FPLAN-0003_add-a-login-form.toml"
    plan_path.write_text(PLAN, encoding="utf-8")
    store = PullStore(paths)
    paths.pulls.mkdir(parents=True)
    t0 = scenes.T0
    common = {"branch": "aipass/x", "target": "main", "base": "b" * 40, "head": "c" * 40, "created_at": t0 - 300, "updated_at": t0 - 60}
    store.save(PullRequest(id="1", agent="claude-a", request="r-1", title="Add the login endpoint", status=PullStatus.MERGED, **common))
    store.save(PullRequest(id="2", agent="codex-b", request="r-2", title="Add the login form", violations=["README.md"], **common))
    save_state(paths, PlanState(
        plan="FPLAN-0003", path=str(plan_path), status=PlanStatus.RUNNING, phase=0, started_at=t0 - 600,
        tasks={
            "api": TaskState(id="api", status=TaskStatus.MERGED, agent="claude-a", request="r-1", run="run-1", pull="1", attempts=1),
            "form": TaskState(id="form", status=TaskStatus.SUCCEEDED, agent="codex-b", request="r-2", run="run-2", pull="2",
                              attempts=2, needs_merge=True),
            "tests": TaskState(id="tests", status=TaskStatus.RUNNING, agent="gemini-c", request="r-3", run="run-3", attempts=1),
            "docs": TaskState(id="docs", agent="claude-a"),
        },
    ))
    app = scenes.app_for(repo_dir, settings, scenes.Snapshot(agents={}, requests=[], runs={}))

    async def open_progress(pilot: Pilot) -> None:
        screen = PlanRunScreen(plan_path)
        await pilot.app.push_screen(screen)
        await wait_for(pilot, lambda: screen.progress is not None, message="progress read")
        await pilot.press("down")
        await pilot.pause(0.1)
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_progress)
