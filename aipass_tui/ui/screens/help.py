"""The keys screen: every action, its keys (after remapping) and its binding id."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from aipass_tui.ui import bindings

REMAP_HINT = (
    "Remap a key by its binding id in .aipass/config.toml or ~/.config/aipass-tui/config.toml:\n"
    '[ui.keys]\ndispatch = "ctrl+n"        # several keys: "ctrl+n,f2"'
)
PALETTE_ROW = ("Everywhere", "ctrl+p", "Open the command palette: every action by name", "")
COLUMNS = (("scope", "Where"), ("keys", "Keys"), ("action", "Action"), ("id", "Binding id"))
HELP_MAX_WIDTH = 120
"""Max width of the dialog in cells, the same as the width of ``#help`` in help.tcss."""
HELP_CHROME = 4
"""Cells of ``#help`` around the table: the thick border and the padding, one of each on both sides."""
CELL_PADDING = 2
"""Cells around each column's text (DataTable's ``cell_padding`` of 1 on both sides)."""
KEYS_MAX_CELLS = 14
WHERE_MIN_CELLS = 12
ACTION_MIN_CELLS = 16


@dataclass(frozen=True)
class HelpColumns:
    """Text widths of the keys table's columns. Longer scopes, keys and actions wrap onto more lines."""

    scope: int
    keys: int
    action: int
    id: int

    def widths(self) -> dict[str, int]:
        return {"scope": self.scope, "keys": self.keys, "action": self.action, "id": self.id}


def help_columns(width: int, rows: list[tuple[str, str, str, str]]) -> HelpColumns:
    """Choose column widths that fit a table ``width`` cells wide for ``rows``.

    Binding ids never wrap, because users copy them into the config file. The keys column takes
    its widest text up to ``KEYS_MAX_CELLS``. Where gets a third of the rest, at least
    ``WHERE_MIN_CELLS``, and Action takes what is left.

    NOTE: Action keeps at least ``ACTION_MIN_CELLS``. With the default keys the table then needs
    68 cells, so a narrower one scrolls sideways.
    """
    natural = {
        key: max([cell_len(label)] + [cell_len(row[index]) for row in rows])
        for index, (key, label) in enumerate(COLUMNS)
    }
    binding_id = natural["id"]
    keys = min(natural["keys"], KEYS_MAX_CELLS)
    room = width - len(COLUMNS) * CELL_PADDING - binding_id - keys
    scope = min(natural["scope"], max(WHERE_MIN_CELLS, room // 3))
    action = min(natural["action"], max(ACTION_MIN_CELLS, room - scope))
    return HelpColumns(scope, keys, action, binding_id)


class HelpScreen(ModalScreen[None]):
    """Lists every key from the action registry; Escape or F1 closes it."""

    CSS_PATH = "help.tcss"
    BINDINGS = bindings.bindings(bindings.HELP)

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap
        self.key_rows = [PALETTE_ROW, *bindings.help_rows(keymap)]
        self.column_widths: HelpColumns | None = None
        """The table's current column widths, chosen from the screen's width."""

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("Keys", id="help-title")
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
            yield Static(REMAP_HINT, id="help-hint", markup=False)

    def on_mount(self) -> None:
        self._fit_columns(self.app.size.width)
        self.query_one(DataTable).focus()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_columns(event.size.width)

    def _fit_columns(self, screen_width: int) -> None:
        """Set the column widths for a screen ``screen_width`` cells wide, keeping the selected row.

        The vertical scrollbar's cells are always left free, because the rows outgrow the table
        at every usual terminal height.
        """
        table = self.query_one(DataTable)
        width = min(HELP_MAX_WIDTH, screen_width) - HELP_CHROME - table.styles.scrollbar_size_vertical
        columns = help_columns(width, self.key_rows)
        if columns == self.column_widths:
            return
        self.column_widths = columns
        cursor_row = table.cursor_row
        widths = columns.widths()
        table.clear(columns=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key, width=widths[key])
        for scope, keys, description, binding_id in self.key_rows:
            # height=None lets DataTable size each row to its wrapped cells.
            table.add_row(Text(scope), Text(keys, style="bold"), Text(description), Text(binding_id), height=None)
        table.move_cursor(row=min(cursor_row, table.row_count - 1), animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
