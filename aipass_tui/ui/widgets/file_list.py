"""The changed files of a pull request: one row each, drawn only while on screen.

A row shows the viewed mark, the status letter, the path (``old → new`` for a rename, cut from
the left to fit) and the line counts, or ``bin`` for a binary file and ``mode`` for a mode
change. A path outside the files the plan assigned to the task is drawn in red with a ``!``.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from aipass_tui.core.pulls import PullFile
from aipass_tui.ui import bindings
from aipass_tui.ui.diff_rows import LETTERS
from aipass_tui.ui.widgets.color_mode import STANDARD_COLORS, mark_standard_colors


def file_label(entry: PullFile) -> str:
    """Return the path as listed: ``old → new`` for a rename or copy."""
    if entry.old_path is not None:
        return f"{entry.old_path} → {entry.path}"
    return entry.path


def file_counts(entry: PullFile) -> str:
    """Return the right-hand column: ``+3 −1``, ``bin``, with ``mode`` for a mode change."""
    parts: list[str] = []
    if entry.binary:
        parts.append("bin")
    elif entry.additions or entry.deletions or not entry.mode_change:
        parts.append(f"+{entry.additions} −{entry.deletions}")
    if entry.mode_change:
        parts.append("mode")
    return " ".join(parts)


def cut_left(text: str, cells: int) -> str:
    """Return ``text`` cut to ``cells`` columns from the left, with ``…`` where it was cut."""
    if cell_len(text) <= cells:
        return text
    if cells <= 1:
        return "…"[:cells]
    tail = text
    while tail and cell_len(tail) > cells - 1:
        tail = tail[1:]
    return "…" + tail


class FileList(ScrollView, can_focus=True):
    """Changed files with a cursor; posts ``Highlighted`` when it moves and ``Selected`` on Enter."""

    COMPONENT_CLASSES = {
        "file-list--cursor",
        "file-list--viewed",
        "file-list--violation",
        "file-list--added",
        "file-list--deleted",
        "file-list--modified",
        "file-list--renamed",
        "file-list--additions",
        "file-list--deletions",
        "file-list--muted",
    }

    BINDINGS = bindings.bindings(bindings.FILES)

    DEFAULT_CSS = """
    FileList { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    FileList > .file-list--cursor { background: $accent 45%; text-style: bold; }
    FileList:blur > .file-list--cursor { background: $accent 20%; text-style: none; }
    FileList > .file-list--viewed { color: $success; }
    FileList > .file-list--violation { color: $error; text-style: bold; }
    FileList > .file-list--added { color: $success; text-style: bold; }
    FileList > .file-list--deleted { color: $error; text-style: bold; }
    FileList > .file-list--modified { color: $warning; text-style: bold; }
    FileList > .file-list--renamed { color: $primary-lighten-2; text-style: bold; }
    FileList > .file-list--additions { color: $success; }
    FileList > .file-list--deletions { color: $error; }
    FileList > .file-list--muted { color: $text-muted; }
    FileList.-standard-colors > .file-list--cursor { background: $block-cursor-background; color: $background; }
    FileList.-standard-colors:blur > .file-list--cursor { background: $panel; color: $foreground; }
    FileList.-standard-colors > .file-list--renamed { color: $primary; }
    """
    """With 16 colours the cursor row is drawn in one colour pair (see ``render_line``), and the
    renamed letter turns from light blue, which becomes a dark blue, to the primary colour (cyan)."""

    class Highlighted(Message):
        """The cursor moved to file ``index``."""

        def __init__(self, file_list: "FileList", index: int) -> None:
            super().__init__()
            self.file_list = file_list
            self.index = index

        @property
        def control(self) -> "FileList":
            return self.file_list

    class Selected(Message):
        """Enter was pressed on file ``index``."""

        def __init__(self, file_list: "FileList", index: int) -> None:
            super().__init__()
            self.file_list = file_list
            self.index = index

        @property
        def control(self) -> "FileList":
            return self.file_list

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.files: list[PullFile] = []
        self.viewed: set[str] = set()
        self.violations: set[str] = set()
        self.cursor = 0

    @property
    def row_count(self) -> int:
        return len(self.files)

    @property
    def selected(self) -> PullFile | None:
        return self.files[self.cursor] if 0 <= self.cursor < len(self.files) else None

    def set_files(self, files: list[PullFile], viewed: set[str], violations: set[str], *, keep: str | None = None) -> None:
        """Show ``files``; the cursor goes to path ``keep`` when it is still listed, else to the first file."""
        self.files = files
        self.viewed = viewed
        self.violations = violations
        self.virtual_size = Size(self.scrollable_content_region.width, len(files))
        index = next((i for i, entry in enumerate(files) if entry.path == keep), 0) if keep is not None else 0
        self.move_cursor(index, announce=True)

    def set_marks(self, viewed: set[str], violations: set[str]) -> None:
        self.viewed = viewed
        self.violations = violations
        self.refresh()

    def index_of(self, path: str) -> int | None:
        return next((i for i, entry in enumerate(self.files) if entry.path == path), None)

    # Drawing ---------------------------------------------------------------------------------

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(name, partial=True)

    def on_mount(self) -> None:
        mark_standard_colors(self)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = self.scroll_offset.y + y
        if not 0 <= index < len(self.files):
            return Strip.blank(width, base)
        entry = self.files[index]
        row_style = base + self.get_component_rich_style("file-list--cursor") if index == self.cursor else base
        violation = entry.path in self.violations

        text = Text(no_wrap=True, end="")
        if entry.path in self.viewed:
            text.append("✓", self._style("file-list--viewed"))
        else:
            text.append(" ")
        text.append("!" if violation else " ", self._style("file-list--violation"))
        letter_style = {
            "added": "file-list--added",
            "deleted": "file-list--deleted",
            "renamed": "file-list--renamed",
            "copied": "file-list--renamed",
        }.get(entry.status, "file-list--modified")
        text.append(LETTERS.get(entry.status, "?"), self._style(letter_style))
        text.append(" ")

        counts = file_counts(entry)
        room = max(1, width - 4 - cell_len(counts) - 1)
        text.append(cut_left(file_label(entry), room), self._style("file-list--violation") if violation else Style.null())
        padding = max(1, width - text.cell_len - cell_len(counts))
        text.append(" " * padding)


        if entry.binary or not (entry.additions or entry.deletions):
            text.append(counts, self._style("file-list--muted"))
        else:
            text.append(f"+{entry.additions}", self._style("file-list--additions"))
            text.append(" ")
            text.append(f"−{entry.deletions}", self._style("file-list--deletions"))
            if entry.mode_change:
                text.append(" mode", self._style("file-list--muted"))
        if index == self.cursor and self.has_class(STANDARD_COLORS):
            # With 16 colours no letter or count colour is readable on every cursor background,
            # so the cursor row drops them and shows the marks and counts in its own colours.
            text = Text(text.plain, no_wrap=True, end="")
        # The row style goes underneath, so the status and count colours stay.
        return Strip(list(text.render(self.app.console))).crop_extend(0, width, None).apply_style(row_style)

    # Cursor ----------------------------------------------------------------------------------

    def move_cursor(self, index: int, *, announce: bool = False) -> None:
        """Put the cursor on file ``index`` and scroll it into view; posts Highlighted when it moved."""
        if not self.files:
            self.cursor = 0
            self.refresh()
            return
        index = max(0, min(index, len(self.files) - 1))
        moved = index != self.cursor
        self.cursor = index
        height = max(1, self.scrollable_content_region.height)
        first = self.scroll_offset.y
        if index < first:
            self.scroll_to(y=index, animate=False, immediate=True)
        elif index >= first + height:
            self.scroll_to(y=index - height + 1, animate=False, immediate=True)
        self.refresh()
        if moved or announce:
            self.post_message(self.Highlighted(self, index))

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.files) - 1)

    def action_select(self) -> None:
        if self.files:
            self.post_message(self.Selected(self, self.cursor))

    def on_click(self, event: Click) -> None:
        self.move_cursor(self.scroll_offset.y + event.y)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.files))
