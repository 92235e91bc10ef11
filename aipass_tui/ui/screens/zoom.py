"""One agent full screen: its whole transcript, todo list, sub-agents and run history."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, Static, TabbedContent, TabPane, Tree

from aipass_tui.core import clock
from aipass_tui.core.models import AgentState, RunRecord, SubAgent, TodoItem
from aipass_tui.ui import bindings, describe
from aipass_tui.ui.model import Changes
from aipass_tui.ui.text import format_duration, sanitize_line, shorten
from aipass_tui.ui.widgets.color_mode import mark_standard_colors
from aipass_tui.ui.widgets.fitting_footer import FittingFooter
from aipass_tui.ui.widgets.status_badge import StatusBadge
from aipass_tui.ui.widgets.transcript_view import TranscriptView

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

NARROW_WIDTH = 100
DETAIL_LINES = 500
TODO_MARKS = {"completed": "✓", "in_progress": "▶", "pending": "○"}
FOOTER_SHORT = {"search_next": "Next", "search_previous": "Previous", "side_panel": "Side", "stop": "Stop"}
"""Footer descriptions, by binding id, for terminals too narrow for the full ones."""
FOOTER_OPTIONAL = ("search_previous", "search_next")
"""Keys that leave the footer, in this order, when even the short descriptions do not fit (at 80
columns). They stay bound and listed in the command palette and on the F1 keys screen."""
HISTORY_COLUMNS = (("run", "Run"), ("status", "Status"), ("when", "Started"), ("time", "Time"), ("message", "Message"))
NODE_COLUMN = ("node", "Node")
"""Column added after the status column once a run in the history ran on a cluster node, so the
history of an agent that only runs locally keeps its columns."""


class HistoryLoaded(Message):
    def __init__(self, runs: list[RunRecord]) -> None:
        super().__init__()
        self.runs = runs


class ZoomScreen(Screen[None]):
    """A full-screen view of one agent."""

    CSS_PATH = "zoom.tcss"
    BINDINGS = bindings.bindings(bindings.ZOOM)

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent
        self.run_id: str | None = None
        self.history: list[RunRecord] = []
        self._side_choice: bool | None = None
        self._shown_subagents: list[SubAgent] | None = None
        self._shown_todo: list[TodoItem] | None = None

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    @property
    def state(self) -> AgentState:
        return self.cockpit.model.agents[self.agent].state

    def compose(self) -> ComposeResult:
        with Vertical(id="zoom-head"):
            with Horizontal(classes="head-line"):
                yield StatusBadge(self.state.status)
                yield Label(self.agent, id="zoom-title", markup=False)
                yield Label("", id="zoom-node", markup=False)
                yield Label("", id="zoom-run", markup=False)
                yield Label("FOLLOWING", id="zoom-follow")
            yield Label("", id="zoom-subject", markup=False)
            yield Label("", id="zoom-stats", markup=False)
        with Horizontal(id="zoom-body"):
            with Vertical(id="zoom-main"):
                yield TranscriptView(id="transcript")
                with VerticalScroll(id="detail"):
                    yield Static("", id="detail-text", markup=False)
                yield Input(placeholder="search the transcript: Enter finds, Escape closes", id="search")
            with TabbedContent(id="zoom-side"):
                with TabPane("Todo", id="tab-todo"):
                    yield Static("", id="todo", markup=False)
                with TabPane("Sub-agents", id="tab-subagents"):
                    yield Tree(self.agent, id="subagents")
                with TabPane("Runs", id="tab-runs"):
                    yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield FittingFooter(FOOTER_SHORT, FOOTER_OPTIONAL)

    def on_mount(self) -> None:
        mark_standard_colors(self)
        self._set_history_columns(with_node=False)
        self.query_one("#subagents", Tree).root.expand()
        self._arrange_side()
        self.run_id = self.state.run or self._latest_run_id()
        self._open_transcript()
        self._show_state(self.state, force=True)
        self.query_one(TranscriptView).focus()
        self._load_history()

    def on_resize(self) -> None:
        self._arrange_side()

    def _arrange_side(self) -> None:
        narrow = self.size.width < NARROW_WIDTH
        hidden = narrow if self._side_choice is None else not self._side_choice
        self.set_class(hidden, "-side-hidden")

    # Runs and transcript -------------------------------------------------------------------

    def _latest_run_id(self) -> str | None:
        runs = [run for run in self.cockpit.model.runs.values() if run.agent == self.agent]
        runs.sort(key=lambda run: run.started_at or 0)
        return runs[-1].id if runs else None

    def transcript_path(self, run_id: str) -> tuple[Path, bool]:
        """Return the file with a run's transcript, and whether it contains events (else plain text)."""
        run_dir = self.cockpit.source.paths.run_dir(run_id)
        events = run_dir / "events.jsonl"
        if events.exists() or not (run_dir / "stdout").exists():
            return events, True
        return run_dir / "stdout", False

    def _open_transcript(self) -> None:
        view = self.query_one(TranscriptView)
        if self.run_id is None:
            view.open(None)
            self.query_one("#detail-text", Static).update(f"{self.agent} has no runs yet; n on the main screen sends it a request.")
        else:
            path, events = self.transcript_path(self.run_id)
            view.open(path, events=events)
        self._show_run_label()

    def _show_run_label(self) -> None:
        """Show the viewed run's id, and ``node ADDRESS`` before it when the run is on a cluster node.

        The node comes first because a narrow terminal cuts the long run id at its end.
        """
        node = self._viewed_node() if self.run_id is not None else None
        node_label = self.query_one("#zoom-node", Label)
        node_label.update(f"node {sanitize_line(node)} ·" if node else "")
        node_label.set_class(bool(node), "-on-node")
        self.query_one("#zoom-run", Label).update(f"run {self.run_id}" if self.run_id else "no run")

    def _viewed_node(self) -> str | None:
        """Return the cluster node of the viewed run, or None for a local run.

        The run record carries the node. The agent's state carries the node of its current run
        too, and it can arrive there before the cockpit's copy of the record is refreshed.
        """
        record = self._viewed_record()
        if record is not None and record.node:
            return record.node
        state = self.state
        if self.run_id == state.run and state.node:
            return state.node
        return None

    def show_run(self, run_id: str) -> None:
        """Show another run's transcript (from the run history)."""
        if run_id != self.run_id:
            self.run_id = run_id
            self._open_transcript()
            self._show_side(force=True)

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _load_history(self) -> None:
        self.post_message(HistoryLoaded(self.cockpit.source.run_history(self.agent)))

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        self.history = message.runs
        if self.run_id is None and self.history:
            self.run_id = self.history[0].id
            self._open_transcript()
        self._show_run_label()
        self._show_history()
        self._show_side(force=True)

    def _set_history_columns(self, with_node: bool) -> None:
        """Replace the run history's columns, with the node column after the status column or without it."""
        table = self.query_one("#runs", DataTable)
        table.clear(columns=True)
        columns = list(HISTORY_COLUMNS)
        if with_node:
            columns.insert(2, NODE_COLUMN)
        for key, label in columns:
            table.add_column(label, key=key)

    def _show_history(self) -> None:
        table = self.query_one("#runs", DataTable)
        with_node = any(run.node for run in self.history)
        if with_node != ("node" in table.columns):
            self._set_history_columns(with_node)
        table.clear()
        now = clock.now()
        for run in self.history:
            marker = "▶ " if run.id == self.run_id else ""
            started = f"{format_duration(now - run.started_at)} ago" if run.started_at else "–"
            node = (Text(sanitize_line(run.node or "")),) if with_node else ()
            table.add_row(
                Text(marker + describe.short_id(run.id)),
                Text(run.status.value),
                *node,
                Text(started),
                Text(format_duration(describe.run_duration(run, now))),
                Text(shorten(sanitize_line(run.message or ""), 60)),
                key=run.id,
            )

    @on(DataTable.RowSelected, "#runs")
    def _run_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.show_run(str(event.row_key.value))
            self._show_history()
            self.query_one(TranscriptView).focus()

    # Updates -------------------------------------------------------------------------------

    def apply_changes(self, changes: Changes, tick: bool = False) -> None:
        if self.agent not in self.cockpit.model.agents:
            return
        state = self.state
        if tick or self.agent in changes.agents:
            follow = self.query_one(TranscriptView).follow
            if state.run and state.run != self.run_id and follow:
                self.run_id = state.run
                self._open_transcript()
            self._show_state(state)
        if any(run.agent == self.agent for run in changes.finished):
            self._load_history()

    def _show_state(self, state: AgentState, force: bool = False) -> None:
        self.query_one(StatusBadge).show_status(state.status)
        self.query_one("#zoom-title", Label).update(f"{state.name} · {describe.identity(state)}")
        self.query_one("#zoom-subject", Label).update(describe.subject(state))
        self.query_one("#zoom-stats", Label).update(describe.stats(state, clock.now()))
        self._show_run_label()
        self._show_follow()
        self._show_side(force)

    def _viewed_record(self) -> RunRecord | None:
        if self.run_id is None:
            return None
        record = self.cockpit.model.runs.get(self.run_id)
        if record is None:
            record = next((run for run in self.history if run.id == self.run_id), None)
        return record

    def _show_side(self, force: bool = False) -> None:
        state = self.state
        if self.run_id is not None and self.run_id == state.run and state.status in describe.ACTIVE_STATUSES:
            todo, subagents = list(state.todo), list(state.subagents)
        else:
            record = self._viewed_record()
            todo = list(record.summary.todo) if record else []
            subagents = list(record.summary.subagents.values()) if record else []
        if force or todo != self._shown_todo:
            self._shown_todo = todo
            self._show_todo(todo)
        if force or subagents != self._shown_subagents:
            self._shown_subagents = subagents
            self._show_subagents(subagents)

    def _show_todo(self, todo: list[TodoItem]) -> None:
        if not todo:
            self.query_one("#todo", Static).update("no todo list in this run")
            return
        done = sum(1 for item in todo if item.status == "completed")
        lines = [f"{done}/{len(todo)} done"] + [f"{TODO_MARKS[item.status]} {sanitize_line(item.text)}" for item in todo]
        self.query_one("#todo", Static).update("\n".join(lines))

    def _show_subagents(self, subagents: list[SubAgent]) -> None:
        tree = self.query_one("#subagents", Tree)
        tree.clear()
        tree.root.set_label(f"{self.agent} ({len(subagents)} sub-agents)")
        nodes = {}
        pending = list(subagents)
        # Parents come before children in the list only by chance, so place what can be placed until done.
        while pending:
            placed = False
            for sub in list(pending):
                parent = nodes.get(sub.parent) if sub.parent else tree.root
                if parent is None and sub.parent not in {s.id for s in pending}:
                    parent = tree.root
                if parent is None:
                    continue
                label = f"{sub.status.upper()} {sanitize_line(sub.kind or 'sub-agent')}: {shorten(sanitize_line(sub.description), 60)}"
                node = parent.add(label, expand=True)
                if sub.last_message:
                    node.add_leaf(shorten(sanitize_line(sub.last_message), 80))
                nodes[sub.id] = node
                pending.remove(sub)
                placed = True
            if not placed:
                break
        tree.root.expand()

    def _show_follow(self) -> None:
        follow = self.query_one(TranscriptView).follow
        label = self.query_one("#zoom-follow", Label)
        label.update("FOLLOWING" if follow else "PAUSED")
        label.set_class(not follow, "-paused")

    def on_transcript_view_cursor_moved(self, message: TranscriptView.CursorMoved) -> None:
        lines = message.lines[:DETAIL_LINES]
        if len(message.lines) > DETAIL_LINES:
            lines.append(f"… {len(message.lines) - DETAIL_LINES} more lines")
        text = Text("\n".join(lines))
        query = self.query_one(TranscriptView).search_query
        if query:
            text.highlight_words([query], style="reverse", case_sensitive=False)
        self.query_one("#detail-text", Static).update(text)
        self._show_follow()

    def on_transcript_view_search_finished(self, message: TranscriptView.SearchFinished) -> None:
        if message.row is None and message.query:
            self.notify(f"no match for {message.query!r} in this run", title="Search", severity="warning")
        elif message.wrapped:
            self.notify("search wrapped around the transcript", title="Search", timeout=2)

    # Actions -------------------------------------------------------------------------------

    def action_back(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_focus:
            search.remove_class("-open")
            self.query_one(TranscriptView).focus()
            return
        self.dismiss()

    def action_toggle_follow(self) -> None:
        view = self.query_one(TranscriptView)
        view.follow = not view.follow
        self._show_follow()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.add_class("-open")
        search.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        view = self.query_one(TranscriptView)
        view.search(event.value.strip(), forward=True)
        view.focus()

    def action_search_next(self) -> None:
        self._repeat_search(forward=True)

    def action_search_previous(self) -> None:
        self._repeat_search(forward=False)

    def _repeat_search(self, forward: bool) -> None:
        view = self.query_one(TranscriptView)
        if not view.search_query:
            self.action_search()
            return
        view.search(view.search_query, forward=forward)

    def action_toggle_side(self) -> None:
        self._side_choice = self.has_class("-side-hidden")
        self._arrange_side()

    def action_stop(self) -> None:
        self.cockpit.confirm_stop(self.agent)
