"""Plain-text rendering of events and durations, shared by the CLI and the cockpit."""

from __future__ import annotations

import json
from typing import Any

from aipass_tui.core.models import Event, EventKind

_PREFIX = {
    EventKind.TEXT: "",
    EventKind.THINKING: "· thinking: ",
    EventKind.TOOL_USE: "→ ",
    EventKind.TOOL_RESULT: "← ",
    EventKind.TODO: "☐ todo: ",
    EventKind.SUBAGENT_START: "⇢ sub-agent started: ",
    EventKind.SUBAGENT_END: "⇠ sub-agent finished: ",
    EventKind.USAGE: "$ ",
    EventKind.RETRY: "↻ ",
    EventKind.RATE_LIMIT: "⏸ rate limit: ",
    EventKind.ERROR: "✗ error: ",
    EventKind.RESULT: "✓ result: ",
    EventKind.RAW: "",
    EventKind.STDERR: "stderr: ",
    EventKind.INIT: "● session started ",
    EventKind.STATUS: "· ",
}


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut with an ellipsis."""
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def describe_tool_input(data: dict[str, Any], limit: int = 120) -> str:
    """Render a tool call's arguments compactly, for example ``Bash(git status)``."""
    tool = str(data.get("tool") or "tool")
    value = data.get("input")
    if isinstance(value, dict):
        for key in ("command", "file_path", "path", "pattern", "url", "query", "description", "prompt"):
            if isinstance(value.get(key), str):
                return f"{tool}({shorten(value[key], limit)})"
        args = ", ".join(f"{k}={shorten(json.dumps(v, ensure_ascii=False, default=str), 40)}" for k, v in list(value.items())[:4])
        return f"{tool}({shorten(args, limit)})"
    if value:
        return f"{tool}({shorten(str(value), limit)})"
    return tool


def format_event(event: Event, width: int = 200) -> str:
    """Render one event as a single readable line (without a trailing newline)."""
    kind = event.kind
    data = event.data
    prefix = ("  " if event.parent else "") + _PREFIX.get(kind, "")
    if kind == EventKind.TOOL_USE:
        body = describe_tool_input(data, width)
    elif kind == EventKind.TOOL_RESULT:
        body = ("error: " if data.get("is_error") else "") + (event.text or "done")
    elif kind == EventKind.TODO:
        items = data.get("items") or []
        done = sum(1 for i in items if i.get("status") == "completed" or i.get("completed"))
        body = f"{done}/{len(items)} done"
    elif kind == EventKind.USAGE:
        body = f"{data.get('input_tokens', 0)} in / {data.get('output_tokens', 0)} out tokens"
        if data.get("cost_usd"):
            body += f", ${float(data['cost_usd']):.4f}"
    elif kind == EventKind.INIT:
        body = " ".join(f"{k}={v}" for k, v in data.items() if k in ("model", "session_id") and v)
    elif kind == EventKind.RESULT and data.get("is_error"):
        prefix = ("  " if event.parent else "") + "✗ result: "
        body = event.text
    else:
        body = event.text
    return shorten(prefix + body, width)


def human_duration(seconds: float) -> str:
    """Format seconds as ``42s``, ``3m05s`` or ``2h07m``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
