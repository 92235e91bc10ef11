"""The adapter interface: build an agent CLI's argv and turn its output into events.

Each agent kind has one module in this package with an ``Adapter`` subclass. Parsers are
incremental: ``feed`` takes whatever bytes arrived (a line may be split anywhere, even inside a
UTF-8 character) and returns the events of the lines it completed; ``close`` flushes a last line
that has no newline. Parsers never raise on any input.
"""

from __future__ import annotations

import codecs
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from aipass_tui.config import AgentConfig
from aipass_tui.core.models import Event, EventKind, RunStatus

# A JSON line over this size is cut and shown raw, so one runaway line cannot exhaust memory.
MAX_LINE_BYTES = 32 * 1024 * 1024
ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


@dataclass
class RunContext:
    """What an adapter may use to build the argv of one run."""

    prompt: str
    subject: str
    body: str
    run_id: str
    request_id: str
    cwd: Path
    session_id: str | None = None
    resume_session: str | None = None


@dataclass
class Evidence:
    """Everything known about a finished run, weighed together to decide its status."""

    exit_code: int | None  # None when no exit status was recorded; negative for a signal
    stop_requested: str | None  # "stop", "timeout" or "stall" when the orchestrator stopped it
    result_seen: bool
    result_is_error: bool | None
    result_text: str | None
    errors: list[str]
    error_kinds: list[str]
    stderr_tail: str
    stdout_tail: str
    repo_changed: bool | None = None  # new commits or a dirty tree in the run's folder


@dataclass
class Outcome:
    status: RunStatus
    message: str


@dataclass
class LineSplitter:
    """Split a byte stream into text lines, decoding UTF-8 incrementally.

    Bytes that are not UTF-8 become U+FFFD; a character split across two reads is kept whole;
    ``\\r\\n`` counts as one line end; a line longer than ``max_bytes`` is cut into pieces.
    """

    max_bytes: int = MAX_LINE_BYTES
    _decoder: Any = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))
    _parts: list[str] = field(default_factory=list)
    _size: int = 0

    def feed(self, data: bytes) -> list[str]:
        text = self._decoder.decode(data)
        lines: list[str] = []
        start = 0
        while True:
            end = text.find("\n", start)
            if end < 0:
                break
            self._parts.append(text[start:end])
            line = "".join(self._parts)
            self._parts.clear()
            self._size = 0
            lines.append(line[:-1] if line.endswith("\r") else line)
            start = end + 1
        rest = text[start:]
        if rest:
            self._parts.append(rest)
            self._size += len(rest)
            if self._size > self.max_bytes:
                lines.append("".join(self._parts))
                self._parts.clear()
                self._size = 0
        return lines

    def close(self) -> list[str]:
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._parts.append(tail)
        line = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        return [line.rstrip("\r")] if line else []


class Parser:
    """Base parser: one event per line. Subclasses override ``parse_line``."""

    def __init__(self) -> None:
        self._lines = LineSplitter()

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        for line in self._lines.feed(data):
            events.extend(self._safe_parse(line))
        return events

    def close(self) -> list[Event]:
        events: list[Event] = []
        for line in self._lines.close():
            events.extend(self._safe_parse(line))
        return events

    def _safe_parse(self, line: str) -> list[Event]:
        try:
            return self.parse_line(line)
        except Exception as exc:  # a parser bug must never stop the run's output
            return [Event(EventKind.RAW, line, data={"parse_error": f"{type(exc).__name__}: {exc}"})]

    def parse_line(self, line: str) -> list[Event]:
        return [Event(EventKind.RAW, strip_ansi(line))] if line else []


class JsonLineParser(Parser):
    """Parser for NDJSON streams: subclasses implement ``parse_object``.

    A line that is not one JSON object is salvaged: every complete object inside it is parsed
    (this happens when a process writes an event into the middle of another event's line), and
    the rest of the text is delivered as a raw event, so nothing is dropped silently.
    """

    def parse_line(self, line: str) -> list[Event]:
        stripped = line.strip()
        if not stripped:
            return []
        if stripped.startswith("{"):
            try:
                obj = json.loads(stripped)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return self.parse_object(obj)
        return self._salvage(stripped)

    def _salvage(self, text: str) -> list[Event]:
        decoder = json.JSONDecoder()
        events: list[Event] = []
        leftover: list[str] = []
        pos = 0
        while pos < len(text):
            start = text.find("{", pos)
            if start < 0:
                leftover.append(text[pos:])
                break
            try:
                obj, end = decoder.raw_decode(text, start)
            except ValueError:
                leftover.append(text[pos : start + 1])
                pos = start + 1
                continue
            if isinstance(obj, dict) and "type" in obj:
                leftover.append(text[pos:start])
                events.extend(self.parse_object(obj))
            else:
                leftover.append(text[pos:end])
            pos = end
        rest = "".join(leftover).strip()
        if rest:
            events.insert(0, Event(EventKind.RAW, strip_ansi(rest)))
        return events

    def parse_object(self, obj: dict[str, Any]) -> list[Event]:
        raise NotImplementedError


class Adapter:
    """Base class of the agent adapters."""

    kind: ClassVar[str] = ""
    executable: ClassVar[str] = ""
    structured: ClassVar[bool] = False  # True when the CLI prints machine-readable events

    def __init__(self, name: str, config: AgentConfig) -> None:
        self.name = name
        self.config = config

    def program(self) -> str:
        """Return the CLI to run: the configured ``binary``, else the executable found on PATH."""
        if self.config.binary:
            return self.config.binary
        return shutil.which(self.executable) or self.executable

    def build_argv(self, ctx: RunContext) -> list[str]:
        raise NotImplementedError

    def extra_env(self, ctx: RunContext) -> dict[str, str]:
        """Return environment variables this CLI needs for headless use."""
        return {}

    def new_parser(self) -> Parser:
        return Parser()

    def judge(self, evidence: Evidence) -> Outcome:
        """Decide a finished run's status from all the evidence."""
        return default_judge(self.kind, evidence)


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences from a line of text."""
    return ANSI_RE.sub("", text) if "\x1b" in text else text


def default_judge(kind: str, ev: Evidence) -> Outcome:
    """Judge by stop request, result event, then exit code; used by adapters without special cases."""
    if ev.stop_requested == "timeout":
        return Outcome(RunStatus.TIMED_OUT, f"{kind} run timed out and was stopped")
    if ev.stop_requested in ("stop", "stall"):
        why = "it stalled" if ev.stop_requested == "stall" else "requested by the user"
        return Outcome(RunStatus.STOPPED, f"stopped ({why})")
    if ev.exit_code is None:
        return Outcome(RunStatus.LOST, f"{kind} process ended without an exit status")
    if ev.result_seen and ev.result_is_error is False and ev.exit_code == 0:
        return Outcome(RunStatus.SUCCEEDED, "finished")
    if ev.result_seen and ev.result_is_error:
        return Outcome(RunStatus.FAILED, first_line(ev.result_text or (ev.errors[-1] if ev.errors else "the agent reported an error")))
    if ev.exit_code == 0 and not ev.errors:
        return Outcome(RunStatus.SUCCEEDED, "finished")
    if ev.exit_code < 0:
        return Outcome(RunStatus.FAILED, f"{kind} was killed by signal {-ev.exit_code}")
    detail = ev.errors[-1] if ev.errors else last_nonempty_line(ev.stderr_tail) or f"exit code {ev.exit_code}"
    return Outcome(RunStatus.FAILED, f"{kind} failed: {first_line(detail)}")


def first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def last_nonempty_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return strip_ansi(line.strip())[:300]
    return ""
