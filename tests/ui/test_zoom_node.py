"""The zoom screen names the cluster node of the viewed run, in its header and in the run history.

Rendered from recorded snapshots with a frozen clock. Local runs show no node at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import textual.constants
from textual.pilot import Pilot
from textual.widgets import DataTable, Label

from aipass_tui.config import AgentConfig, Settings
from aipass_tui.core.models import AgentState, AgentStatus, RunRecord, RunStatus
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.ui.app import AipassApp
from aipass_tui.ui.screens.zoom import ZoomScreen
from aipass_tui.ui.widgets.transcript_view import TranscriptView
from tests.ui import scenes
from tests.ui.conftest import wait_for

CURRENT = "claude-a-20260528-201321-000009"
EARLIER_ON_NODE = "claude-a-20260528-190000-000004"
EARLIER_LOCAL = "claude-a-20260528-180000-000002"


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def true_color_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render in true colour whatever TERM the tests run under, so snapshots match on every machine.

    Textual passes ``textual.constants.COLOR_SYSTEM`` (``TEXTUAL_COLOR_SYSTEM``) to the app's
    console, and with 16 colours some widgets restyle themselves (tests/ui/test_standard_colors.py).
    """
    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "truecolor")


def history_runs(current_node: str | None, earlier_node: str | None) -> list[RunRecord]:
    """Return the running run, a finished run on ``earlier_node`` and a finished local run, newest first."""
    return [
        RunRecord(id=CURRENT, agent="claude-a", request="r-20260528-201320-000008", kind="claude",
                  status=RunStatus.RUNNING, runner="ray" if current_node else "local", node=current_node,
                  started_at=scenes.T0 - 320),
        RunRecord(id=EARLIER_ON_NODE, agent="claude-a", request="r-20260528-185959-000003", kind="claude",
                  status=RunStatus.SUCCEEDED, runner="ray" if earlier_node else "local", node=earlier_node,
                  started_at=scenes.T0 - 5000, ended_at=scenes.T0 - 4400, message="finished"),
        RunRecord(id=EARLIER_LOCAL, agent="claude-a", request="r-20260528-175959-000001", kind="claude",
                  status=RunStatus.FAILED, started_at=scenes.T0 - 9000, ended_at=scenes.T0 - 8950,
                  message="claude failed: API Error: 529 overloaded"),
    ]


def zoom_app(repo: Path, *, current_node: str | None, earlier_node: str | None,
             record_has_node: bool = True) -> AipassApp:
    """Build a frozen cockpit with one running claude agent and three runs in its history.

    ``record_has_node=False`` leaves the node out of the current run's record in the snapshot, so
    only the agent's state carries it, as right after a cluster run started.
    """
    settings = Settings(agents={"claude-a": AgentConfig(kind="claude", model="opus", runner="ray")})  # type: ignore[arg-type]
    history = history_runs(current_node, earlier_node)
    current = history[0] if record_has_node else history[0].model_copy(update={"node": None})
    state = AgentState(
        name="claude-a", kind="claude", model="opus", status=AgentStatus.RUNNING, run=CURRENT,
        subject="Add a duration parser to the config loader", started_at=scenes.T0 - 320, node=current_node,
    )
    scenes.write_events(repo, CURRENT, scenes.CLAUDE_EVENTS)
    snapshot = Snapshot(agents={"claude-a": state}, requests=[], runs={CURRENT: current}, metrics=scenes.metrics())
    return scenes.app_for(repo, settings, snapshot, {"claude-a": scenes.CLAUDE_EVENTS}, {"claude-a": history})


async def open_zoom(pilot: Pilot) -> ZoomScreen:
    """Zoom into the agent and wait until its transcript and run history are shown."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ZoomScreen), message="zoom screen open")
    screen = pilot.app.screen
    assert isinstance(screen, ZoomScreen)
    view = screen.query_one(TranscriptView)
    table = screen.query_one("#runs", DataTable)
    await wait_for(pilot, lambda: view.row_count > 0 and table.row_count == 3, message="transcript and history shown")
    await pilot.pause()
    return screen


def run_label(screen: ZoomScreen) -> str:
    return str(screen.query_one("#zoom-run", Label).render())


def node_label(screen: ZoomScreen) -> str | None:
    """Return the header's node label, or None while it is hidden."""
    label = screen.query_one("#zoom-node", Label)
    return str(label.render()) if label.display else None


def column_keys(table: DataTable) -> list[str]:
    return [str(column.key.value) for column in table.ordered_columns]


async def test_header_shows_node_of_cluster_run(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node="127.0.0.3")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)

        assert run_label(screen) == f"run {CURRENT}"
        assert node_label(screen) == "node 127.0.0.2 ·"


async def test_header_takes_node_from_state(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node=None, record_has_node=False)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)

        assert run_label(screen) == f"run {CURRENT}"
        assert node_label(screen) == "node 127.0.0.2 ·"


async def test_history_has_node_column(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node="127.0.0.3")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)
        table = screen.query_one("#runs", DataTable)

        assert column_keys(table) == ["run", "status", "node", "when", "time", "message"]
        assert str(table.get_cell(CURRENT, "node")) == "127.0.0.2"
        assert str(table.get_cell(EARLIER_ON_NODE, "node")) == "127.0.0.3"
        assert str(table.get_cell(EARLIER_LOCAL, "node")) == ""
        assert str(table.get_cell(EARLIER_LOCAL, "status")) == "failed"


async def test_header_follows_selected_run(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node="127.0.0.3")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)

        screen.show_run(EARLIER_ON_NODE)
        await pilot.pause()
        assert run_label(screen) == f"run {EARLIER_ON_NODE}"
        assert node_label(screen) == "node 127.0.0.3 ·"

        screen.show_run(EARLIER_LOCAL)
        await pilot.pause()
        assert run_label(screen) == f"run {EARLIER_LOCAL}"
        assert node_label(screen) is None


async def test_history_row_selection_shows_node(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node="127.0.0.3")
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)
        screen.query_one("#zoom-side").active = "tab-runs"
        table = screen.query_one("#runs", DataTable)
        table.focus()
        await pilot.pause()

        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: screen.run_id == EARLIER_ON_NODE, message="second run selected")
        await pilot.pause()

        assert run_label(screen) == f"run {EARLIER_ON_NODE}"
        assert node_label(screen) == "node 127.0.0.3 ·"


async def test_local_runs_show_no_node(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node=None, earlier_node=None)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)
        table = screen.query_one("#runs", DataTable)

        assert run_label(screen) == f"run {CURRENT}"
        assert node_label(screen) is None
        assert column_keys(table) == ["run", "status", "when", "time", "message"]


async def test_header_shows_node_once_assigned(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node=None, earlier_node=None)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_zoom(pilot)
        assert run_label(screen) == f"run {CURRENT}"
        assert node_label(screen) is None

        snapshot = app.source.snapshot()
        placed = snapshot.agents["claude-a"].model_copy(update={"node": "127.0.0.4"})
        changes = app.model.apply_snapshot(Snapshot(agents={"claude-a": placed}, requests=[], runs=snapshot.runs,
                                                    metrics=snapshot.metrics))
        screen.apply_changes(changes)
        await pilot.pause()

        assert run_label(screen) == f"run {CURRENT}"
        assert node_label(screen) == "node 127.0.0.4 ·"


async def test_node_visible_at_80_columns(repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ZoomScreen), message="zoom screen open")
        screen = app.screen
        label = screen.query_one("#zoom-node", Label)
        await wait_for(pilot, lambda: label.display and label.region.width, message="node label laid out")

        assert node_label(screen) == "node 127.0.0.2 ·"
        assert label.region.width == len("node 127.0.0.2 ·") + 1
        assert label.region.right <= screen.query_one("#zoom-follow", Label).region.x


def test_cluster_run_history_snapshot(snap_compare, repo_dir: Path, frozen_clock: float) -> None:
    app = zoom_app(repo_dir, current_node="127.0.0.2", earlier_node="127.0.0.3")

    async def open_runs(pilot: Pilot) -> None:
        screen = await open_zoom(pilot)
        screen.query_one("#zoom-side").active = "tab-runs"
        await pilot.pause(0.1)
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(app, terminal_size=(140, 40), run_before=open_runs)
