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
_OBJECT_START = re.compile(r'\{\s*"')
ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


@dataclass
class RunContext:
    """Inputs an adapter uses to build the argv of one run."""

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

    A line that is not one JSON object is salvaged: every complete event object inside it is
    parsed, and the rest of the text is delivered as a raw event, so nothing is dropped silently.
    Such lines appear when a process writes an event into the middle of another event's line.
    The first line then contains the start of event A and the whole of event B, and the next
    line contains the rest of A. The start of A is held back for one line and joined with the
    next line, so A is parsed whole. When the joined text is not valid JSON either, both parts
    are delivered as raw events.
    """

    # Work allowed for salvaging one line, in characters scanned per character of the line, so
    # a long line full of unbalanced braces costs linear time, not quadratic.
    SALVAGE_SCAN_FACTOR = 8
    # Failed parse attempts allowed per line. Each failure costs time linear in the line's length,
    # because the decode error counts the lines before its position.
    SALVAGE_MAX_FAILURES = 64

    def __init__(self) -> None:
        super().__init__()
        self._fragment: str | None = None

    def close(self) -> list[Event]:
        events = super().close()
        return events + self._flush_fragment()

    def parse_line(self, line: str) -> list[Event]:
        events: list[Event] = []
        if self._fragment is not None:
            fragment, self._fragment = self._fragment, None
            joined = _load_object(fragment + line)
            if joined is not None:
                return self.parse_object(joined)
            events.append(self.raw_event(fragment.strip()))
        stripped = line.strip()
        if not stripped:
            return events
        if stripped.startswith("{"):
            obj = _load_object(stripped)
            if obj is not None:
                return events + self.parse_object(obj)
        return events + self._salvage(line)

    def raw_event(self, text: str) -> Event:
        """Return the event for text that is not JSON; subclasses may classify it."""
        return Event(EventKind.RAW, strip_ansi(text))

    def is_event(self, obj: dict[str, Any]) -> bool:
        """Tell whether an object found inside a broken line is a whole event of this stream.

        Subclasses narrow this to their top-level event types, so a nested object (a content
        block with its own ``type``) is not mistaken for an event.
        """
        return "type" in obj

    def _salvage(self, text: str) -> list[Event]:
        decoder = json.JSONDecoder()
        found: list[Event] = []
        leftover: list[str] = []
        budget = self.SALVAGE_SCAN_FACTOR * len(text) + 4096
        failures = 0
        pos = 0
        while pos < len(text):
            # An object with a key starts with '{"'. Inside a JSON string that quote is escaped,
            # so braces in string values are never tried.
            match = _OBJECT_START.search(text, pos) if budget > 0 and failures < self.SALVAGE_MAX_FAILURES else None
            if match is None:
                leftover.append(text[pos:])
                break
            start = match.start()
            try:
                obj, end = decoder.raw_decode(text, start)
            except (ValueError, RecursionError) as exc:
                failures += 1
                failed_at = getattr(exc, "pos", len(text))
                budget -= max(failed_at - start, 1)
                leftover.append(text[pos : start + 1])
                pos = start + 1
                continue
            budget -= end - start
            if isinstance(obj, dict) and self.is_event(obj):
                leftover.append(text[pos:start])
                found.extend(self.parse_object(obj))
            else:
                leftover.append(text[pos:end])
            pos = end
        rest = "".join(leftover)
        if rest.strip():
            if found and rest.lstrip().startswith("{"):
                # The start of an event that another event was written into. Join it with
                # the next line, which should contain the rest.
                self._fragment = rest
            else:
                found.insert(0, self.raw_event(rest.strip()))
        return found

    def _flush_fragment(self) -> list[Event]:
        if self._fragment is None:
            return []
        fragment, self._fragment = self._fragment, None
        return [self.raw_event(fragment.strip())]

    def parse_object(self, obj: dict[str, Any]) -> list[Event]:
        raise NotImplementedError


def _load_object(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


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


# Error kinds, checked in this order against the text of an error. Billing comes before rate
# limits because OpenAI reports an empty balance as HTTP 429 "insufficient_quota", and network
# comes before server because "can't reach the API server" is a network failure.
_ERROR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "billing",
        re.compile(
            r"billing|credit balance|insufficient[_ ]quota|payment required|exceeded your current quota",
            re.IGNORECASE,
        ),
    ),
    (
        "auth",
        re.compile(
            r"(?<![\d.])40[13](?!\d)|unauthori[sz]ed|authenticat|not logged in|please run /login|login required"
            r"|invalid[ _-]?(?:x-)?api[ _-]?key|incorrect api key|api[ _-]?key (?:is )?(?:missing|invalid|not set|not valid)"
            r"|no api key|missing bearer|forbidden",
            re.IGNORECASE,
        ),
    ),
    (
        "rate_limit",
        re.compile(
            r"(?<![\d.])429(?!\d)|rate[ _-]?limit|too many requests|usage limit|hit your (?:usage )?limit"
            r"|resource[_ ]exhausted|has been exhausted|exhausted your|quota exceeded|check quota|limit reached",
            re.IGNORECASE,
        ),
    ),
    (
        "network",
        re.compile(
            r"could not connect|couldn't connect|can't reach|cannot reach|unable to connect"
            r"|connection (?:refused|reset|error|failed|closed)|connection_failed|failed to (?:lookup|resolve)"
            r"|name resolution|getaddrinfo|EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|fetch failed"
            r"|network (?:is )?unreachable|waiting for network|stream disconnected",
            re.IGNORECASE,
        ),
    ),
    (
        "server",
        re.compile(
            r"(?<![\d.])5(?:00|02|03|04|29)(?!\d)|internal server error|server error|overloaded|service unavailable"
            r"|bad gateway",
            re.IGNORECASE,
        ),
    ),
)


def classify_error_text(text: str) -> str | None:
    """Return the error kind that an error message describes, or None when it names none.

    Kinds: ``auth``, ``billing``, ``rate_limit``, ``network`` and ``server``.
    """
    for kind, pattern in _ERROR_PATTERNS:
        if pattern.search(text):
            return kind
    return None


def stop_or_lost_outcome(kind: str, ev: Evidence) -> Outcome | None:
    """Return the outcome when the orchestrator stopped the run or lost its exit status, else None."""
    if ev.stop_requested or ev.exit_code is None:
        return default_judge(kind, ev)
    return None


def guard_prompt(prompt: str) -> str:
    """Return the prompt so that a CLI's option parser cannot read it as an option.

    A prompt that starts with ``-`` gets a leading space. The agent reads the same request, and
    the CLI's option parser reads a positional value instead of an unknown option.
    """
    return " " + prompt if prompt.startswith("-") else prompt


def clip(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, marking the cut with the size left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def find_line(text: str, pattern: re.Pattern[str]) -> str:
    """Return the last line of ``text`` that matches ``pattern``, without ANSI codes, or ''."""
    for line in reversed(text.splitlines()):
        clean = strip_ansi(line).strip()
        if clean and pattern.search(clean):
            return clean[:300]
    return ""


def describe_exit(code: int) -> str:
    """Return ``code 1`` for an exit code or ``signal 9`` for a negative one."""
    return f"signal {-code}" if code < 0 else f"code {code}"


def last_error_kind(kinds: list[str], ignore: frozenset[str] = frozenset()) -> str | None:
    """Return the last error kind that is not ``unknown`` and not in ``ignore``."""
    for kind in reversed(kinds):
        if kind and kind != "unknown" and kind not in ignore:
            return kind
    return None
