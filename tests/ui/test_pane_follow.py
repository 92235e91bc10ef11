"""Agent panes keep their newest output in view, while a run writes and after it ends."""

from __future__ import annotations

from pathlib import Path

from aipass_tui.ui.app import create_app
from aipass_tui.ui.widgets.agent_pane import AgentPane, PaneLog
from tests.ui.conftest import cockpit_config, start_orchestrator, wait_for

SIZE = (110, 32)


def pane_log(app, agent: str) -> PaneLog:
    return app.screen.query_one(f"#pane-{agent}", AgentPane).query_one(PaneLog)


async def test_full_pane_shows_its_last_line(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    app = create_app(repo, settings, orchestrator)
    async with app.run_test(size=SIZE) as pilot:
        orchestrator.dispatch("alpha", "lines=80 say=tail")
        log = pane_log(app, "alpha")
        await wait_for(pilot, lambda: any("80 of 80" in line or "line 80" in line for line in log.lines) or len(log.lines) >= 80, message="80 lines in the pane")
        await pilot.pause(0.5)
        assert log.max_scroll_y > 0, "the pane holds more lines than it shows"
        assert log.scroll_offset.y == log.max_scroll_y, (log.scroll_offset.y, log.max_scroll_y, log.virtual_size, log.size)
        last_row = log.render_line(log.size.height - 1).text.strip()
        assert last_row and last_row in log.lines[-1]
