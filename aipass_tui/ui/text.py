"""Turn agent output into safe, readable text lines for the cockpit.

Agents print whatever they like: colour codes, carriage-return spinners, cursor moves, tabs,
bidirectional overrides, emoji. Everything shown in a pane goes through ``sanitize`` first, so a
line can never move the cursor or change the width that Rich measures for it. This module
imports Rich but not Textual, so it is usable (and testable) without a running app.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from rich.cells import cell_len, get_character_cell_size, set_cell_size

from aipass_tui.core.models import Event, EventKind

TAB_SIZE = 4
MAX_LINE_CHARS = 2000
"""Longer lines are cut: a pane never needs more, and Log measures every line it holds."""
MAX_EVENT_LINES = 200
"""A multi-line message shows at most this many lines in a pane; the transcript has all of them."""

_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?")
_ESC_OTHER = re.compile(r"\x1b[ -/]*[0-~]?")
# C0 controls except tab, newline, carriage return and backspace (handled separately), DEL, C1.
_CONTROL = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SUB_AGENT_PREFIX = "  ┆ "


def _is_layout_char(char: str) -> bool:
    """Tell whether a character changes layout without being visible text.

    Format characters (bidirectional overrides, zero-width joiners and spaces, soft hyphens)
    and variation selectors are dropped: a terminal that ignores a joiner or a variation
    selector would draw more or fewer cells than Rich measured, and the pane border would move.
    """
    code = ord(char)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return True
    return unicodedata.category(char) == "Cf"


def _expand_tabs(line: str) -> str:
    out: list[str] = []
    column = 0
    for char in line:
        if char == "\t":
            spaces = TAB_SIZE - column % TAB_SIZE
            out.append(" " * spaces)
            column += spaces
        else:
            out.append(char)
            column += get_character_cell_size(char)
    return "".join(out)


def _apply_backspaces(line: str) -> str:
    out: list[str] = []
    for char in line:
        if char == "\b":
            if out:
                out.pop()
        else:
            out.append(char)
    return "".join(out)


def _clean_line(line: str) -> str:
    if "\r" in line:
        # A carriage return rewinds to column 0: a spinner shows only its last state.
        segments = [segment for segment in line.split("\r") if segment]
        line = segments[-1] if segments else ""
    if "\b" in line:
        line = _apply_backspaces(line)
    line = _CONTROL.sub("", line)
    if not line.isascii():
        line = "".join(char for char in line if not _is_layout_char(char))
    if "\t" in line:
        line = _expand_tabs(line)
    if len(line) > MAX_LINE_CHARS:
        line = line[: MAX_LINE_CHARS - 1] + "…"
    return line


def sanitize(text: str) -> list[str]:
    """Return ``text`` as display lines with every escape and control sequence neutralised.

    Colour codes, cursor moves and terminal titles are removed, a line rewritten with carriage
    returns keeps its last state, backspaces delete the character before them, tabs become
    spaces, and characters that would make terminals disagree on widths are dropped.
    """
    if text.isascii() and text.isprintable():
        return [text[: MAX_LINE_CHARS - 1] + "…" if len(text) > MAX_LINE_CHARS else text]
    if "\x1b" in text:
        text = _OSC.sub("", text)
        text = _CSI.sub("", text)
        text = _ESC_OTHER.sub("", text)
    text = text.replace("\r\n", "\n")
    return [_clean_line(line) for line in text.split("\n")]


def sanitize_line(text: str) -> str:
    """Return ``text`` sanitised and joined into one line, newlines shown as ``⏎``."""
    return " ⏎ ".join(line for line in sanitize(text) if line.strip()) or ""


def shorten(text: str, cells: int) -> str:
    """Cut ``text`` to at most ``cells`` terminal cells, ending with ``…`` when cut."""
    if cells <= 0:
        return ""
    if len(text) <= cells and text.isascii():
        return text
    if cell_len(text) <= cells:
        return text
    return set_cell_size(text, cells - 1).rstrip() + "…"


def tool_arguments(data: dict[str, Any], limit: int = 100) -> str:
    """Return a tool call's arguments as one short line: the telling field, or compact JSON."""
    arguments = data.get("input", data.get("arguments", data.get("args")))
    if arguments is None:
        return ""
    if isinstance(arguments, dict):
        if isinstance(arguments.get("todos"), list):
            return f"{len(arguments['todos'])} todo items"
        for key in ("command", "cmd", "file_path", "path", "pattern", "url", "query", "description", "prompt"):
            value = arguments.get(key)
            if isinstance(value, str) and value:
                text = value
                break
            if isinstance(value, list) and value:
                text = " ".join(str(part) for part in value)
                break
        else:
            text = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    elif isinstance(arguments, str):
        text = arguments
    else:
        text = json.dumps(arguments, ensure_ascii=False)
    return shorten(sanitize_line(text), limit)


def _first_line_with_count(text: str, limit: int) -> str:
    lines = [line for line in sanitize(text) if line.strip()]
    if not lines:
        return ""
    first = shorten(lines[0].strip(), limit)
    if len(lines) > 1:
        first += f" (+{len(lines) - 1} lines)"
    return first


def _limited(lines: list[str], max_lines: int | None) -> list[str]:
    if max_lines is None or len(lines) <= max_lines:
        return lines
    hidden = len(lines) - max_lines
    return [*lines[:max_lines], f"… {hidden} more lines in the transcript"]


def event_lines(event: Event, max_lines: int | None = MAX_EVENT_LINES) -> list[str]:
    """Format one normalized event as display lines; an empty list means nothing to show."""
    lines = _format_event(event, max_lines)
    if event.parent:
        return [_SUB_AGENT_PREFIX + line for line in lines]
    return lines


def _format_event(event: Event, max_lines: int | None) -> list[str]:
    formatter = _FORMATTERS.get(event.kind, _format_status)
    return formatter(event.text or "", event.data, max_lines)


def _format_message(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    lines = sanitize(text)
    while lines and not lines[-1].strip():
        lines.pop()
    return _limited(lines, max_lines)


def _format_raw(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return _limited(sanitize(text), max_lines)


def _format_tool_use(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    tool = str(data.get("tool") or data.get("name") or "tool")
    arguments = tool_arguments(data) or shorten(sanitize_line(text), 100)
    return [f"→ {sanitize_line(tool)} {arguments}".rstrip()]


def _format_tool_result(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    summary = _first_line_with_count(text, 100) or "(no output)"
    marker = "✗ tool failed:" if data.get("is_error") else "←"
    return [f"{marker} {summary}"]


def _format_thinking(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return [f"∴ {_first_line_with_count(text, 100) or 'thinking'}"]


def _format_todo(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return [todo_summary(data.get("items") or [])]


def _format_subagent_start(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    label = str(data.get("subagent_type") or "sub-agent")
    return [f"⇢ {sanitize_line(label)} started: {shorten(sanitize_line(text), 100)}".rstrip(": ")]


def _format_subagent_end(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    state = "failed" if data.get("is_error") else "done"
    detail = _first_line_with_count(text, 100)
    return [f"⇠ sub-agent {state}" + (f": {detail}" if detail else "")]


def _format_usage(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return []  # panes show tokens and cost in their header


def _format_retry(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return ["↻ retrying" + (f": {_first_line_with_count(text, 100)}" if text else "")]


def _format_rate_limit(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return ["↻ rate limited" + (f": {_first_line_with_count(text, 100)}" if text else "")]


def _format_error(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    lines = _limited(sanitize(text), 20)
    return [f"✗ error: {lines[0]}", *(f"  {line}" for line in lines[1:])]


def _format_result(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    label = "✗ failed" if data.get("is_error") else "■ finished"
    detail = _first_line_with_count(text, 200)
    return [label + (f": {detail}" if detail else "")]


def _format_stderr(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return [f"stderr: {line}" for line in _limited(sanitize(text), max_lines)]


def _format_init(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    model = data.get("model")
    return ["● session started" + (f" · model {sanitize_line(str(model))}" if model else "")]


def _format_status(text: str, data: dict[str, Any], max_lines: int | None) -> list[str]:
    return [f"· {line}" for line in _limited(sanitize(text), max_lines) if line.strip()]


_FORMATTERS = {
    EventKind.TEXT: _format_message,
    EventKind.RAW: _format_raw,
    EventKind.TOOL_USE: _format_tool_use,
    EventKind.TOOL_RESULT: _format_tool_result,
    EventKind.THINKING: _format_thinking,
    EventKind.TODO: _format_todo,
    EventKind.SUBAGENT_START: _format_subagent_start,
    EventKind.SUBAGENT_END: _format_subagent_end,
    EventKind.USAGE: _format_usage,
    EventKind.RETRY: _format_retry,
    EventKind.RATE_LIMIT: _format_rate_limit,
    EventKind.ERROR: _format_error,
    EventKind.RESULT: _format_result,
    EventKind.STDERR: _format_stderr,
    EventKind.INIT: _format_init,
    EventKind.STATUS: _format_status,
}


def event_row(event: Event, limit: int = 400) -> str:
    """Format one event as a single line, for the transcript view."""
    lines = [line for line in _format_event(event, None) if line.strip()]
    if not lines:
        if event.kind == EventKind.USAGE:
            return f"$ usage: {usage_text(event.data)}"
        return f"· {event.kind.value}"
    row = lines[0]
    if len(lines) > 1:
        row = f"{shorten(row, limit)} (+{len(lines) - 1} lines)"
    row = shorten(row, limit)
    return _SUB_AGENT_PREFIX + row if event.parent else row


def usage_text(data: dict[str, Any]) -> str:
    tokens = int(data.get("input_tokens") or 0) + int(data.get("output_tokens") or 0)
    cost = data.get("cost_usd")
    return f"{format_count(tokens)} tokens" + (f" · ${float(cost):.2f}" if cost is not None else "")


def todo_summary(items: list[dict[str, Any]]) -> str:
    done = sum(1 for item in items if item.get("status") == "completed" or item.get("completed"))
    current = next((item for item in items if item.get("status") == "in_progress"), None)
    summary = f"☰ todo {done}/{len(items)} done"
    if current:
        summary += f" · now: {shorten(sanitize_line(str(current.get('text', ''))), 80)}"
    return summary


def format_count(value: int) -> str:
    """Format a count compactly: 950, 12.3k, 4.1M."""
    if value < 1000:
        return str(value)
    if value < 1_000_000:
        return f"{value / 1000:.1f}k"
    return f"{value / 1_000_000:.1f}M"


def format_bytes(value: int | None) -> str:
    """Format a byte count with a binary unit: 512 B, 12.3 MiB."""
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def format_duration(seconds: float | None) -> str:
    """Format a duration as 42s, 3m05s or 2h07m."""
    if seconds is None:
        return "–"
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def format_cost(cost: float) -> str:
    return f"${cost:.2f}" if cost < 100 else f"${cost:.0f}"
