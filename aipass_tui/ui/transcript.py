"""Line-offset indexing, reading and searching of transcript files, for the transcript view.

A transcript is a run's ``events.jsonl`` (one event per line) or a plain text file such as its
``stdout``. The view never loads a whole file: it keeps the byte offset where each line starts,
built in chunks on a worker thread, and reads only the rows on screen. Only complete lines
(ending with a newline) are indexed, so a line being written is shown once it is whole.
No Textual import here: these functions run on worker threads and in tests.
"""

from __future__ import annotations

import json
import re
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from aipass_tui.core.models import Event
from aipass_tui.ui.text import event_lines, event_row, sanitize, sanitize_line

INDEX_CHUNK = 4 << 20
SEARCH_CHUNK = 8 << 20


def index_lines(path: Path, start: int, cancelled: Callable[[], bool] = lambda: False) -> Iterator[array]:
    """Yield, chunk by chunk, the offsets just past each newline found after byte ``start``."""
    with open(path, "rb") as handle:
        handle.seek(start)
        offset = start
        while not cancelled():
            data = handle.read(INDEX_CHUNK)
            if not data:
                return
            found = array("q")
            position = data.find(b"\n")
            while position >= 0:
                found.append(offset + position + 1)
                position = data.find(b"\n", position + 1)
            offset += len(data)
            if found:
                yield found


def read_row(handle: BinaryIO, starts: array, row: int) -> str:
    """Return row ``row`` of an indexed file as text, without its newline."""
    handle.seek(starts[row])
    data = handle.read(starts[row + 1] - starts[row])
    return data.decode("utf-8", "replace").rstrip("\r\n")


def parse_event(line: str) -> Event | None:
    """Return the event on one events.jsonl line, or None when the line is not an event."""
    if not line.startswith("{"):
        return None
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    return Event.from_dict(raw) if isinstance(raw, dict) else None


def format_row(line: str, events: bool) -> str:
    """Format one file line as one display row."""
    if events:
        event = parse_event(line)
        if event is not None:
            return event_row(event)
    return sanitize_line(line)


def full_text(line: str, events: bool) -> list[str]:
    """Return every display line of one file line (the whole event), for the detail view."""
    if events:
        event = parse_event(line)
        if event is not None:
            return event_lines(event, max_lines=None) or [event_row(event)]
    return sanitize(line)


def _pattern(query: str, events: bool) -> re.Pattern[bytes]:
    needle = json.dumps(query, ensure_ascii=False)[1:-1] if events else query
    return re.compile(re.escape(needle.encode("utf-8")), re.IGNORECASE)


def find_row(
    path: Path,
    starts: array,
    query: str,
    from_row: int,
    forward: bool,
    events: bool,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[int | None, bool]:
    """Find the next (or previous) row after ``from_row`` whose text contains ``query``.

    The search wraps around the end of the file once. Returns ``(row, wrapped)``, with row None
    when no row matches. Raw bytes are scanned first with a regular expression and each hit is
    confirmed on the formatted event, so a match in a JSON key does not count.
    NOTE: the byte scan ignores case for ASCII letters only, so a non-ASCII query matches only
    with the same case.
    """
    rows = len(starts) - 1
    if rows <= 0 or not query:
        return None, False
    pattern = _pattern(query, events)
    folded = query.casefold()
    with open(path, "rb") as handle:

        def confirmed(row: int) -> bool:
            text = "\n".join(full_text(read_row(handle, starts, row), events))
            return folded in text.casefold()

        if forward:
            ranges = [(from_row + 1, rows, False), (0, min(from_row + 1, rows), True)]
        else:
            ranges = [(0, max(from_row, 0), False), (max(from_row, 0), rows, True)]
        for first, last, wrapped in ranges:
            if first >= last:
                continue
            hits = _scan(handle, starts, pattern, first, last, cancelled)
            ordered = hits if forward else reversed(hits)
            for row in ordered:
                if cancelled():
                    return None, False
                if confirmed(row):
                    return row, wrapped
    return None, False


def _scan(handle: BinaryIO, starts: array, pattern: re.Pattern[bytes], first: int, last: int, cancelled: Callable[[], bool]) -> list[int]:
    """Return the rows in ``[first, last)`` whose bytes match ``pattern``, in order."""
    rows: list[int] = []
    begin = starts[first]
    end = starts[last]
    position = begin
    while position < end and not cancelled():
        handle.seek(position)
        data = handle.read(min(SEARCH_CHUNK, end - position))
        if not data:
            break
        cut = data.rfind(b"\n") + 1 if position + len(data) < end else len(data)
        if cut <= 0:
            cut = len(data)
        for match in pattern.finditer(data, 0, cut):
            row = bisect_right(starts, position + match.start()) - 1
            if not rows or rows[-1] != row:
                rows.append(row)
        position += cut
    return rows
