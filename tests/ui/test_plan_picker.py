"""Pilot tests of the plan list: first keystrokes with no plans, and no false notice for a new plan."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from textual.widgets import Input, Label, OptionList, Select

from aipass_tui.core.automation import attach_automation
from aipass_tui.core.notices import Notice, UserNotice
from aipass_tui.ui.app import create_app
from aipass_tui.ui.screens.plan_editor import PlanEditorScreen
from aipass_tui.ui.screens.plan_picker import EMPTY_MESSAGE, PICKER_MESSAGE, PlanPickerScreen
from tests.ui.conftest import cockpit_config, start_orchestrator, wait_for

SIZE = (80, 24)
CHANGED_ON_DISK = "changed on disk"


def toasts(app) -> str:
    return "\n".join(str(toast.render()) for toast in app.screen.query("Toast"))


class NoticeLog:
    """Collects the user notices an orchestrator sends to its subscribers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.notices: list[UserNotice] = []

    def __call__(self, notices: list[Notice]) -> None:
        with self._lock:
            self.notices.extend(notice for notice in notices if isinstance(notice, UserNotice))

    def titles(self) -> list[str]:
        with self._lock:
            return [notice.title for notice in self.notices]


async def open_picker(app, pilot) -> PlanPickerScreen:
    await pilot.press("P")
    picker = app.screen
    assert isinstance(picker, PlanPickerScreen)
    await wait_for(pilot, lambda: picker.query_one("#template", Select).value == "FPLAN", message="templates listed")
    return picker


async def test_empty_list_focuses_title(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE) as pilot:
        picker = await open_picker(app, pilot)
        title = picker.query_one("#new-title-input", Input)
        assert title.has_focus
        hint = picker.query_one("#picker-hint", Label)
        assert str(hint.content) == EMPTY_MESSAGE
        assert hint.region.width >= len(EMPTY_MESSAGE)
        assert "Enter" in EMPTY_MESSAGE
        assert "Tab" in EMPTY_MESSAGE

        await pilot.press(*"Login form", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanEditorScreen), message="editor opened")
        assert app.screen.path.name == "FPLAN-0001_login-form.toml"


async def test_keys_typed_before_listing_kept(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("P", *"Fast")
        picker = app.screen
        assert isinstance(picker, PlanPickerScreen)
        await wait_for(pilot, lambda: picker.query_one("#template", Select).value == "FPLAN", message="templates listed")
        assert picker.query_one("#new-title-input", Input).value == "Fast"


async def test_listed_plans_take_focus(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    app = create_app(repo, settings, start_orchestrator(repo, settings, orchestrators))
    async with app.run_test(size=SIZE) as pilot:
        picker = await open_picker(app, pilot)
        await pilot.press(*"First plan", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanEditorScreen), message="editor opened")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PlanEditorScreen), message="editor closed")

        picker = await open_picker(app, pilot)
        listing = picker.query_one("#plan-list", OptionList)
        await wait_for(pilot, lambda: listing.has_focus, message=f"list focused, not {app.focused}")
        hint = picker.query_one("#picker-hint", Label)
        assert str(hint.content) == PICKER_MESSAGE
        assert hint.region.width >= len(PICKER_MESSAGE)
        assert "ctrl+n" in PICKER_MESSAGE
        assert "Tab" in PICKER_MESSAGE
        assert listing.option_count == 1

        await pilot.press("tab", "tab")
        assert picker.query_one("#new-title-input", Input).has_focus


async def test_new_plan_raises_no_disk_notice(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    hub = attach_automation(orchestrator)
    log = NoticeLog()
    orchestrator.subscribe(log)
    app = create_app(repo, settings, orchestrator)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await open_picker(app, pilot)
            await pilot.press(*"Login form", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, PlanEditorScreen), message="editor opened")
            created = app.screen.path
            assert created.is_file()

            # A plan written by another program after the new one: its notice arrives after any
            # notice the new plan could have raised, so it bounds the wait.
            outside = created.with_name("FPLAN-0100_outside.toml")
            outside.write_text('title = "Outside"\n', encoding="utf-8")
            expected = f"Plan {outside.name} {CHANGED_ON_DISK} and has problems"
            await wait_for(pilot, lambda: expected in log.titles(), message="notice of the outside plan")
            assert hub.wait_idle()

            assert not [title for title in log.titles() if created.name in title]
            assert created.name not in toasts(app)
    finally:
        hub.close()


async def test_outside_edit_of_new_plan_notices(repo: Path, orchestrators: list) -> None:
    settings = cockpit_config(repo)
    orchestrator = start_orchestrator(repo, settings, orchestrators)
    hub = attach_automation(orchestrator)
    log = NoticeLog()
    orchestrator.subscribe(log)
    app = create_app(repo, settings, orchestrator)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await open_picker(app, pilot)
            await pilot.press(*"Login form", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, PlanEditorScreen), message="editor opened")
            created = app.screen.path
            expected = f"Plan {created.name} {CHANGED_ON_DISK} and has problems"

            # The cockpit ignores changes of its own new plan for a short window, so another
            # program's edit is written again until the watch reports it.
            edits: list[float] = []

            def edited_outside() -> bool:
                if expected in log.titles():
                    return True
                if not edits or time.monotonic() - edits[-1] > 0.5:
                    edits.append(time.monotonic())
                    created.write_text(f'title = "Edited elsewhere {len(edits)}"\n', encoding="utf-8")
                return False

            await wait_for(pilot, edited_outside, message="notice of the outside edit")
    finally:
        hub.close()
