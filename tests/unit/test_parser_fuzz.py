"""Property tests of every adapter's parser: any bytes, any split points, long and broken lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aipass_tui.core.models import Event, EventKind

KINDS = ("claude", "codex", "gemini", "aider", "ollama")
CONFIG = {"ollama": {"model": "llama3.2"}}
SCENARIOS = ("ok", "interleave", "utf8_split", "huge_json", "no_newline", "auth_fail", "rate_limit")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Self-contained event lines (their events do not depend on earlier lines) for the interleave test.
SELF_CONTAINED = {
    "claude": [
        json.dumps({"type": "assistant", "message": {"id": "m", "content": [{"type": "text", "text": "a {brace} and \"quotes\""}]},
                    "parent_tool_use_id": None, "session_id": "s"}),
        json.dumps({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected", "rateLimitType": "five_hour"}}),
        json.dumps({"type": "system", "subtype": "api_retry", "attempt": 2, "max_retries": 10, "retry_delay_ms": 1200}),
        json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "done"}),
    ],
    "codex": [
        json.dumps({"type": "item.completed", "item": {"id": "i1", "type": "agent_message", "text": "hello {x}"}}),
        json.dumps({"type": "error", "message": "Reconnecting... 2/5 (stream disconnected)"}),
        json.dumps({"type": "turn.failed", "error": {"message": "unexpected status 401 Unauthorized"}}),
        json.dumps({"type": "thread.started", "thread_id": "t"}),
    ],
    "gemini": [
        json.dumps({"type": "tool_use", "timestamp": "t", "tool_name": "read_file", "tool_id": "r1", "parameters": {"path": "a"}}),
        json.dumps({"type": "tool_result", "timestamp": "t", "tool_id": "r9", "status": "success", "output": "text {x}"}),
        json.dumps({"type": "error", "timestamp": "t", "severity": "error", "message": "429 quota"}),
        json.dumps({"type": "message", "timestamp": "t", "role": "assistant", "content": "whole message"}),
    ],
}


@pytest.fixture(scope="module")
def streams(kit, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    """Return the stdout of each fake flavour in several scenarios, recorded once per module."""
    repo = tmp_path_factory.mktemp("fuzz") / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    recorded: dict[str, list[bytes]] = {}
    for kind in KINDS:
        recorded[kind] = []
        for scenario in SCENARIOS:
            prompt = f"Work. scenario={scenario} subagents=2 lines=2"
            run = kit.run_fake(kind, prompt, repo, **CONFIG.get(kind, {}))
            recorded[kind].append(run.stdout)
        assert all(recorded[kind][SCENARIOS.index(s)] for s in ("ok", "interleave", "huge_json")), kind
    return recorded


def _adapter(kit, kind: str):
    return kit.make_adapter(kind, **CONFIG.get(kind, {}))


def _feed(parser, data: bytes, cuts: list[int]) -> list[Event]:
    events: list[Event] = []
    previous = 0
    for cut in sorted({c % (len(data) + 1) for c in cuts}) + [len(data)]:
        events.extend(parser.feed(data[previous:cut]))
        previous = cut
    return events + parser.close()


def _dicts(events: list[Event]) -> list[dict]:
    return [e.to_dict() for e in events]


# -- arbitrary input ------------------------------------------------------------------------------

FRAGMENTS = [b'{"type":', b'"assistant"', b"}", b"{", b"\n", b"\r\n", b'"', b"\\", b"\xe6\x97", b"\xa5", b"\xff",
             b'{"type":"result","is_error":true}', b'{"type":"item.completed","item":{"type":"todo_list"}}',
             b'{"type":"message","role":"assistant","delta":true,"content":"x"}', b"Error: not found", b"\x1b[31m",
             b"litellm.AuthenticationError: x", b"[[[[", b"null", b"1e999", b'{"type":"system","subtype":"task_started"}']


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(
    pieces=st.lists(st.one_of(st.binary(max_size=40), st.sampled_from(FRAGMENTS)), max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=30),
)
def test_arbitrary_bytes_never_raise(kit, kind: str, pieces: list[bytes], cuts: list[int]) -> None:
    data = b"".join(pieces)
    events = _feed(_adapter(kit, kind).new_parser(), data, cuts)
    assert all(isinstance(e, Event) for e in events)
    assert not any("parse_error" in e.data for e in events), [e for e in events if "parse_error" in e.data]


@pytest.mark.parametrize("kind", KINDS)
@FUZZ
@given(cuts=st.lists(st.integers(min_value=0, max_value=10**7), max_size=40), which=st.integers(min_value=0))
def test_split_points_do_not_change_events(kit, streams, kind: str, cuts: list[int], which: int) -> None:
    data = streams[kind][which % len(streams[kind])]
    adapter = _adapter(kit, kind)
    whole = _feed(adapter.new_parser(), data, [])
    chunked = _feed(adapter.new_parser(), data, cuts)
    assert _dicts(chunked) == _dicts(whole)


@pytest.mark.parametrize("kind", KINDS)
def test_recorded_streams_parse_cleanly(kit, streams, kind: str) -> None:
    for data in streams[kind]:
        events = _feed(_adapter(kit, kind).new_parser(), data, [])
        if kind in ("claude", "codex", "gemini"):
            assert not [e for e in events if e.kind == EventKind.RAW], data[:300]
        assert not any("parse_error" in e.data for e in events)


# -- characters and lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_utf8_character_split_across_reads(kit, kind: str) -> None:
    text = "héllo — 日本語 ✓ 🙂"
    objects = {
        "claude": {"type": "result", "is_error": False, "result": text},
        "codex": {"type": "item.completed", "item": {"id": "i", "type": "agent_message", "text": text}},
        "gemini": {"type": "message", "role": "assistant", "content": text},
    }
    line = json.dumps(objects[kind], ensure_ascii=False) if kind in objects else text
    data = (line + "\n").encode("utf-8")
    adapter = _adapter(kit, kind)
    expected = _dicts(_feed(adapter.new_parser(), data, []))
    assert any(text in json.dumps(e, ensure_ascii=False) for e in expected)
    for cut in range(1, len(data)):
        assert _dicts(_feed(adapter.new_parser(), data, [cut])) == expected, cut


@pytest.mark.parametrize("kind", KINDS)
def test_bytes_that_are_not_utf8(kit, kind: str) -> None:
    data = b'{"type":"error","message":"bad \xff\xfe bytes","severity":"error"}\nplain \xc3 text\n'
    events = _feed(_adapter(kit, kind).new_parser(), data, [5, 31, 50])
    texts = " ".join(e.text for e in events)
    assert "\ufffd" in texts
    assert "plain \ufffd text" in texts


@pytest.mark.parametrize("kind", ["claude", "codex", "gemini"])
def test_line_over_64_kib(kit, streams, kind: str) -> None:
    data = streams[kind][SCENARIOS.index("huge_json")]
    assert max(len(line) for line in data.split(b"\n")) > 64 * 1024
    events = _feed(_adapter(kit, kind).new_parser(), data, list(range(0, len(data), 4096)))
    sizes = [e.data.get("size", 0) for e in events if e.kind == EventKind.TOOL_RESULT]
    assert max(sizes) == 96 * 1024
    assert events[-1].kind == EventKind.RESULT


def test_four_megabyte_lines(kit) -> None:
    payload = "x" * (4 * 1024 * 1024)
    lines = {
        "claude": {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t", "content": payload}]}},
        "codex": {"type": "item.completed", "item": {"id": "c", "type": "command_execution", "aggregated_output": payload, "exit_code": 0}},
        "gemini": {"type": "tool_result", "tool_id": "t", "status": "success", "output": payload},
    }
    for kind, obj in lines.items():
        data = (json.dumps(obj) + "\n").encode()
        events = _feed(_adapter(kit, kind).new_parser(), data, list(range(0, len(data), 65536)))
        results = [e for e in events if e.kind == EventKind.TOOL_RESULT]
        assert results[-1].data["size"] == len(payload), kind
    for kind in ("aider", "ollama"):
        events = _feed(_adapter(kit, kind).new_parser(), payload.encode() + b"\n", list(range(0, len(payload), 65536)))
        assert [len(e.text) for e in events] == [len(payload)], kind


@pytest.mark.parametrize("kind", KINDS)
def test_last_line_without_newline(kit, streams, kind: str) -> None:
    data = streams[kind][0]
    assert data.endswith(b"\n")
    adapter = _adapter(kit, kind)
    assert _dicts(_feed(adapter.new_parser(), data[:-1], [])) == _dicts(_feed(adapter.new_parser(), data, []))
    assert _dicts(_feed(adapter.new_parser(), data[:-1] + b"\r\n", [])) == _dicts(_feed(adapter.new_parser(), data, []))


# -- one event written into the middle of another ----------------------------------------------------


@pytest.mark.parametrize("kind", ["claude", "codex", "gemini"])
@FUZZ
@given(first=st.integers(min_value=0, max_value=3), second=st.integers(min_value=0, max_value=3), cut=st.integers(min_value=0))
def test_interleaved_lines_are_salvaged_or_raw(kit, kind: str, first: int, second: int, cut: int) -> None:
    adapter = _adapter(kit, kind)
    outer = SELF_CONTAINED[kind][first]
    inner = SELF_CONTAINED[kind][second]
    cut %= len(outer) + 1
    data = (outer[:cut] + inner + "\n" + outer[cut:] + "\n").encode()

    events = _dicts(_feed(adapter.new_parser(), data, []))
    inner_events = _dicts(_feed(adapter.new_parser(), (inner + "\n").encode(), []))
    outer_events = _dicts(_feed(adapter.new_parser(), (outer + "\n").encode(), []))
    assert all(e in events for e in inner_events)
    raw = " ".join(e.get("text", "") for e in events if e["kind"] == "raw")
    salvaged = all(e in events for e in outer_events)
    shown_raw = outer[:cut].strip() in raw and outer[cut:].strip() in raw
    assert salvaged or shown_raw


@pytest.mark.parametrize("kind", ["claude", "codex", "gemini"])
def test_broken_four_megabyte_line_shown_raw(kit, kind: str) -> None:
    # Each failed decode attempt costs time linear in the line's length, so salvaging must try
    # few start positions; before that limit, these lines took minutes to parse.
    for line in (b"{" * (4 * 1024 * 1024), b'{"' * (2 * 1024 * 1024), b'{"type":"user","content":"' + b"x{y" * 1_400_000):
        events = _feed(_adapter(kit, kind).new_parser(), line + b"\n", list(range(0, len(line), 65536)))
        assert [e.kind for e in events] == [EventKind.RAW]
        assert len(events[0].text) == len(line)
