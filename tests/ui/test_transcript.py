"""Indexing, reading and searching transcript files, and the transcript view on a big file."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

from textual.app import App, ComposeResult

from aipass_tui.core.models import Event, EventKind
from aipass_tui.ui import transcript
from aipass_tui.ui.widgets.transcript_view import TranscriptView
from tests.ui.conftest import wait_for


def write_events(path: Path, texts: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps(Event(EventKind.TEXT, text).to_dict(), ensure_ascii=False) + "\n")


def full_index(path: Path) -> array:
    starts = array("q", [0])
    for offsets in transcript.index_lines(path, 0):
        starts.extend(offsets)
    return starts


def test_index_skips_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, ["one", "two"])
    with open(path, "a") as handle:
        handle.write('{"kind": "text", "te')
    starts = full_index(path)
    assert len(starts) - 1 == 2
    with open(path, "rb") as handle:
        assert [transcript.format_row(transcript.read_row(handle, starts, row), True) for row in range(2)] == ["one", "two"]


def test_index_continues_from_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_text("a\nb\n")
    starts = full_index(path)
    with open(path, "a") as handle:
        handle.write("c\nd\n")
    for offsets in transcript.index_lines(path, starts[-1]):
        starts.extend(offsets)
    assert list(starts) == [0, 2, 4, 6, 8]


def test_index_spans_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(transcript, "INDEX_CHUNK", 7)
    path = tmp_path / "stdout"
    path.write_text("".join(f"row {i}\n" for i in range(50)))
    starts = full_index(path)
    assert len(starts) - 1 == 50
    with open(path, "rb") as handle:
        assert transcript.read_row(handle, starts, 37) == "row 37"


def test_find_row_forward_backward_and_wrap(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, ["alpha", "needle one", "beta", "NEEDLE two", "gamma"])
    starts = full_index(path)
    assert transcript.find_row(path, starts, "needle", 0, True, True) == (1, False)
    assert transcript.find_row(path, starts, "needle", 1, True, True) == (3, False)
    assert transcript.find_row(path, starts, "needle", 3, True, True) == (1, True)
    assert transcript.find_row(path, starts, "needle", 3, False, True) == (1, False)
    assert transcript.find_row(path, starts, "needle", 1, False, True) == (3, True)
    assert transcript.find_row(path, starts, "absent", 0, True, True) == (None, False)


def test_find_row_ignores_json_keys(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, ["plain words", "more words"])
    starts = full_index(path)
    assert transcript.find_row(path, starts, "kind", 0, True, True) == (None, False)


def test_find_row_matches_quotes_inside_json(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_events(path, ["nothing", 'say "hi" now'])
    starts = full_index(path)
    assert transcript.find_row(path, starts, '"hi"', 0, True, True) == (1, False)


def test_find_row_in_plain_text_across_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(transcript, "SEARCH_CHUNK", 16)
    path = tmp_path / "stdout"
    path.write_text("".join(f"line {i}\n" for i in range(100)) + "the target line\n")
    starts = full_index(path)
    assert transcript.find_row(path, starts, "TARGET", 5, True, False) == (100, False)


def test_non_event_lines_show_as_text(tmp_path: Path) -> None:
    assert transcript.format_row("not json \x1b[31mred\x1b[0m", True) == "not json red"
    assert transcript.full_text('{"kind": "text", "text": "a\\nb"}', True) == ["a", "b"]


class TranscriptHost(App[None]):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield TranscriptView()

    def on_mount(self) -> None:
        self.query_one(TranscriptView).open(self.path, events=False)


async def test_big_transcript_shows_rows_before_index_completes(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    line = ("x" * 90 + "\n").encode()
    with open(path, "wb") as handle:
        block = line * 10_000
        for _ in range(110):  # about 100 MB
            handle.write(block)
        handle.write(b"the last line\n")
    app = TranscriptHost(path)
    async with app.run_test(size=(100, 30)) as pilot:
        view = app.query_one(TranscriptView)
        await wait_for(pilot, lambda: view.row_count > 0, message="first rows")
        assert view.row_text(0).startswith("xxx")
        await wait_for(pilot, lambda: view.row_count == 1_100_001 and not view.indexing, timeout=60, message="full index")
        assert view.cursor == 1_100_000
        assert view.row_text(view.cursor) == "the last line"


async def test_view_follows_a_growing_file(tmp_path: Path) -> None:
    path = tmp_path / "stdout"
    path.write_text("first\n")
    app = TranscriptHost(path)
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(TranscriptView)
        await wait_for(pilot, lambda: view.row_count == 1, message="first row")
        with open(path, "a") as handle:
            handle.write("second\nthird\n")
        await wait_for(pilot, lambda: view.row_count == 3, message="grown rows")
        assert view.cursor == 2
        await pilot.press("up")
        assert not view.follow
        with open(path, "a") as handle:
            handle.write("fourth\n")
        await wait_for(pilot, lambda: view.row_count == 4, message="more rows")
        assert view.cursor == 1, "a paused view keeps its place"
