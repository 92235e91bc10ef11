"""Pilot tests of every cockpit action against a real orchestrator running scripted agents."""

from __future__ import annotations

from pathlib import Path

from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable, Input, Log, Static

from aipass_tui.core.models import AgentStatus, RequestStatus, RunStatus
from aipass_tui.ui.app import create_app
from aipass_tui.ui.screens.confirm import AgentPickerScreen, ConfirmScreen, QuitScreen
from aipass_tui.ui.screens.dispatch import DispatchScreen
from aipass_tui.ui.screens.main import MainScreen
from aipass_tui.ui.screens.queue import QueueScreen
from aipass_tui.ui.screens.zoom import ZoomScreen
from aipass_tui.ui.widgets.agent_pane import AgentPane
from aipass_tui.ui.widgets.transcript_view import TranscriptView
from tests.ui.conftest import cockpit_config, request_of, start_orchestrator, wait_for

SIZE = (110, 32)


def pane_text(app, agent: str) -> str:
    return "\n".join(app.screen.query_one(f"#pane-{agent}", AgentPane).query_one(Log).lines)


def status_of(app, agent: str) -> AgentStatus:
    return app.model.agents[agent].state.status


async def test_dispatch_dialog_queues_and_runs(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, DispatchScreen)
        await pilot.press(*"lines=4 say=hello")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, MainScreen)
        requests = orchestrator.snapshot().requests
        assert [r.subject for r in requests] == ["lines=4 say=hello"]
        assert requests[0].agent == "alpha"
        await wait_for(pilot, lambda: "the word is hello" in pane_text(app, "alpha"), message="output in alpha's pane")
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.DONE, message="alpha done")
        assert "line 0 of lines=4" in pane_text(app, "alpha")


async def test_dispatch_dialog_picks_agent_body_and_priority(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("right")  # select beta's pane, so the dialog starts on beta
        await pilot.press("n")
        dialog = app.screen
        assert dialog.query_one("#agent").value == "beta"
        dialog.query_one("#subject", Input).value = "lines=1 hold=1"
        dialog.query_one("#body").text = "first line\nsecond line"
        dialog.query_one("#priority", Input).value = "7"
        await pilot.click("#send")
        request = orchestrator.snapshot().requests[0]
        assert (request.agent, request.body, request.priority) == ("beta", "first line\nsecond line", 7)


async def test_dispatch_dialog_rejects_bad_input(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        dialog = app.screen
        await pilot.press("ctrl+s")
        assert "subject is empty" in str(dialog.query_one("#error", Static).render())
        dialog.query_one("#subject", Input).value = "keep this text"
        dialog.query_one("#priority", Input).value = "-"
        await pilot.press("ctrl+s")
        assert "invalid priority '-'" in str(dialog.query_one("#error", Static).render())
        assert app.screen is dialog
        assert dialog.query_one("#subject", Input).value == "keep this text"
        assert orchestrator.snapshot().requests == []
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)
        assert orchestrator.snapshot().requests == []


async def test_identical_dispatch_is_coalesced(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    orchestrator.dispatch("alpha", "lines=1 hold=1")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.RUNNING, message="alpha running")
        for _ in range(2):
            await pilot.press("n")
            app.screen.query_one("#subject", Input).value = "same again"
            await pilot.press("ctrl+s")
        requests = [r for r in orchestrator.snapshot().requests if r.subject == "same again"]
        assert len(requests) == 1
        assert requests[0].duplicates == 1
        await pilot.press("q")
        assert isinstance(app.screen, QueueScreen)
        await wait_for(pilot, lambda: "+1" in _queue_cells(app), message="duplicate count in the queue")


def _queue_cells(app) -> list[str]:
    table = app.screen.query_one(DataTable)
    return [str(cell) for row in range(table.row_count) for cell in table.get_row_at(row)]


def _select_request(app, request_id: str) -> None:
    table = app.screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(request_id), animate=False)


async def test_queue_cancel_priority_and_move(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    busy = orchestrator.dispatch("alpha", "lines=1 hold=1")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: request_of(orchestrator, busy.id).status == RequestStatus.RUNNING, message="running")
        waiting = orchestrator.dispatch("alpha", "lines=1 second")
        other = orchestrator.dispatch("alpha", "lines=1 third")
        await pilot.press("q")
        await wait_for(pilot, lambda: waiting.id in app.model.requests and other.id in app.model.requests, message="requests shown")
        await pilot.pause(0.1)

        _select_request(app, waiting.id)
        await pilot.press("plus")
        assert request_of(orchestrator, waiting.id).priority == 1
        await pilot.press("minus", "minus")
        assert request_of(orchestrator, waiting.id).priority == -1

        _select_request(app, waiting.id)
        await pilot.press("c")
        assert request_of(orchestrator, waiting.id).status == RequestStatus.CANCELLED

        _select_request(app, other.id)
        await pilot.press("m")
        assert isinstance(app.screen, AgentPickerScreen)
        await pilot.press("enter")
        assert request_of(orchestrator, other.id).agent == "beta"
        await wait_for(pilot, lambda: request_of(orchestrator, other.id).status == RequestStatus.DONE, message="moved request ran")


async def test_queue_cancel_running_asks_first(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    busy = orchestrator.dispatch("alpha", "lines=1 hold=1")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: request_of(orchestrator, busy.id).status == RequestStatus.RUNNING, message="running")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.model.requests[busy.id].status == RequestStatus.RUNNING, message="shown running")
        _select_request(app, busy.id)
        await pilot.press("c")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert request_of(orchestrator, busy.id).status == RequestStatus.RUNNING
        await pilot.press("c", "y")
        await wait_for(pilot, lambda: request_of(orchestrator, busy.id).status == RequestStatus.CANCELLED, message="cancelled")


async def test_stop_run_after_confirmation(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    busy = orchestrator.dispatch("alpha", "lines=1 hold=1")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.RUNNING, message="alpha running")
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")
        assert request_of(orchestrator, busy.id).status == RequestStatus.RUNNING
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: request_of(orchestrator, busy.id).status == RequestStatus.FAILED, message="stopped")
        run_id = request_of(orchestrator, busy.id).run
        assert orchestrator.snapshot().runs[run_id].status == RunStatus.STOPPED
        # A stopped run is not the agent's failure: the agent is idle and the message shows why.
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.IDLE, message="alpha shown idle")
        assert "stopped" in (app.model.agents["alpha"].state.last_run_message or "")


async def test_stop_without_run_warns(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("x")
        assert isinstance(app.screen, MainScreen)
        await wait_for(pilot, lambda: "alpha has no running run to stop" in _toasts(app), message="warning shown")


def _toasts(app) -> str:
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


async def test_retry_failed_request_and_notice(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        failed = orchestrator.dispatch("alpha", "lines=1 exit=3")
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.FAILED, message="alpha failed")
        await wait_for(pilot, lambda: "run failed" in _toasts(app), message="failure notification")
        assert "r retries" in _toasts(app)
        await pilot.press("r")
        retried = [r for r in orchestrator.snapshot().requests if r.id != failed.id]
        assert len(retried) == 1
        assert retried[0].subject == failed.subject
        assert retried[0].sender == f"retry of {failed.id}"


async def test_retry_without_failure_warns(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: "no failed or cancelled request" in _toasts(app), message="warning shown")
        assert orchestrator.snapshot().requests == []


async def test_zoom_transcript_follow_and_search(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    request = orchestrator.dispatch("alpha", "lines=60 delay=0 say=needle")
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await wait_for(pilot, lambda: request_of(orchestrator, request.id).status == RequestStatus.DONE, message="done")
        await pilot.press("enter")
        assert isinstance(app.screen, ZoomScreen)
        view = app.screen.query_one(TranscriptView)
        await wait_for(pilot, lambda: view.row_count == 61 and not view.indexing, message="transcript indexed")
        assert view.follow
        assert view.cursor == 60
        assert "needle" in view.row_text(60)

        await pilot.press("home")
        assert view.cursor == 0
        assert not view.follow
        await pilot.press("slash")
        await pilot.press(*"NEEDLE", "enter")
        await wait_for(pilot, lambda: view.cursor == 60, message="search found the needle")
        assert "needle" in str(app.screen.query_one("#detail-text", Static).render())

        await pilot.press("home")
        await pilot.press("slash")
        app.screen.query_one("#search", Input).value = "line 1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: view.cursor == 1, message="first match")
        await pilot.press("n")
        await wait_for(pilot, lambda: view.cursor == 10, message="next match (line 10)")
        await pilot.press("N")
        await wait_for(pilot, lambda: view.cursor == 1, message="previous match")

        await pilot.press("slash")
        app.screen.query_one("#search", Input).value = "absent words"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "no match for 'absent words'" in _toasts(app), message="no-match notice")

        await pilot.press("f")
        assert view.follow and view.cursor == 60
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_zoom_follows_live_output(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        orchestrator.dispatch("alpha", "lines=40 delay=0.05")
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.RUNNING, message="running")
        await pilot.press("enter")
        view = app.screen.query_one(TranscriptView)
        await wait_for(pilot, lambda: view.row_count >= 5, message="first rows")
        await wait_for(pilot, lambda: view.row_count == 40, timeout=20, message="all rows while following")
        assert view.cursor == 39


async def test_fleet_table_and_zoom_from_row(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        orchestrator.dispatch("beta", "lines=2")
        await pilot.press("t")
        screen = app.screen
        assert screen.fleet
        assert app.model.agents["alpha"].live is False
        table = screen.query_one("#fleet", DataTable)
        await wait_for(pilot, lambda: table.row_count == 2, message="two rows")
        await pilot.press("down", "enter")
        assert isinstance(app.screen, ZoomScreen)
        assert app.screen.agent == "beta"
        await pilot.press("escape", "t")
        assert not screen.fleet
        assert app.model.agents["alpha"].live is True


async def test_help_and_palette_list_actions(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("New request", "Zoom", "Queue", "Fleet table", "Stop run", "Retry", "Quit", "Keys"):
            assert title in titles
        await pilot.press("f1")
        table = app.screen.query_one("#keys", DataTable)
        ids = {str(table.get_row_at(row)[3]) for row in range(table.row_count)}
        assert {"dispatch", "zoom", "queue", "fleet", "stop", "retry", "quit", "search", "cancel", "move"} <= ids
        await pilot.press("escape")
        assert isinstance(app.screen, MainScreen)


async def test_cards_show_output_without_panes(repo: Path, orchestrators: list) -> None:
    names = tuple(f"agent-{i:02d}" for i in range(12))
    settings = cockpit_config(repo, agents=names)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        grid = app.screen.query_one("#grid")
        assert grid.mode == "cards"
        assert not app.screen.query(AgentPane)
        orchestrator.dispatch("agent-00", "lines=2 say=cardword")
        card = app.screen.query_one("#card-agent-00")
        await wait_for(pilot, lambda: "the word is cardword" in app.model.agents["agent-00"].lines, message="output kept")
        await wait_for(pilot, lambda: any("cardword" in card.render_line(row).text for row in range(3)), message="last line on the card")
        assert not any(view.live for view in app.model.agents.values())


async def test_palette_runs_screen_actions(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)

    async def choose(pilot, words: str) -> None:
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*words)
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0
                       and words in str(commands.get_option_at_index(0).prompt), message=f"palette finds {words!r}")
        await pilot.press("enter")

    async with app.run_test(size=SIZE) as pilot:
        await choose(pilot, "Fleet table")
        await wait_for(pilot, lambda: isinstance(app.screen, MainScreen) and app.screen.fleet, message="fleet from the palette")
        await choose(pilot, "Queue")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen), message="queue from the palette")


async def test_no_agents_says_how_to_add_one(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo, agents=())
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        hint = str(app.screen.query_one(".no-agents", Static).render())
        assert "No agents are configured" in hint
        assert "aipass-tui init" in hint
        await pilot.press("n")
        assert isinstance(app.screen, DispatchScreen)
        await pilot.press("ctrl+s")
        assert "no agents are configured" in str(app.screen.query_one("#error", Static).render())


async def test_palette_quit_asks_about_running_agents(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        orchestrator.dispatch("alpha", "lines=200 delay=0.1 say=long")
        await wait_for(pilot, lambda: status_of(app, "alpha") == AgentStatus.RUNNING, message="alpha running")
        await pilot.press("ctrl+p")
        await pilot.press(*"Quit")
        commands = app.screen.query_one(CommandList)
        await wait_for(pilot, lambda: commands.option_count > 0, message="palette finds Quit")
        titles = [str(commands.get_option_at_index(i).prompt).splitlines()[0] for i in range(commands.option_count)]
        assert sum(1 for title in titles if title.strip() == "Quit") == 1, titles
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen), message="the quit question")
        assert app.is_running
