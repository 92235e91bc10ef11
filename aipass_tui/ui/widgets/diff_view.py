"""A virtualised diff view: only the rows on screen are read, highlighted and drawn.

The view shows one ``DiffDocument`` at a time, unified or side by side. ``render_line`` reads
from the patch the one row it draws (the core builds rows on access), highlights that row's
content with the file's Pygments lexer and keeps the result in a bounded cache, so the cost of
a screenful does not depend on the size of the file. A cursor row marks where a new comment
attaches; lines that already carry comments show a dot in the gutter.
"""

from __future__ import annotations

from collections import OrderedDict

from rich.segment import Segment
from rich.style import Style
from rich.syntax import SyntaxTheme
from rich.text import Text
from textual.events import Click
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from aipass_tui.core.diff import DiffLine
from aipass_tui.ui import bindings
from aipass_tui.ui.diff_rows import CommentTarget, DiffDocument, highlight, row_target, syntax_theme
from aipass_tui.ui.widgets.color_mode import mark_standard_colors, uses_standard_colors

ROW_CACHE = 4096
"""Highlighted rows kept per document; enough for many screens of scrolling back and forth."""
SHIFT_STEP = 8
"""Columns the content moves per left or right key."""
_SIGNS = {"added": "+", "removed": "-", "context": " ", "no_newline": " ", "hunk": " "}
_COMMENT_MARK = "●"


class DiffView(ScrollView, can_focus=True):
    """The rows of one file's diff with a cursor; ``split`` shows old and new side by side."""

    COMPONENT_CLASSES = {
        "diff-view--added",
        "diff-view--removed",
        "diff-view--hunk",
        "diff-view--gutter",
        "diff-view--cursor",
        "diff-view--notice",
        "diff-view--error",
        "diff-view--mark",
        "diff-view--comment",
        "diff-view--blank",
    }

    BINDINGS = bindings.bindings(bindings.DIFF)

    DEFAULT_CSS = """
    DiffView { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    DiffView > .diff-view--added { background: $success 18%; }
    DiffView > .diff-view--removed { background: $error 18%; }
    DiffView > .diff-view--hunk { background: $primary 20%; color: $text-muted; }
    DiffView > .diff-view--gutter { color: $text-muted; }
    DiffView > .diff-view--cursor { background: $accent 45%; color: $foreground; text-style: bold; }
    DiffView:blur > .diff-view--cursor { background: $accent 20%; text-style: none; }
    DiffView > .diff-view--notice { color: $text-muted; }
    DiffView > .diff-view--error { color: $error; }
    DiffView > .diff-view--mark { color: $warning; text-style: reverse; }
    DiffView > .diff-view--comment { color: $warning; text-style: bold; }
    DiffView > .diff-view--blank { background: $surface-darken-1; }
    DiffView.-standard-colors > .diff-view--cursor { background: $block-cursor-background; color: $background; }
    DiffView.-standard-colors:blur > .diff-view--cursor { background: $panel; color: $foreground; }
    """
    """With 16 colours the cursor's orange tint becomes yellow (colour 3), which is too light for
    white line numbers in some palettes, so the cursor takes the block cursor's colours instead."""

    class CursorMoved(Message):
        """The cursor moved; ``target`` is where a comment would attach (None without rows)."""

        def __init__(self, view: "DiffView", target: CommentTarget | None) -> None:
            super().__init__()
            self.view = view
            self.target = target

        @property
        def control(self) -> "DiffView":
            return self.view

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.document: DiffDocument | None = None
        self.split = False
        self.cursor = 0
        self.shift = 0
        self._texts: OrderedDict[int, Strip] = OrderedDict()
        self._comment_lines: set[tuple[str, int]] = set()
        self._comment_hunks: set[str] = set()
        self._theme: SyntaxTheme | None = None

    def on_mount(self) -> None:
        mark_standard_colors(self)

    # Document --------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        """Rows in the current layout (message lines when the document has no patch rows)."""
        document = self.document
        if document is None:
            return 0
        if not document.has_rows:
            return len(document.lines)
        if self.split:
            return len(document.ensure_split())
        return len(document.patch.rows)  # type: ignore[union-attr]

    def show(self, document: DiffDocument | None, *, cursor: int = 0) -> None:
        """Show ``document`` with the cursor on layout row ``cursor``."""
        self.document = document
        self._texts.clear()
        self.shift = 0
        self.cursor = 0
        self._resize()
        self.scroll_to(0, 0, animate=False, immediate=True)
        self.move_cursor(cursor)
        self.refresh()

    def set_split(self, split: bool) -> None:
        """Switch between unified and side-by-side rows, keeping the cursor on the same line."""
        if split == self.split:
            return
        row = self.patch_row(self.cursor)
        self.split = split
        self._resize()
        self.move_cursor(self.layout_row(row) if row is not None else 0, top=False, center=True)
        self.refresh()

    def set_comments(self, lines: set[tuple[str, int]], hunks: set[str]) -> None:
        """Mark commented lines (``(side, line)`` pairs) and hunks (by header text) in the gutter."""
        self._comment_lines = lines
        self._comment_hunks = hunks
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.row_count)

    def clear_cache(self) -> None:
        """Forget the highlighted rows, so the next frame draws them again from the patch."""
        self._texts.clear()
        self._theme = None

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.clear_cache()

    # Rows and targets --------------------------------------------------------------------------

    def patch_row(self, layout_row: int) -> int | None:
        """Return the patch row index shown at ``layout_row`` (the new side first in split mode)."""
        document = self.document
        if document is None or not document.has_rows or not 0 <= layout_row < self.row_count:
            return None
        if not self.split:
            return layout_row
        split = document.ensure_split()
        right = split.right[layout_row]
        return right if right >= 0 else split.left[layout_row]

    def layout_row(self, patch_row: int) -> int:
        """Return the layout row that shows patch row ``patch_row``."""
        document = self.document
        if document is None or not document.has_rows or not self.split:
            return patch_row
        split = document.ensure_split()
        for index in range(len(split)):
            if split.left[index] == patch_row or split.right[index] == patch_row:
                return index
        return 0

    def target(self) -> CommentTarget | None:
        """Return where a comment on the cursor row attaches, or None without a document."""
        document = self.document
        if document is None:
            return None
        row = self.patch_row(self.cursor)
        if row is None:
            return CommentTarget(document.path)
        return row_target(document.path, document.patch.rows, row)  # type: ignore[union-attr]

    def hunk_target(self) -> CommentTarget | None:
        """Return the hunk that contains the cursor row, as a comment target."""
        document = self.document
        if document is None:
            return None
        row = self.patch_row(self.cursor)
        if row is None or not document.patch or not document.patch.hunks:  # type: ignore[union-attr]
            return CommentTarget(document.path)
        hunk = document.patch.hunks[document.patch.hunk_at(row)]  # type: ignore[union-attr]
        return row_target(document.path, document.patch.rows, hunk.row)  # type: ignore[union-attr]

    # Drawing -----------------------------------------------------------------------------------

    def _syntax_theme(self) -> SyntaxTheme:
        if self._theme is None:
            dark = getattr(self.app.current_theme, "dark", True)
            self._theme = syntax_theme(dark, uses_standard_colors(self.app))
        return self._theme

    def _content(self, index: int, row: DiffLine) -> Strip:
        """Return the highlighted content of patch row ``index`` (cached)."""
        cached = self._texts.get(index)
        if cached is not None:
            self._texts.move_to_end(index)
            return cached
        document = self.document
        assert document is not None
        mark = self.get_component_rich_style("diff-view--mark", partial=True)
        if row.kind == "hunk":
            text = Text(row.text, no_wrap=True, end="")
        elif row.kind == "no_newline":
            text = Text(row.text, style=self.get_component_rich_style("diff-view--gutter", partial=True), no_wrap=True, end="")
        else:
            text = highlight(row.text, document.lexer, self._syntax_theme(), mark)
        strip = Strip(list(text.render(self.app.console)))
        self._texts[index] = strip
        if len(self._texts) > ROW_CACHE:
            self._texts.popitem(last=False)
        return strip

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        layout_row = self.scroll_offset.y + y
        document = self.document
        if document is None or layout_row >= self.row_count:
            return Strip.blank(width, base)
        if not document.has_rows:
            name = "diff-view--error" if document.error else "diff-view--notice"
            style = base + self.get_component_rich_style(name, partial=True)
            text = Text(" " + document.lines[layout_row], no_wrap=True, end="")
            return Strip(list(text.render(self.app.console))).crop_extend(0, width, None).apply_style(style)
        cursor = layout_row == self.cursor
        if not self.split:
            return self._unified(layout_row, width, base, cursor)
        split = document.ensure_split()
        left, right = split.left[layout_row], split.right[layout_row]
        if left == right and document.patch.rows[left].kind == "hunk":  # type: ignore[union-attr]
            return self._unified(left, width, base, cursor)
        half = max(1, (width - 1) // 2)
        separator = Strip([Segment("│", base + self.get_component_rich_style("diff-view--gutter", partial=True))], 1)
        return Strip.join(
            [
                self._half(left, "old", half, base, cursor),
                separator,
                self._half(right, "new", width - half - 1, base, cursor),
            ]
        )

    def _row_style(self, kind: str, base: Style) -> Style:
        if kind == "added":
            return base + self.get_component_rich_style("diff-view--added")
        if kind == "removed":
            return base + self.get_component_rich_style("diff-view--removed")
        if kind == "hunk":
            return base + self.get_component_rich_style("diff-view--hunk")
        return base

    def _gutter_style(self, row_style: Style, cursor: bool) -> Style:
        if cursor:
            return row_style + self.get_component_rich_style("diff-view--cursor")
        return row_style + self.get_component_rich_style("diff-view--gutter", partial=True)

    def _commented(self, row: DiffLine) -> bool:
        if row.kind == "hunk":
            return row.text in self._comment_hunks
        if row.kind == "removed":
            return ("old", row.old_no) in self._comment_lines  # type: ignore[comparison-overlap]
        return ("new", row.new_no) in self._comment_lines or ("old", row.old_no) in self._comment_lines  # type: ignore[comparison-overlap]

    def _mark_segment(self, row: DiffLine, style: Style, cursor: bool) -> Segment:
        if self._commented(row):
            return Segment(_COMMENT_MARK, style if cursor else style + self.get_component_rich_style("diff-view--comment", partial=True))
        return Segment(" ", style)

    def _unified(self, index: int, width: int, base: Style, cursor: bool) -> Strip:
        document = self.document
        assert document is not None and document.patch is not None
        row = document.patch.rows[index]
        digits = document.number_width
        row_style = self._row_style(row.kind, base)
        gutter_style = self._gutter_style(row_style, cursor)
        if row.kind == "hunk":
            numbers = " " * (2 * digits + 1)
        else:
            old = "" if row.old_no is None else str(row.old_no)
            new = "" if row.new_no is None else str(row.new_no)
            numbers = f"{old:>{digits}} {new:>{digits}}"
        gutter = [Segment(numbers + " ", gutter_style), self._mark_segment(row, gutter_style, cursor), Segment(_SIGNS[row.kind] + " ", row_style)]
        used = len(numbers) + 4
        content = self._content(index, row).crop(self.shift, self.shift + max(0, width - used))
        content = content.extend_cell_length(max(0, width - used)).apply_style(row_style)
        return Strip.join([Strip(gutter, used), content])

    def _half(self, index: int, side: str, width: int, base: Style, cursor: bool) -> Strip:
        document = self.document
        assert document is not None and document.patch is not None
        digits = document.number_width
        if index < 0:
            blank = base + self.get_component_rich_style("diff-view--blank")
            gutter = self._gutter_style(blank, cursor) if cursor else blank
            return Strip([Segment(" " * min(width, digits + 1), gutter), Segment(" " * max(0, width - digits - 1), blank)], width)
        row = document.patch.rows[index]
        row_style = self._row_style(row.kind, base)
        gutter_style = self._gutter_style(row_style, cursor)
        number = row.old_no if side == "old" else row.new_no
        text = "" if number is None or row.kind == "no_newline" else str(number)
        gutter = [Segment(f"{text:>{digits}}", gutter_style), self._mark_segment(row, gutter_style, cursor), Segment(_SIGNS[row.kind] + " ", row_style)]
        used = digits + 3
        if width <= used:
            return Strip(gutter, used).crop(0, width)
        content = self._content(index, row).crop(self.shift, self.shift + width - used)
        content = content.extend_cell_length(width - used).apply_style(row_style)
        return Strip.join([Strip(gutter, used), content])

    # Cursor and navigation ----------------------------------------------------------------------

    def move_cursor(self, row: int, *, top: bool = False, center: bool = False) -> None:
        """Put the cursor on layout row ``row`` and scroll it into view (near the top when ``top``)."""
        count = self.row_count
        row = max(0, min(row, count - 1)) if count else 0
        self.cursor = row
        height = max(1, self.scrollable_content_region.height)
        first = self.scroll_offset.y
        if top:
            self.scroll_to(y=max(0, row - 1), animate=False, immediate=True)
        elif center and not first <= row < first + height:
            self.scroll_to(y=max(0, row - height // 2), animate=False, immediate=True)
        elif row < first:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= first + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.CursorMoved(self, self.target()))

    def hunk_rows(self) -> list[int]:
        """Return the layout rows of the hunk headers."""
        document = self.document
        if document is None or not document.has_rows:
            return []
        if self.split:
            return document.ensure_split().hunk_rows
        return [hunk.row for hunk in document.patch.hunks]  # type: ignore[union-attr]

    def next_hunk(self) -> bool:
        """Move to the next hunk header; return False when the cursor is at or after the last one."""
        for row in self.hunk_rows():
            if row > self.cursor:
                self.move_cursor(row, top=True)
                return True
        return False

    def previous_hunk(self) -> bool:
        """Move to the previous hunk header; return False when there is none before the cursor."""
        for row in reversed(self.hunk_rows()):
            if row < self.cursor:
                self.move_cursor(row, top=True)
                return True
        return False

    def action_cursor(self, delta: int) -> None:
        self.move_cursor(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_offset.y + direction * height, animate=False, immediate=True)
        self.move_cursor(self.cursor + direction * height)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(self.row_count - 1)

    def action_shift(self, direction: int) -> None:
        self.shift = max(0, self.shift + direction * SHIFT_STEP)
        self.refresh()

    def on_click(self, event: Click) -> None:
        self.move_cursor(self.scroll_offset.y + event.y)

    def on_resize(self) -> None:
        self._resize()
