"""Automation: the ``[[automation]]`` rules with their state, and the recent automation events.

The screen reads the orchestrator's ``AutomationHub`` (``aipass_tui.core.automation``). Its
queries are in-memory copies, so they run on the UI thread. Enabling a rule or firing it by
hand sets up file watches or starts a command, so those run in a thread worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from aipass_tui.ui import bindings
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static

from aipass_tui.core import clock
from aipass_tui.core.automation import AutomationHub
from aipass_tui.core.watch import AutomationEvent, RuleStatus
from aipass_tui.ui.text import format_duration, sanitize_line, shorten
from aipass_tui.ui.widgets.fitting_footer import FittingFooter

SCOPE = "automation"
REFRESH_SECONDS = 1.0
RULE_COLUMNS = (
    ("enabled", "On"),
    ("name", "Rule"),
    ("trigger", "Trigger"),
    ("action", "Action"),
    ("last_fired", "Last fired"),
    ("next", "Next"),
    ("result", "What it did"),
)
EVENT_COLUMNS = (("time", "Time"), ("rule", "Rule"), ("kind", "Event"), ("message", "Message"))


class AutomationChanged(Message):
    """An automation event happened (posted from the automation engine's threads)."""


def format_moment(moment: float | None, now: float) -> str:
    """Format a Unix time as local ``HH:MM:SS`` with how long ago or how soon it is."""
    if moment is None:
        return "never"
    text = datetime.fromtimestamp(moment).strftime("%H:%M:%S")
    if moment <= now:
        return f"{text} ({format_duration(now - moment)} ago)"
    return f"{text} (in {format_duration(moment - now)})"


class AutomationScreen(Screen[None]):
    """Rules with when each last fired and what it did; space enables or disables the selected rule."""

    CSS_PATH = "automation.tcss"
    BINDING_SCOPE = bindings.AUTOMATION
    BINDINGS = bindings.bindings(bindings.AUTOMATION)

    def __init__(self, hub: AutomationHub) -> None:
        super().__init__()
        self.hub = hub
        self._rules_shown: dict[str, tuple[str, ...]] = {}
        self._events_shown: list[AutomationEvent] = []
        self._remove_listener: Any = None

    def compose(self) -> ComposeResult:
        yield Label("", id="automation-title")
        yield Static("", id="automation-status", markup=False)
        yield DataTable(id="rules", cursor_type="row", zebra_stripes=True)
        yield Label("Recent automation events", id="events-title")
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield FittingFooter({})

    def on_mount(self) -> None:
        rules = self.query_one("#rules", DataTable)
        for key, label in RULE_COLUMNS:
            rules.add_column(label, key=key)
        events = self.query_one("#events", DataTable)
        for key, label in EVENT_COLUMNS:
            events.add_column(label, key=key)
        self._remove_listener = self.hub.event_listeners.add(lambda _event: self.post_message(AutomationChanged()))
        self.set_interval(REFRESH_SECONDS, self.refresh_view, name="automation-refresh")
        self.refresh_view()
        rules.focus()

    def on_unmount(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None

    def on_automation_changed(self, message: AutomationChanged) -> None:
        self.refresh_view()

    # Drawing -------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Redraw the title, the status line, the changed rule cells and the event log."""
        rules = self.hub.rules()
        now = clock.now()
        enabled = sum(1 for rule in rules if rule.enabled)
        self.query_one("#automation-title", Label).update(
            f"Automation · {len(rules)} rule{'s' if len(rules) != 1 else ''} · {enabled} enabled"
        )
        self._show_status()
        self._show_rules(rules, now)
        self._show_events()

    def _show_status(self) -> None:
        status = self.query_one("#automation-status", Static)
        problem = self.hub.rules_error
        fallback = self.hub.watcher.fallback_message
        lines = []
        if problem:
            lines.append(f"Rules not running: {problem}. Fix [[automation]] in .aipass/config.toml and restart.")
        if fallback:
            lines.append(fallback)
        if not lines and not self.hub.rules():
            lines.append("No automation rules. Add [[automation]] tables to .aipass/config.toml.")
        status.update("\n".join(lines))
        status.display = bool(lines)
        status.set_class(bool(problem), "-error")
        status.set_class(bool(fallback) and not problem, "-polling")

    def _rule_values(self, rule: RuleStatus, now: float) -> tuple[str, ...]:
        result = "running" if rule.running else (rule.last_result or "–")
        return (
            "on" if rule.enabled else "off",
            rule.name,
            shorten(sanitize_line(rule.trigger), 48),
            shorten(sanitize_line(rule.action), 36),
            format_moment(rule.last_fired, now),
            format_moment(rule.next_due, now) if rule.enabled and rule.next_due is not None else "–",
            shorten(sanitize_line(result), 44),
        )

    def _show_rules(self, rules: list[RuleStatus], now: float) -> None:
        table = self.query_one("#rules", DataTable)
        names = [rule.name for rule in rules]
        if names != list(self._rules_shown):
            table.clear()
            self._rules_shown = {}
            for rule in rules:
                values = self._rule_values(rule, now)
                table.add_row(*values, key=rule.name)
                self._rules_shown[rule.name] = values
            return
        for rule in rules:
            values = self._rule_values(rule, now)
            for (key, _), value, before in zip(RULE_COLUMNS, values, self._rules_shown[rule.name]):
                if value != before:
                    table.update_cell(rule.name, key, value, update_width=True)
            self._rules_shown[rule.name] = values

    def _show_events(self) -> None:
        events = self.hub.events()
        if events == self._events_shown:
            return
        table = self.query_one("#events", DataTable)
        follow = table.row_count == 0 or table.cursor_row >= table.row_count - 1
        table.clear()
        for event in events:
            table.add_row(
                datetime.fromtimestamp(event.time).strftime("%H:%M:%S"),
                event.rule,
                event.kind,
                shorten(sanitize_line(event.message), 200),
            )
        self._events_shown = events
        if follow and events:
            table.move_cursor(row=len(events) - 1, animate=False)

    # Actions -------------------------------------------------------------------------------

    def selected_rule(self) -> RuleStatus | None:
        table = self.query_one("#rules", DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return next((rule for rule in self.hub.rules() if rule.name == row_key.value), None)

    def action_back(self) -> None:
        self.dismiss()

    def action_toggle_rule(self) -> None:
        rule = self.selected_rule()
        if rule is None:
            self.notify("there is no rule to enable or disable", title="Automation", severity="warning")
            return
        self._change(rule.name, enable=not rule.enabled)

    def action_fire_rule(self) -> None:
        rule = self.selected_rule()
        if rule is None:
            self.notify("there is no rule to fire", title="Automation", severity="warning")
            return
        self._change(rule.name, enable=None)

    @work(thread=True, group="automation", exit_on_error=False)
    def _change(self, name: str, enable: bool | None) -> None:
        """Enable, disable (``enable``) or fire (``enable`` None) a rule, then redraw."""
        try:
            if enable is None:
                self.hub.run_now(name)
            else:
                self.hub.set_enabled(name, enable)
        except KeyError as exc:
            reason = str(exc).strip("'\"")
            self.app.call_from_thread(self.notify, reason, title="Automation", severity="error")
        self.post_message(AutomationChanged())
