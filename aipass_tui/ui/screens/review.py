"""The pull request list, and the one way review screens call the core's review commands.

Review commands (``pr.merge``, ``pr.comment``, ...) run git, so ``PullCommands`` runs them on a
thread worker through ``run_handler`` with the cockpit's orchestrator, and the worker posts the
outcome back as a message. Every changed pull request record is then handed to each open
review screen (``announce_pulls``), as the orchestrator's ``PullChanged`` notices are.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, cast

from rich.cells import cell_len
from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Label, Static
from textual.worker import get_current_worker

from aipass_tui.core import clock
from aipass_tui.core.handlers import HandlerContext, HandlerError, run_handler
from aipass_tui.core.pulls import ACTIVE_STATUSES, PullRequest, PullStatus, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.ui import bindings
from aipass_tui.ui.source import RecordedSource
from aipass_tui.ui.text import format_duration, sanitize_line, shorten
from aipass_tui.ui.widgets.color_mode import mark_standard_colors, uses_standard_colors
from aipass_tui.ui.widgets.fitting_footer import FittingFooter

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp
    from aipass_tui.ui.model import Changes

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0
"""How often the list compares the pull request files on disk with what it shows."""
FAILED_CHECKS = ("failed", "timed_out", "error")
STATUS_STYLES = {
    PullStatus.OPEN: "bold",
    PullStatus.CHANGES_REQUESTED: "yellow",
    PullStatus.APPROVED: "green",
    PullStatus.MERGED: "magenta",
    PullStatus.CLOSED: "dim",
    PullStatus.CONFLICT: "bold red",
}
STANDARD_STYLES = {
    "red": "#ff5555",
    "bold red": "bold #ff5555",
    "magenta": "#ff55ff",
    "yellow": "#ffff55",
}
"""Styles of the list's words on terminals with 16 colours. Textual's ANSI theme (8.2.8) turns red and
magenta into colour 5 (dark magenta), which is hard to read on black in many terminal palettes.
The hex values are the VGA bright red, magenta and yellow, which convert to colours 9, 13 and 11."""
COLUMNS = (
    ("id", "#"),
    ("agent", "Agent"),
    ("title", "Title"),
    ("files", "Files"),
    ("lines", "+/−"),
    ("checks", "Checks"),
    ("status", "Status"),
    ("violations", "Outside"),
    ("age", "Age"),
)
CELL_PADDING = 2
"""Cells around each column's text (DataTable's ``cell_padding`` of 1 on both sides)."""
TITLE_MAX_CELLS = 48
TITLE_MIN_CELLS = 12
"""Title width below which the list narrows or drops another column instead of the title."""
AGENT_MAX_CELLS = 16
AGENT_NARROW_CELLS = 10
AGE_CELLS = 6
"""Widest ``format_duration`` text below 100 days (``59m59s``, ``23h59m``, ``99d23h``), reserved
because the ages grow on every tick without a new layout."""
NARROWING = ("files", "lines", "agent", "age", "violations", "checks")
"""Steps that make room for the title, in order. Each step drops its column, except ``agent``,
which shortens agent names to ``AGENT_NARROW_CELLS``."""


@dataclass(frozen=True)
class ReviewLayout:
    """The pull request table's columns for one width, with the max text width of agent and title."""

    columns: tuple[tuple[str, str], ...]
    agent: int
    title: int

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.columns)


def review_layout(width: int, cells: dict[str, int]) -> ReviewLayout:
    """Choose the columns and text widths that fit a table ``width`` cells wide.

    ``cells`` maps each column key to the width of its widest text, header included. A table
    wide enough for every column at those widths keeps them all, with titles up to
    ``TITLE_MAX_CELLS``. Otherwise the title shrinks down to ``TITLE_MIN_CELLS``, and then the
    steps of ``NARROWING`` apply one by one until the title gets that much room. Status words are
    never cut. The detail box below the table shows what the table leaves out for the selected
    pull request.

    NOTE: the id, agent, title and status columns always stay. With one-digit ids, agent names of
    10 cells and a ``changes requested`` status they need 49 cells, so a narrower table overflows.
    """
    agent = min(cells["agent"], AGENT_MAX_CELLS)
    widths = {**cells, "agent": agent, "age": max(cells["age"], AGE_CELLS)}
    dropped: set[str] = set()
    steps = iter(NARROWING)
    while True:
        shown = [key for key, _ in COLUMNS if key not in dropped]
        room = width - sum(widths[key] + CELL_PADDING for key in shown if key != "title") - CELL_PADDING
        if room >= min(TITLE_MIN_CELLS, widths["title"]):
            break
        step = next(steps, None)
        if step is None:
            break
        if step == "agent":
            widths["agent"] = min(widths["agent"], AGENT_NARROW_CELLS)
        else:
            dropped.add(step)
    title = min(TITLE_MAX_CELLS, max(TITLE_MIN_CELLS, room))
    columns = tuple(column for column in COLUMNS if column[0] not in dropped)
    return ReviewLayout(columns, widths["agent"], title)


# Pull request notices --------------------------------------------------------------------------


def announce_pulls(app: App[Any], records: list[dict[str, Any]]) -> None:
    """Hand changed pull request records to every open screen that shows pull requests.

    The app does the same with the orchestrator's ``PullChanged`` notices.
    """
    for screen in list(app.screen_stack):
        receive = getattr(screen, "pulls_changed", None)
        if receive is not None:
            receive(records)


# Labels ------------------------------------------------------------------------------------------


def list_style(style: str, standard_colors: bool) -> str:
    """Return ``style``, or its replacement from ``STANDARD_STYLES`` on a terminal with 16 colours."""
    return STANDARD_STYLES.get(style, style) if standard_colors else style


def checks_label(pull: PullRequest, standard_colors: bool = False) -> Text:
    """Return ``passed``, ``failed 1/3`` or ``none``, coloured."""
    if not pull.checks:
        return Text("none", style="dim")
    failed = sum(1 for check in pull.checks if check.status in FAILED_CHECKS)
    if failed:
        return Text(f"failed {failed}/{len(pull.checks)}", style=list_style("bold red", standard_colors))
    return Text("passed", style="green")


def status_label(pull: PullRequest, standard_colors: bool = False) -> Text:
    # "changes_requested" reads as "changes requested"
    return Text(pull.status.value.replace("_", " "), style=list_style(STATUS_STYLES.get(pull.status, ""), standard_colors))


def list_order(pulls: list[PullRequest]) -> list[PullRequest]:
    """Return pull requests to review first (newest first), then merged and closed ones (newest first)."""
    active = sorted((p for p in pulls if p.status in ACTIVE_STATUSES), key=lambda p: -int(p.id))
    done = sorted((p for p in pulls if p.status not in ACTIVE_STATUSES), key=lambda p: -int(p.id))
    return active + done


# Commands ------------------------------------------------------------------------------------------


class PullCommandFinished(Message):
    """A review command ended on its worker: ``result`` on success, else ``error``."""

    def __init__(self, token: int, name: str, result: dict[str, Any] | None, error: str | None) -> None:
        super().__init__()
        self.token = token
        self.name = name
        self.result = result
        self.error = error


_tokens = itertools.count(1)
Done = Callable[[dict[str, Any]], None]


class PullCommands:
    """Mixed into screens: run a review command on a worker and call back on the UI thread."""

    _pending_commands: dict[int, tuple[str, Done | None]]

    def call_pull_command(self, title: str, name: str, args: dict[str, Any], on_done: Done | None = None) -> bool:
        """Start command ``name``; ``title`` names it in a failure notification. Return False when rejected."""
        screen = cast(Screen[Any], self)
        source = cast("AipassApp", screen.app).source
        if isinstance(source, RecordedSource):
            screen.notify("this cockpit shows a recorded snapshot, not a running orchestrator", title=f"{title} failed", severity="error")
            return False
        if not hasattr(self, "_pending_commands"):
            self._pending_commands = {}
        token = next(_tokens)
        self._pending_commands[token] = (title, on_done)
        log.info("review command %s %s", name, {k: v for k, v in args.items() if k != "body"})
        self._run_pull_command(token, HandlerContext(source.paths, source.settings, source), name, args)  # type: ignore[arg-type]
        return True

    @work(thread=True, group="pull-command", exit_on_error=False)
    def _run_pull_command(self, token: int, ctx: HandlerContext, name: str, args: dict[str, Any]) -> None:
        screen = cast(Screen[Any], self)
        try:
            result = run_handler(ctx, name, args)
        except HandlerError as exc:
            log.warning("review command %s failed: %s", name, exc)
            screen.post_message(PullCommandFinished(token, name, None, str(exc)))
            return
        except Exception as exc:  # a bug or an unexpected git failure, reported instead of lost
            log.exception("review command %s failed", name)
            screen.post_message(PullCommandFinished(token, name, None, f"{type(exc).__name__}: {exc}"))
            return
        screen.post_message(PullCommandFinished(token, name, result, None))

    def on_pull_command_finished(self, message: PullCommandFinished) -> None:
        screen = cast(Screen[Any], self)
        title, on_done = self._pending_commands.pop(message.token, (message.name, None))
        if message.error is not None:
            screen.notify(message.error, title=f"{title} failed", severity="error", timeout=10)
            return
        result = message.result or {}
        if isinstance(result.get("pull"), dict):
            announce_pulls(screen.app, [result["pull"]])
        if on_done is not None:
            on_done(result)


# The list ------------------------------------------------------------------------------------------


class PullsLoaded(Message):
    """Pull requests read from disk on a worker, with messages about unreadable files."""

    def __init__(self, pulls: list[PullRequest], problems: list[str], signature: tuple[Any, ...]) -> None:
        super().__init__()
        self.pulls = pulls
        self.problems = problems
        self.signature = signature


def folder_signature(paths: Paths) -> tuple[Any, ...]:
    """Return names, sizes and change times of the pull request files, to notice changes cheaply."""
    folder = paths.pulls
    if not folder.is_dir():
        return ()
    entries = []
    for entry in folder.glob("*.json"):
        try:
            stat = entry.stat()
        except FileNotFoundError:
            continue
        entries.append((entry.name, stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(entries))


class ReviewScreen(PullCommands, Screen[None]):
    """Every pull request with its agent, size, checks, status, violations and age."""

    CSS_PATH = "review.tcss"
    BINDINGS = bindings.bindings(bindings.REVIEW)
    BINDING_SCOPE = bindings.REVIEW

    def __init__(self) -> None:
        super().__init__()
        self.pulls: dict[str, PullRequest] = {}
        self.loaded = False
        self._order: list[str] = []
        self._signature: tuple[Any, ...] | None = None
        self._reported: set[str] = set()
        self.column_layout: ReviewLayout | None = None
        """The table's current columns, chosen from the screen's width and the pull requests shown."""

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def compose(self) -> ComposeResult:
        yield Label("Pull requests", id="review-title")
        yield DataTable(id="pulls", cursor_type="row", zebra_stripes=True)
        yield Static("", id="pull-detail", markup=False)
        yield FittingFooter({})

    def on_mount(self) -> None:
        mark_standard_colors(self)
        self._sync()
        self.query_one(DataTable).focus()
        self.reload()
        if not self.cockpit.frozen:
            self.set_interval(POLL_SECONDS, self._poll, name="pull-poll")

    # Loading -------------------------------------------------------------------------------

    def reload(self, *, only_if_changed: bool = False) -> None:
        """Read the pull requests from disk again (on a worker)."""
        self._load(self.cockpit.source.paths, None if not only_if_changed else self._signature)

    def _poll(self) -> None:
        self.reload(only_if_changed=True)

    @work(thread=True, exclusive=True, group="pull-list", exit_on_error=False)
    def _load(self, paths: Paths, previous: tuple[Any, ...] | None) -> None:
        signature = folder_signature(paths)
        if previous is not None and signature == previous:
            return
        store = PullStore(paths)
        pulls = store.list()
        if not get_current_worker().is_cancelled:  # a newer reload started meanwhile and reads newer files
            self.post_message(PullsLoaded(pulls, store.problems, signature))

    def on_pulls_loaded(self, message: PullsLoaded) -> None:
        self._signature = message.signature
        self.pulls = {pull.id: pull for pull in message.pulls}
        self.loaded = True
        for problem in message.problems:
            if problem not in self._reported:
                self._reported.add(problem)
                self.notify(problem, title="Unreadable pull request", severity="error", timeout=10)
        self._sync()

    def pulls_changed(self, records: list[dict[str, Any]]) -> None:
        """Reload from disk when the orchestrator or a review command changed a pull request."""
        self.reload()

    def apply_changes(self, changes: "Changes", tick: bool = False) -> None:
        if tick and self.pulls:
            self._update_ages()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        self._sync()

    # Rows ----------------------------------------------------------------------------------

    def _cells(self, pull: PullRequest, now: float, agent: int = AGENT_MAX_CELLS, title: int = TITLE_MAX_CELLS) -> dict[str, Text]:
        """Return the cells of ``pull`` by column key, with agent and title cut to ``agent`` and ``title`` cells."""
        standard = uses_standard_colors(self.app)
        red = list_style("red", standard)
        violations = Text(str(len(pull.violations)), style=list_style("bold red", standard)) if pull.violations else Text("")
        return {
            "id": Text(f"#{pull.id}", justify="right"),
            "agent": Text(shorten(sanitize_line(pull.agent), agent)),
            "title": Text(shorten(sanitize_line(pull.title), title)),
            "files": Text(str(len(pull.files)), justify="right"),
            "lines": Text.assemble((f"+{pull.additions}", "green"), " ", (f"−{pull.deletions}", red)),
            "checks": checks_label(pull, standard),
            "status": status_label(pull, standard),
            "violations": violations,
            "age": Text(format_duration(now - pull.created_at), justify="right"),
        }

    def _fit_columns(self, ordered: list[PullRequest], now: float) -> ReviewLayout:
        """Choose the columns for the screen's width and set them on the table when they changed.

        The table spans the screen. Its vertical scrollbar's cells are always left free, so the
        columns still fit once the rows outgrow the table's height.
        """
        table = self.query_one(DataTable)
        cells = {key: cell_len(label) for key, label in COLUMNS}
        for pull in ordered:
            for key, text in self._cells(pull, now).items():
                cells[key] = max(cells[key], text.cell_len)
        layout = review_layout(self.size.width - table.styles.scrollbar_size_vertical, cells)
        if layout.columns != (self.column_layout.columns if self.column_layout else None):
            table.clear(columns=True)
            for key, label in layout.columns:
                table.add_column(label, key=key)
        self.column_layout = layout
        return layout

    def _sync(self) -> None:
        table = self.query_one(DataTable)
        selected = self.selected_pull()
        ordered = list_order(list(self.pulls.values()))
        now = clock.now()
        layout = self._fit_columns(ordered, now)
        table.clear()
        self._order = [pull.id for pull in ordered]
        for pull in ordered:
            cells = self._cells(pull, now, layout.agent, layout.title)
            table.add_row(*(cells[key] for key in layout.keys), key=pull.id)
        if selected is not None and selected.id in self._order:
            table.move_cursor(row=self._order.index(selected.id), animate=False)
        active = sum(1 for pull in ordered if pull.status in ACTIVE_STATUSES)
        self.query_one("#review-title", Label).update(
            f"Pull requests · {active} to review · {len(ordered) - active} merged or closed"
        )
        self._show_detail()

    def _update_ages(self) -> None:
        if self.column_layout is None or "age" not in self.column_layout.keys:
            return
        table = self.query_one(DataTable)
        now = clock.now()
        for pull_id in self._order:
            pull = self.pulls[pull_id]
            table.update_cell(pull_id, "age", Text(format_duration(now - pull.created_at), justify="right"))

    def selected_pull(self) -> PullRequest | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return self.pulls.get(str(row_key.value))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_pull()

    def _show_detail(self) -> None:
        detail = self.query_one("#pull-detail", Static)
        pull = self.selected_pull()
        if pull is None:
            detail.update("no pull requests yet: agents working in worktrees open one when a run ends with changes")
            return
        lines = [
            f"#{pull.id} · {pull.branch} → {pull.target} · head {pull.head[:12]} · "
            f"{len(pull.comments)} comments · updated {format_duration(clock.now() - pull.updated_at)} ago"
        ]
        if pull.message:
            lines.append(sanitize_line(pull.message))
        if pull.violations:
            lines.append(f"outside the plan task's files: {', '.join(pull.violations[:8])}" + (" …" if len(pull.violations) > 8 else ""))
        lines += self._left_out(pull)
        if pull.body:
            lines.append(shorten(sanitize_line(pull.body.strip().splitlines()[0]), 200))
        detail.update("\n".join(lines))

    def _left_out(self, pull: PullRequest) -> list[str]:
        """Return the detail lines for what the table cuts or leaves out of ``pull``.

        Violations are left out here because the detail box lists them by name anyway.
        """
        layout = self.column_layout
        if layout is None:
            return []
        lines = []
        agent = sanitize_line(pull.agent)
        title = sanitize_line(pull.title)
        if cell_len(agent) > layout.agent or cell_len(title) > layout.title:
            lines.append(f"{agent}: {title}")
        parts = []
        if "files" not in layout.keys:
            parts.append(f"{len(pull.files)} file{'s' if len(pull.files) != 1 else ''}")
        if "lines" not in layout.keys:
            parts.append(f"+{pull.additions} −{pull.deletions}")
        if "checks" not in layout.keys:
            parts.append(f"checks {checks_label(pull).plain}")
        if "age" not in layout.keys:
            parts.append(f"opened {format_duration(clock.now() - pull.created_at)} ago")
        if parts:
            lines.append(" · ".join(parts))
        return lines

    # Actions -------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_reload(self) -> None:
        self.reload()

    def action_open_pull(self) -> None:
        from aipass_tui.ui.screens.pull import PullScreen

        pull = self.selected_pull()
        if pull is not None:
            self.app.push_screen(PullScreen(pull))

    def action_show_checks(self) -> None:
        from aipass_tui.ui.screens.checks import ChecksScreen

        pull = self.selected_pull()
        if pull is not None:
            self.app.push_screen(ChecksScreen(pull))
