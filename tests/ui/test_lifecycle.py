"""Quitting, hanging up, re-attaching and settings, with the app owning a real orchestrator."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from aipass_tui.core.models import AgentStatus
from aipass_tui.core.store import Paths, lock_is_held
from aipass_tui.ui.app import LOW_BANDWIDTH_FLUSH_HZ, create_app, resolve_low_bandwidth
from aipass_tui.ui.screens.confirm import QuitScreen
from aipass_tui.ui.screens.dispatch import DispatchScreen
from aipass_tui.ui.screens.main import MainScreen
from tests.conftest import wait_until
from tests.ui.conftest import cockpit_config, start_orchestrator, wait_for

SIZE = (100, 30)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def start_held_run(app, pilot) -> tuple[str, int]:
    """Dispatch a run that keeps going until stopped; return its run id and pid."""
    await wait_for(pilot, lambda: "alpha" in app.model.agents, message="agents loaded")
    app.source.dispatch("alpha", "lines=1 hold=1")
    await wait_for(pilot, lambda: app.model.agents["alpha"].state.status == AgentStatus.RUNNING
                   and app.model.agents["alpha"].state.pid, message="alpha running")
    state = app.model.agents["alpha"].state
    return state.run, state.pid


async def test_quit_leave_running_then_reattach_then_stop_all(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    first = create_app(repo, settings)
    async with first.run_test(size=SIZE) as pilot:
        run_id, pid = await start_held_run(first, pilot)
        await pilot.press("ctrl+q")
        assert isinstance(first.screen, QuitScreen)
        await pilot.press("l")
        await wait_for(pilot, lambda: first.return_value == "leave", message="quit chosen")
    assert first.closed
    assert not lock_is_held(Paths(repo).orchestrator_lock)
    assert alive(pid), "leaving the agents running must not stop the run"

    second = create_app(repo, settings)
    async with second.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "alpha" in second.model.agents
                       and second.model.agents["alpha"].state.status == AgentStatus.RUNNING, message="re-attached")
        state = second.model.agents["alpha"].state
        assert (state.status, state.run, state.pid) == (AgentStatus.RUNNING, run_id, pid)
        pane = second.screen.query_one("#pane-alpha")
        seen = len(pane.query_one("Log").lines)
        await wait_for(pilot, lambda: len(pane.query_one("Log").lines) > seen + 2, message="output after re-attach")
        await pilot.press("ctrl+q", "s")
        await wait_for(pilot, lambda: second.return_value == "stop", message="stop chosen")
    assert second.closed
    wait_until(lambda: not alive(pid), timeout=10, message="run stopped by stop all")
    run = Paths(repo).run_dir(run_id) / "run.json"
    assert '"status": "stopped"' in run.read_text()


async def test_quit_dialog_escape_stays(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await start_held_run(app, pilot)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert app.return_value is None


async def test_quit_with_nothing_running_asks_nothing(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_value == "leave", message="quit at once")


async def test_quit_stop_all_with_borrowed_orchestrator(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        _, pid = await start_held_run(app, pilot)
        await pilot.press("ctrl+q", "s")
        await wait_for(pilot, lambda: app.return_value == "stop", message="stop chosen")
    wait_until(lambda: not alive(pid), timeout=10, message="run stopped")
    assert not app.closed, "an orchestrator the caller passed in is the caller's to close"


async def test_hangup_leaves_agents_running(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    app = create_app(repo, settings)
    async with app.run_test(size=SIZE) as pilot:
        _, pid = await start_held_run(app, pilot)
        assert app._hangup_installed
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(pilot, lambda: app.return_value == "leave", message="hang-up handled")
    assert app.closed
    assert alive(pid)
    cleanup = start_orchestrator(repo, settings, orchestrators)
    wait_until(lambda: cleanup.snapshot().agents["alpha"].pid == pid, timeout=10, message="run re-attached")


async def test_second_cockpit_is_refused(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.return_code == 1, message="refused start")
    assert app.closed


async def test_keymap_remaps_by_binding_id(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo, extra='[ui.keys]\ndispatch = "ctrl+n"\nno_such_action = "f5"\n')
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, MainScreen)
        await pilot.press("ctrl+n")
        assert isinstance(app.screen, DispatchScreen)
        await pilot.press("escape")
        toasts = "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))
        assert "unknown binding id 'no_such_action'" in toasts


async def test_theme_from_settings_and_unknown_theme(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo, extra='[ui]\ntheme = "nord"\n')
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE):
        assert app.theme == "nord"

    settings.ui.theme = "no-such-theme"
    other = create_app(repo, settings, orchestrator)
    async with other.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: "unknown theme 'no-such-theme'" in "\n".join(
            str(toast.render()) for toast in other.screen.query("Toast")), message="theme warning")


def test_low_bandwidth_follows_ssh_setting_and_flag(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = cockpit_config(repo)
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    assert resolve_low_bandwidth(None, settings) is False
    monkeypatch.setenv("SSH_CONNECTION", "127.0.0.1 50000 127.0.0.1 22")
    assert resolve_low_bandwidth(None, settings) is True
    assert resolve_low_bandwidth(False, settings) is False
    settings.ui.low_bandwidth = False
    assert resolve_low_bandwidth(None, settings) is False
    assert resolve_low_bandwidth(True, settings) is True
    settings.ui.low_bandwidth = None
    app = create_app(repo, settings, frozen=True)
    assert app.low_bandwidth
    assert app.flush_hz == LOW_BANDWIDTH_FLUSH_HZ


def test_no_color_is_respected(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = cockpit_config(repo)
    monkeypatch.setenv("NO_COLOR", "1")
    assert create_app(repo, settings, frozen=True).no_color


async def test_pane_shows_last_run_after_restart(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    first = create_app(repo, settings)
    async with first.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "alpha" in first.model.agents, message="agents loaded")
        first.source.dispatch("alpha", "lines=3 say=before-restart")
        await wait_for(pilot, lambda: first.model.agents["alpha"].state.status == AgentStatus.DONE, message="alpha done")
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: first.return_value == "leave", message="quit")

    second = create_app(repo, settings)
    async with second.run_test(size=SIZE) as pilot:
        pane = second.screen.query_one("#pane-alpha")
        await wait_for(pilot, lambda: any("before-restart" in line for line in pane.query_one("Log").lines),
                       message="the finished run's output in the pane after a restart")
