"""A virtualised view of a transcript file: one row per event, only visible rows read.

The line-offset index grows on a worker thread (``aipass_tui.ui.transcript``), so a 100 MB
transcript shows its first rows at once and the rest as the index catches up. While the file
grows (a live run), a timer extends the index twice a second; in follow mode the cursor stays on
the newest row.
"""

from __future__ import annotations

from array import array
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

from rich.style import Style
from rich.text import Text
from textual import work
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import get_current_worker

from aipass_tui.ui import bindings, transcript

ROW_CACHE = 2048
POLL_SECONDS = 0.5


class TranscriptView(ScrollView, can_focus=True):
    """Rows of a transcript file with a cursor, follow mode and search."""

    COMPONENT_CLASSES = {"transcript-view--cursor", "transcript-view--match"}

    BINDINGS = bindings.bindings(bindings.TRANSCRIPT)

    DEFAULT_CSS = """
    TranscriptView { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    TranscriptView > .transcript-view--cursor { background: $accent 40%; text-style: bold; }
    TranscriptView:blur > .transcript-view--cursor { background: $accent 20%; text-style: none; }
    TranscriptView > .transcript-view--match { background: $warning 60%; color: $foreground; }
    """

    follow: reactive[bool] = reactive(True)

    class CursorMoved(Message):
        """The cursor moved to ``row``, whose full text is ``lines``."""

        def __init__(self, row: int, lines: list[str]) -> None:
            super().__init__()
            self.row = row
            self.lines = lines

    class SearchFinished(Message):
        """A search ended: ``row`` is the match, or None when nothing matched."""

        def __init__(self, query: str, row: int | None, wrapped: bool) -> None:
            super().__init__()
            self.query = query
            self.row = row
            self.wrapped = wrapped

    class IndexGrown(Message):
        """The index worker found more complete lines (``offsets`` None: the worker ended)."""

        def __init__(self, generation: int, start: int, offsets: array | None) -> None:
            super().__init__()
            self.generation = generation
            self.start = start
            self.offsets = offsets

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.path: Path | None = None
        self.holds_events = True
        self.cursor = -1
        self.search_query = ""
        self._starts = array("q", [0])
        self._generation = 0
        self._indexing = False
        self._rows: OrderedDict[int, str] = OrderedDict()
        self._handle: BinaryIO | None = None

    # Opening -------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._starts) - 1

    @property
    def indexing(self) -> bool:
        return self._indexing

    def open(self, path: Path | None, *, events: bool = True) -> None:
        """Show ``path`` (None shows nothing); the index is rebuilt from the start."""
        self._close_handle()
        self.path = path
        self.holds_events = events
        self._starts = array("q", [0])
        self._rows.clear()
        self._generation += 1
        self._indexing = False
        self.cursor = -1
        self.virtual_size = Size(self.size.width, 0)
        self.scroll_to(0, 0, animate=False)
        self.refresh()
        self._extend_index()

    def on_mount(self) -> None:
        self.set_interval(POLL_SECONDS, self._extend_index, name="transcript-poll")

    def on_unmount(self) -> None:
        self._close_handle()

    def _close_handle(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _extend_index(self) -> None:
        if self.path is None or self._indexing:
            return
        self._indexing = True
        self._index(self.path, self._starts[-1], self._generation)

    @work(thread=True, exclusive=True, group="transcript-index", exit_on_error=False)
    def _index(self, path: Path, start: int, generation: int) -> None:
        worker = get_current_worker()
        try:
            for offsets in transcript.index_lines(path, start, lambda: worker.is_cancelled):
                self.post_message(self.IndexGrown(generation, start, offsets))
                start = offsets[-1]
        except OSError:
            pass  # not there yet (a run that has not written), or removed: the poll tries again
        finally:
            self.post_message(self.IndexGrown(generation, start, None))

    def on_transcript_view_index_grown(self, message: IndexGrown) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        if message.offsets is None:
            self._indexing = False
            return
        if message.start != self._starts[-1]:
            return
        self._starts.extend(message.offsets)
        self.virtual_size = Size(self.size.width, self.row_count)
        if self.follow:
            self._move_to(self.row_count - 1, keep_follow=True)
        elif self.cursor < 0:
            self._move_to(0, keep_follow=True)
        self.refresh()

    # Rows ----------------------------------------------------------------------------------

    def row_text(self, row: int) -> str:
        """Return the display text of ``row``."""
        cached = self._rows.get(row)
        if cached is not None:
            self._rows.move_to_end(row)
            return cached
        text = transcript.format_row(self._read(row), self.holds_events)
        self._rows[row] = text
        if len(self._rows) > ROW_CACHE:
            self._rows.popitem(last=False)
        return text

    def row_lines(self, row: int) -> list[str]:
        """Return every line of ``row``'s event, for the detail view."""
        if not 0 <= row < self.row_count:
            return []
        return transcript.full_text(self._read(row), self.holds_events)

    def _read(self, row: int) -> str:
        assert self.path is not None
        if self._handle is None:
            self._handle = open(self.path, "rb")
        return transcript.read_row(self._handle, self._starts, row)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if row >= self.row_count or self.path is None:
            return Strip.blank(width, style)
        if row == self.cursor:
            style = style + self.get_component_rich_style("transcript-view--cursor")
        text = Text(self.row_text(row), no_wrap=True, end="")
        text.stylize(style)  # a span: Text.render ignores Text.style
        if self.search_query:
            self._highlight(text, self.get_component_rich_style("transcript-view--match"))
        return Strip(text.render(self.app.console)).crop_extend(scroll_x, scroll_x + width, style)

    def _highlight(self, text: Text, style: Style) -> None:
        folded = text.plain.casefold()
        needle = self.search_query.casefold()
        start = folded.find(needle)
        while start >= 0 and needle:
            text.stylize(style, start, start + len(needle))
            start = folded.find(needle, start + len(needle))

    # Cursor --------------------------------------------------------------------------------

    def _move_to(self, row: int, keep_follow: bool = False, announce: bool = False) -> None:
        if self.row_count == 0:
            return
        row = max(0, min(row, self.row_count - 1))
        previous = self.cursor
        self.cursor = row
        if not keep_follow:
            self.follow = row == self.row_count - 1
        self._scroll_to_cursor()
        # The first rows can arrive before the layout gave the view its height and virtual
        # size; scroll again once it has them.
        self.call_after_refresh(self._scroll_to_cursor)
        self.refresh()
        if row != previous or announce:
            self.post_message(self.CursorMoved(row, self.row_lines(row)))

    def _scroll_to_cursor(self) -> None:
        row = self.cursor
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        height = max(1, self.scrollable_content_region.height - 1)
        self._move_to(self.cursor + direction * height)

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(self.row_count - 1)
        self.follow = True

    def watch_follow(self, follow: bool) -> None:
        if follow and self.row_count:
            self._move_to(self.row_count - 1, keep_follow=True)

    def on_click(self, event: object) -> None:
        y = getattr(event, "y", None)
        if isinstance(y, int):
            self._move_to(self.scroll_offset.y + y)

    # Search --------------------------------------------------------------------------------

    def search(self, query: str, forward: bool = True) -> None:
        """Look for ``query`` after (or before) the cursor; the result arrives as SearchFinished."""
        self.search_query = query
        self.refresh()
        if self.path is None or not query:
            self.post_message(self.SearchFinished(query, None, False))
            return
        self._search(self.path, self._starts[:], query, self.cursor, forward, self.holds_events)

    @work(thread=True, exclusive=True, group="transcript-search", exit_on_error=False)
    def _search(self, path: Path, starts: array, query: str, from_row: int, forward: bool, events: bool) -> None:
        worker = get_current_worker()
        try:
            row, wrapped = transcript.find_row(path, starts, query, from_row, forward, events, lambda: worker.is_cancelled)
        except OSError:
            row, wrapped = None, False
        if not worker.is_cancelled:
            self.post_message(self.SearchFinished(query, row, wrapped))

    def on_transcript_view_search_finished(self, message: SearchFinished) -> None:
        if message.row is not None and message.query == self.search_query:
            self.follow = False
            self._move_to(message.row, keep_follow=True, announce=True)
