"""The dialog that writes a review comment, or the message sent with a change request."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

from aipass_tui.ui import bindings


class CommentScreen(ModalScreen[str | None]):
    """Dismisses with the text written (stripped), or None when cancelled.

    ``context`` is shown above the text box: the line or hunk commented on, or the comments a
    change request will send. An empty text is rejected unless ``allow_empty`` is true.
    """

    CSS_PATH = "comment.tcss"
    AUTO_FOCUS = "#comment-body"
    BINDINGS = bindings.bindings(bindings.COMMENT)
    BINDING_SCOPE = bindings.COMMENT

    def __init__(self, title: str, context: str, *, allow_empty: bool = False, send_label: str = "Save comment") -> None:
        super().__init__()
        self.title_text = title
        self.context = context
        self.allow_empty = allow_empty
        self.send_label = send_label

    def compose(self) -> ComposeResult:
        with Vertical(id="comment-dialog"):
            yield Label(self.title_text, id="comment-title", markup=False)
            yield Static(self.context, id="comment-context", markup=False)
            yield TextArea(id="comment-body", soft_wrap=True, show_line_numbers=False)
            yield Static("", id="comment-error", markup=False)
            with Horizontal(id="comment-buttons"):
                yield Button(f"{self.send_label} (ctrl+s)", variant="primary", id="send")
                yield Button("Cancel (Esc)", id="cancel")

    def action_submit(self) -> None:
        text = self.query_one("#comment-body", TextArea).text.strip()
        if not text and not self.allow_empty:
            self.query_one("#comment-error", Static).update("the comment is empty: write what should change")
            self.query_one("#comment-body", TextArea).focus()
            return
        self.dismiss(text)

    def action_back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#send")
    def _send(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)
