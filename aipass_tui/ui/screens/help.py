"""The keys screen: every action, its keys (after remapping) and its binding id."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from aipass_tui.ui import bindings

REMAP_HINT = (
    "Remap a key by its binding id in .aipass/config.toml or ~/.config/aipass-tui/config.toml:\n"
    '[ui.keys]\ndispatch = "ctrl+n"        # several keys: "ctrl+n,f2"'
)


class HelpScreen(ModalScreen[None]):
    """Lists every key from the action registry; Escape or F1 closes it."""

    CSS_PATH = "help.tcss"
    BINDINGS = bindings.bindings(bindings.HELP)

    def __init__(self, keymap: dict[str, str]) -> None:
        super().__init__()
        self.keymap = keymap

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("Keys", id="help-title")
            yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)
            yield Static(REMAP_HINT, id="help-hint", markup=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Where", key="scope")
        table.add_column("Keys", key="keys")
        table.add_column("Action", key="action")
        table.add_column("Binding id", key="id")
        table.add_row(Text("Everywhere"), Text("ctrl+p"), Text("Open the command palette: every action by name"), Text(""))
        for scope, keys, description, binding_id in bindings.help_rows(self.keymap):
            table.add_row(Text(scope), Text(keys, style="bold"), Text(description), Text(binding_id))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
