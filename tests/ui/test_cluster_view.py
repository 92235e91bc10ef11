"""The cockpit shows where cluster runs execute: node in panes, cards and the fleet table, and the
cluster's nodes in the CPU meter. Rendered from recorded snapshots with a frozen clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from aipass_tui.config import AgentConfig, Settings
from aipass_tui.core.models import AgentState, AgentStatus
from aipass_tui.core.orchestrator import Snapshot
from aipass_tui.ui.app import AipassApp, create_app
from aipass_tui.ui.source import RecordedSource
from aipass_tui.ui.widgets.agent_card import AgentCard
from aipass_tui.ui.widgets.agent_pane import AgentPane
from aipass_tui.ui.widgets.cpu_meter import CpuMeter, node_line
from aipass_tui.ui.widgets.fleet_table import FleetTable
from tests.ui import scenes
from tests.ui.conftest import wait_for

GIB = 1 << 30

NODES: list[dict[str, Any]] = [
    {
        "node_id": "a1", "address": "127.0.0.2", "alive": True, "cpus": 8.0, "memory": 16.0 * GIB,
        "agents": 2, "cpu_percent": 37.4, "memory_total": 16 * GIB, "memory_used": 4 * GIB, "sampled_at": scenes.T0,
    },
    {
        "node_id": "b2", "address": "127.0.0.3", "alive": False, "cpus": 4.0, "memory": 8.0 * GIB,
        "agents": 0, "cpu_percent": None, "memory_total": None, "memory_used": None, "sampled_at": None,
    },
]


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def cluster_app(repo: Path, *, runner: str = "ray", nodes: list[dict[str, Any]] | None = None,
                count: int = 2) -> AipassApp:
    """Build a frozen cockpit with ``count`` claude agents, where only the first runs on node 127.0.0.2."""
    names = [f"agent-{index}" for index in range(count)]
    settings = Settings(agents={name: AgentConfig(kind="claude", model="sonnet", runner=runner) for name in names})  # type: ignore[arg-type]
    agents = {
        name: AgentState(
            name=name, kind="claude", model="sonnet",
            status=AgentStatus.RUNNING if index == 0 else AgentStatus.IDLE,
            subject="Split the parser" if index == 0 else None,
            started_at=scenes.T0 - 60 if index == 0 else None,
            runner=runner, node="127.0.0.2" if index == 0 and runner == "ray" else None,
        )
        for index, name in enumerate(names)
    }
    snapshot = Snapshot(agents=agents, requests=[], runs={}, metrics=scenes.metrics())
    source = RecordedSource(repo, settings, snapshot, nodes=list(NODES if nodes is None else nodes))
    return create_app(repo, settings, source, frozen=True, low_bandwidth=False)


def test_node_line_alive_with_sample() -> None:
    assert node_line(NODES[0]) == "127.0.0.2 alive cpu 37% mem 4.0 GiB/16.0 GiB 2 agents"


def test_node_line_dead_without_sample() -> None:
    assert node_line(NODES[1]) == "127.0.0.3 dead cpu – mem –/8.0 GiB 0 agents"


def test_node_line_falls_back_to_node_id() -> None:
    line = node_line({"node_id": "c3", "address": None, "alive": True, "agents": 1})

    assert line == "c3 alive cpu – mem –/– 1 agent"


async def test_meter_lists_two_recorded_nodes(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        meter = app.screen.query_one(CpuMeter)
        await wait_for(pilot, lambda: meter.has_class("-cluster"), message="cluster section shown")
        await pilot.pause()

        text = str(meter.query_one(".meter-cluster", Static).render())
        lines = text.splitlines()
        assert len(lines) == 2
        assert lines[0].startswith("127.0.0.2 alive cpu 37% mem 4.0 GiB/16.0 GiB")
        assert lines[1].startswith("127.0.0.3 dead cpu – mem –/8.0 GiB")
        assert meter.query_one(".meter-cluster-title").display
        assert app.model.cluster_nodes == NODES


async def test_meter_hides_cluster_without_ray_agents(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir, runner="local")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause(0.2)
        meter = app.screen.query_one(CpuMeter)

        assert not app.uses_cluster
        assert not meter.has_class("-cluster")
        assert not meter.query_one(".meter-cluster").display
        assert app.model.cluster_nodes == []


async def test_meter_hides_cluster_without_nodes(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir, nodes=[])
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: not app._fetching_cluster and not any(
            worker.group == "cluster" and worker.is_running for worker in app.workers
        ), message="cluster fetch finished")
        await pilot.pause()
        meter = app.screen.query_one(CpuMeter)

        assert app.uses_cluster
        assert not meter.has_class("-cluster")
        assert meter.cluster_lines() == []


async def test_pane_shows_node_of_cluster_run(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        panes = {pane.agent: pane for pane in app.screen.query(AgentPane)}

        assert panes["agent-0"].border_subtitle == "claude · sonnet · node 127.0.0.2"
        assert panes["agent-1"].border_subtitle == "claude · sonnet"


async def test_card_shows_node_of_cluster_run(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir, count=40)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.query(AgentCard), message="cards laid out")
        await pilot.pause()
        cards = {card.agent: card for card in app.screen.query(AgentCard)}
        running = [cards["agent-0"].render_line(row).text.rstrip() for row in range(3)]
        idle = [cards["agent-1"].render_line(row).text.rstrip() for row in range(3)]

        assert running[2].endswith("· node 127.0.0.2")
        assert "node" not in idle[2]


async def test_fleet_table_shows_node_column(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("t")
        table = app.screen.query_one(FleetTable)
        await wait_for(pilot, lambda: table.row_count == 2, message="fleet rows")
        labels = [str(column.label) for column in table.ordered_columns]

        assert labels[:4] == ["Agent", "Status", "Kind", "Node"]
        assert str(table.get_cell("agent-0", "node")) == "127.0.0.2"
        assert str(table.get_cell("agent-1", "node")) == ""
        assert str(table.get_cell("agent-0", "kind")) == "claude"


async def test_fleet_table_without_nodes_has_no_node_column(repo_dir: Path, frozen_clock: float) -> None:
    app = cluster_app(repo_dir, runner="local")
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("t")
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, message="fleet rows")
        keys = [column.key.value for column in table.ordered_columns]

        assert "node" not in keys
