"""Sanitising agent output and formatting events for panes and transcripts."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from aipass_tui.core.models import Event, EventKind
from aipass_tui.ui.text import event_lines, event_row, sanitize, sanitize_line, shorten, tool_arguments

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_colour_codes_are_removed() -> None:
    assert sanitize("\x1b[1;31mred\x1b[0m and \x1b[38;2;1;2;3mtrue\x1b[m") == ["red and true"]


def test_spinner_keeps_last_state() -> None:
    assert sanitize("working |\rworking /\rworking -\rdone") == ["done"]
    assert sanitize("half\r") == ["half"]


def test_cursor_moves_and_clears_are_removed() -> None:
    assert sanitize("\x1b[2K\x1b[1A\x1b[10Cok\x1b[H\x1b[2J!") == ["ok!"]


def test_terminal_title_and_bell_are_removed() -> None:
    assert sanitize("\x1b]0;title\x07text\x07") == ["text"]
    assert sanitize("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == ["link"]


def test_backspace_deletes_previous_character() -> None:
    assert sanitize("abc\b\bX") == ["aX"]


def test_tabs_expand_by_cells() -> None:
    assert sanitize("a\tb") == ["a   b"]
    assert sanitize("中\tb") == ["中  b"]


def test_layout_characters_are_dropped() -> None:
    assert sanitize("☀\ufe0f ok") == ["☀ ok"]
    assert sanitize("👨\u200d👩\u200d👧") == ["👨👩👧"]
    assert sanitize("\u202eevil\u202c") == ["evil"]


def test_width_matches_character_count_for_emoji() -> None:
    line = sanitize("weather ☀\ufe0f and ⚠\ufe0f")[0]
    assert cell_len(line) == len(line)


def test_multiline_text_splits() -> None:
    assert sanitize("one\r\ntwo\nthree") == ["one", "two", "three"]


def test_huge_line_is_cut() -> None:
    (line,) = sanitize("x" * 10_000)
    assert len(line) == 2000
    assert line.endswith("…")


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_sanitized_lines_hold_no_control_characters(text: str) -> None:
    for line in sanitize(text):
        assert "\x1b" not in line
        assert "\r" not in line
        assert "\n" not in line
        assert "\t" not in line
        assert not CONTROL.search(line)


def test_shorten_counts_cells() -> None:
    assert shorten("abcdef", 4) == "abc…"
    assert shorten("中文中文", 5) == "中文…"
    assert cell_len(shorten("中文中文", 6)) <= 6
    assert shorten("ab", 4) == "ab"


def test_tool_arguments_prefer_the_telling_field() -> None:
    assert tool_arguments({"input": {"command": "ls -la", "timeout": 5}}) == "ls -la"
    assert tool_arguments({"input": {"command": ["git", "status"]}}) == "git status"
    assert tool_arguments({"input": {"a": 1}}) == '{"a":1}'
    assert tool_arguments({"arguments": "x" * 300}, limit=10) == "x" * 9 + "…"


def test_event_lines_per_kind() -> None:
    assert event_lines(Event(EventKind.TOOL_USE, data={"tool": "Bash", "input": {"command": "make"}})) == ["→ Bash make"]
    assert event_lines(Event(EventKind.TOOL_RESULT, "a\nb\nc")) == ["← a (+2 lines)"]
    assert event_lines(Event(EventKind.TOOL_RESULT, "boom", data={"is_error": True})) == ["✗ tool failed: boom"]
    assert event_lines(Event(EventKind.ERROR, "bad\nworse")) == ["✗ error: bad", "  worse"]
    assert event_lines(Event(EventKind.RESULT, "all good")) == ["■ finished: all good"]
    assert event_lines(Event(EventKind.RESULT, "nope", data={"is_error": True})) == ["✗ failed: nope"]
    assert event_lines(Event(EventKind.USAGE, data={"input_tokens": 5})) == []
    assert event_lines(Event(EventKind.STDERR, "warn")) == ["stderr: warn"]
    assert event_lines(Event(EventKind.RETRY, "529")) == ["↻ retrying: 529"]
    assert event_lines(Event(EventKind.TEXT, "hi", parent="toolu_1")) == ["  ┆ hi"]
    todo = Event(EventKind.TODO, data={"items": [{"text": "a", "status": "completed"}, {"text": "b", "status": "in_progress"}]})
    assert event_lines(todo) == ["☰ todo 1/2 done · now: b"]


def test_long_message_is_limited_in_panes_only() -> None:
    event = Event(EventKind.TEXT, "\n".join(f"line {i}" for i in range(500)))
    pane = event_lines(event)
    assert len(pane) == 201
    assert pane[-1] == "… 300 more lines in the transcript"
    assert len(event_lines(event, max_lines=None)) == 500


def test_event_row_is_one_line() -> None:
    row = event_row(Event(EventKind.TEXT, "first\nsecond\nthird"))
    assert row == "first (+2 lines)"
    assert event_row(Event(EventKind.USAGE, data={"input_tokens": 1500, "cost_usd": 0.5})) == "$ usage: 1.5k tokens · $0.50"


def test_sanitize_line_joins_lines() -> None:
    assert sanitize_line("a\n\nb") == "a ⏎ b"


def test_todo_tool_call_counts_items() -> None:
    assert tool_arguments({"input": {"todos": [{"content": "a"}, {"content": "b"}]}}) == "2 todo items"
