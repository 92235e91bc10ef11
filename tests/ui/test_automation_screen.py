"""The automation screen in a tiny host app, on a real orchestrator with real rules and file events."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from textual.app import App
from textual.widgets import DataTable, Label, Static

from aipass_tui.config import load_settings
from aipass_tui.core.automation import AutomationHub, attach_automation
from aipass_tui.core.orchestrator import Orchestrator
from aipass_tui.ui.screens.automation import AutomationScreen
from tests.conftest import write_config
from tests.ui.conftest import wait_for

RULES = """
    [agents.echo]
    kind = "command"
    command = ["echo", "hello"]
    isolation = "shared"

    [[automation]]
    name = "docs"
    paths = ["docs/*.md"]
    debounce = "0.1s"
    action = "notify"
    subject = "docs changed: {paths}"

    [[automation]]
    name = "nightly"
    at = "02:00"
    action = "dispatch"
    agent = "echo"
    subject = "Nightly check"

    [[automation]]
    name = "lint"
    every = "1h"
    action = "command"
    command = ["sh", "-c", "echo linted"]
"""


class Host(App[None]):
    """Shows only the automation screen."""

    def __init__(self, hub: AutomationHub) -> None:
        super().__init__()
        self.hub = hub

    def on_mount(self) -> None:
        self.push_screen(AutomationScreen(self.hub))


@pytest.fixture
def hub_for(orchestrators: list) -> Iterator:
    hubs: list[AutomationHub] = []

    def start(repo: Path, config: str) -> AutomationHub:
        write_config(repo, config)
        (repo / "docs").mkdir(exist_ok=True)
        orchestrator = Orchestrator(repo, load_settings(repo), role="test")
        orchestrators.append(orchestrator)
        orchestrator.start_thread()
        hub = attach_automation(orchestrator)
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.close()


def cell(screen: AutomationScreen, table: str, row: str, column: str) -> str:
    return str(screen.query_one(table, DataTable).get_cell(row, column))


def event_rows(screen: AutomationScreen, rule: str) -> list[tuple[str, str]]:
    """Return the (event, message) cells of the rule's rows in the event log."""
    table = screen.query_one("#events", DataTable)
    rows = [table.get_row_at(index) for index in range(table.row_count)]
    return [(str(row[2]), str(row[3])) for row in rows if str(row[1]) == rule]


def event_kinds(screen: AutomationScreen, rule: str) -> list[str]:
    return [kind for kind, _ in event_rows(screen, rule)]


async def test_rules_listed_with_state(repo: Path, hub_for) -> None:
    hub = hub_for(repo, RULES)
    async with Host(hub).run_test(size=(160, 40)) as pilot:
        screen = pilot.app.screen
        assert isinstance(screen, AutomationScreen)
        table = screen.query_one("#rules", DataTable)
        assert table.row_count == 3
        assert str(screen.query_one("#automation-title", Label).render()) == "Automation · 3 rules · 3 enabled"
        assert [cell(screen, "#rules", name, "enabled") for name in ("docs", "nightly", "lint")] == ["on", "on", "on"]
        assert cell(screen, "#rules", "docs", "trigger") == "docs/*.md (created, modified, deleted, moved)"
        assert cell(screen, "#rules", "nightly", "action") == "dispatch to echo"
        assert cell(screen, "#rules", "lint", "last_fired") == "never"
        assert "(in " in cell(screen, "#rules", "nightly", "next")
        assert cell(screen, "#rules", "docs", "next") == "–"
        assert screen.query_one("#automation-status", Static).display is False


async def test_space_disables_and_enables_rule(repo: Path, hub_for) -> None:
    hub = hub_for(repo, RULES)
    async with Host(hub).run_test(size=(160, 40)) as pilot:
        screen = pilot.app.screen
        await pilot.press("space")
        await wait_for(pilot, lambda: cell(screen, "#rules", "docs", "enabled") == "off", message="the rule to show off")
        assert next(rule for rule in hub.rules() if rule.name == "docs").enabled is False
        assert str(screen.query_one("#automation-title", Label).render()) == "Automation · 3 rules · 2 enabled"
        await wait_for(pilot, lambda: event_kinds(screen, "docs") == ["disabled"], message="the event log")

        await pilot.press("space")
        await wait_for(pilot, lambda: cell(screen, "#rules", "docs", "enabled") == "on", message="the rule to show on")
        (repo / "docs" / "guide.md").write_text("# Guide\n")
        await wait_for(pilot, lambda: cell(screen, "#rules", "docs", "result") == "notified", message="the rule to fire")
        assert cell(screen, "#rules", "docs", "last_fired").endswith("ago)")
        await wait_for(pilot, lambda: event_kinds(screen, "docs") == ["disabled", "enabled", "fired", "done"], message="the event log")


async def test_fire_now_runs_command(repo: Path, hub_for) -> None:
    hub = hub_for(repo, RULES)
    async with Host(hub).run_test(size=(160, 40)) as pilot:
        screen = pilot.app.screen
        await pilot.press("down", "down")
        assert screen.selected_rule().name == "lint"
        await pilot.press("f")
        await wait_for(pilot, lambda: cell(screen, "#rules", "lint", "result").startswith("exit 0"), message="the command to finish")
        await wait_for(pilot, lambda: event_kinds(screen, "lint") == ["fired", "done"], message="the event log")
        fired, done = event_rows(screen, "lint")
        assert fired[1] == "run by hand"
        assert "(log: .aipass/logs/automation/lint-" in done[1]
        log = next((repo / ".aipass" / "logs" / "automation").glob("lint-*.log"))
        assert "linted" in log.read_text()


async def test_invalid_rules_shown_as_error(repo: Path, hub_for) -> None:
    rule = """
        [[automation]]
        name = "twice"
        every = "1h"
        action = "notify"
    """
    hub = hub_for(repo, RULES.split("[[automation]]")[0] + rule + rule)
    async with Host(hub).run_test(size=(160, 40)) as pilot:
        screen = pilot.app.screen
        status = screen.query_one("#automation-status", Static)
        assert status.display is True
        assert status.has_class("-error")
        assert "Rules not running: two automation rules are named 'twice'" in str(status.render())
        await pilot.press("space")
        await pilot.pause()
        assert screen.query_one("#rules", DataTable).row_count == 0


async def test_escape_returns_to_host(repo: Path, hub_for) -> None:
    hub = hub_for(repo, RULES)
    async with Host(hub).run_test(size=(160, 40)) as pilot:
        assert isinstance(pilot.app.screen, AutomationScreen)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(pilot.app.screen, AutomationScreen), message="the screen to close")
