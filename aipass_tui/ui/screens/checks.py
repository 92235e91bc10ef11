"""The checks of one pull request: each command's result, and the output of the selected one.

The output comes from the last ``MAX_LOG_BYTES`` of the check's log file under
``.aipass/state/pulls/``, read on a worker. Without a log file, the stored end of the output is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Label, Log

from aipass_tui.core.pulls import CheckResult, PullRequest
from aipass_tui.ui import bindings
from aipass_tui.ui.screens.review import FAILED_CHECKS, checks_label, list_style
from aipass_tui.ui.text import sanitize, shorten
from aipass_tui.ui.widgets.color_mode import mark_standard_colors, uses_standard_colors
from aipass_tui.ui.widgets.fitting_footer import FittingFooter

if TYPE_CHECKING:
    from aipass_tui.ui.app import AipassApp

MAX_LOG_BYTES = 1 << 20
"""Bytes read from the end of a check's log; longer logs start with a line saying what was left out."""
MAX_LOG_LINES = 20_000
STATUS_STYLES = {"passed": "green", "failed": "bold red", "timed_out": "bold red", "error": "bold red"}


def status_style(status: str, standard_colors: bool = False) -> str:
    """Return the style of a check's status word, readable with 16 colours when ``standard_colors`` is set."""
    return list_style(STATUS_STYLES.get(status, ""), standard_colors)


def read_output(pulls_folder: Path, check: CheckResult) -> list[str]:
    """Return the display lines of a check's output: its message, then the end of its log."""
    lines: list[str] = []
    if check.message:
        lines.append(f"[{check.status}] {check.message}")
    text = check.output_tail
    if check.log:
        path = pulls_folder / check.log
        try:
            with path.open("rb") as handle:
                handle.seek(0, 2)
                size = handle.tell()
                handle.seek(max(0, size - MAX_LOG_BYTES))
                data = handle.read()
        except OSError as exc:
            lines.append(f"the log {path} could not be read ({exc.strerror or exc}); the stored end of the output follows")
        else:
            if size > MAX_LOG_BYTES:
                lines.append(f"… the first {size - MAX_LOG_BYTES:,} bytes of {path} are not shown")
            text = data.decode("utf-8", "replace")
    if text:
        lines.extend(sanitize(text.rstrip("\n")))
    elif not lines:
        lines.append("(no output)")
    return lines[-MAX_LOG_LINES:]


class OutputRead(Message):
    def __init__(self, index: int, lines: list[str]) -> None:
        super().__init__()
        self.index = index
        self.lines = lines


class ChecksScreen(Screen[None]):
    """Check results of a pull request with the output of the selected check."""

    CSS_PATH = "checks.tcss"
    BINDINGS = bindings.bindings(bindings.CHECKS)
    BINDING_SCOPE = bindings.CHECKS

    def __init__(self, pull: PullRequest) -> None:
        super().__init__()
        self.pull = pull
        self.selected: int | None = None

    @property
    def cockpit(self) -> "AipassApp":
        return cast("AipassApp", self.app)

    def compose(self) -> ComposeResult:
        yield Label(f"Checks of #{self.pull.id} {shorten(self.pull.title, 60)} · {checks_label(self.pull).plain}", id="checks-title", markup=False)
        yield DataTable(id="checks", cursor_type="row")
        yield Log(id="check-output", max_lines=MAX_LOG_LINES, auto_scroll=False)
        yield FittingFooter({})

    def on_mount(self) -> None:
        mark_standard_colors(self)
        standard = uses_standard_colors(self.app)
        table = self.query_one(DataTable)
        table.add_columns("Status", "Command", "Time", "Exit")
        for index, check in enumerate(self.pull.checks):
            table.add_row(
                Text(check.status.replace("_", " "), style=status_style(check.status, standard)),
                Text(shorten(check.command, 80)),
                Text(f"{check.duration:.1f} s", justify="right"),
                Text("" if check.exit_code is None else str(check.exit_code), justify="right"),
                key=str(index),
            )
        if not self.pull.checks:
            self.query_one(Log).write_line("No checks ran: set git.checks in .aipass/config.toml, for example checks = [\"pytest -q\"].")
        else:
            failed = next((i for i, check in enumerate(self.pull.checks) if check.status in FAILED_CHECKS), 0)
            table.move_cursor(row=failed, animate=False)
            self._show(failed)
        table.focus()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def _show(self, index: int) -> None:
        if index == self.selected or not 0 <= index < len(self.pull.checks):
            return
        self.selected = index
        self._read(self.cockpit.source.paths.pulls, index, self.pull.checks[index])

    @work(thread=True, exclusive=True, group="check-output", exit_on_error=False)
    def _read(self, folder: Path, index: int, check: CheckResult) -> None:
        self.post_message(OutputRead(index, read_output(folder, check)))

    def on_output_read(self, message: OutputRead) -> None:
        if message.index != self.selected:
            return
        output = self.query_one(Log)
        output.clear()
        output.write_lines(message.lines)
        output.scroll_end(animate=False)

    def action_back(self) -> None:
        self.dismiss()
