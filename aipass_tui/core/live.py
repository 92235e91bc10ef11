"""The orchestrator's view of one live run: parsers, summary, event file and checkpoints."""

from __future__ import annotations

import json
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from aipass_tui.core import clock
from aipass_tui.core.agents.base import Adapter, LineSplitter, Parser, strip_ansi
from aipass_tui.core.models import Event, EventKind, RunRecord
from aipass_tui.core.runners.base import RunHandle, Runner
from aipass_tui.core.store import write_json

READ_CHUNK = 1 << 20
# Bytes read per stream per tick, so one flooding agent cannot starve the others.
READ_BUDGET = 4 << 20
STDERR_TAIL = 16 * 1024


@dataclass
class LiveRun:
    """A run the orchestrator is currently reading."""

    record: RunRecord
    handle: RunHandle
    adapter: Adapter
    parser: Parser
    stderr_lines: LineSplitter = field(default_factory=LineSplitter)
    events_file: object | None = None
    stderr_tail: bytearray = field(default_factory=bytearray)
    stdout_tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    stdout_read: int = 0
    stderr_read: int = 0
    dirty: bool = False
    last_checkpoint: float = 0.0
    events_pending: bool = False
    events_flushed_at: float = 0.0
    quiet_since: float = 0.0
    next_read_at: float = 0.0
    kill_at: float | None = None
    exit_seen_at: float | None = None
    runner: Runner | None = None

    @property
    def run_dir(self) -> Path:
        return self.handle.run_dir

    def open_events(self) -> None:
        """Open events.jsonl for appending, cut back to the last checkpoint (dropping a torn tail)."""
        path = self.run_dir / "events.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = os.fstat(fd).st_size
        if size > self.record.events_size:
            os.ftruncate(fd, self.record.events_size)
        os.close(fd)
        self.events_file = open(path, "a", encoding="utf-8", buffering=1 << 16)

    def resume(self, runner: Runner) -> None:
        """Continue reading both streams from the checkpointed offsets."""
        runner.seek(self.handle, "stdout", self.record.stdout_offset)
        runner.seek(self.handle, "stderr", self.record.stderr_offset)
        self.stdout_read = self.record.stdout_offset
        self.stderr_read = self.record.stderr_offset

    def pump(self, runner: Runner, final: bool = False) -> list[Event]:
        """Read what the run wrote since the last call and return its events."""
        events: list[Event] = []
        budget = READ_BUDGET if not final else 1 << 62
        while budget > 0:
            data = runner.read(self.handle, "stdout", READ_CHUNK)
            if not data:
                break
            budget -= len(data)
            start = self.stdout_read
            self.stdout_read += len(data)
            newline = data.rfind(b"\n")
            events.extend(self.parser.feed(data))
            if newline >= 0:
                self.record.stdout_offset = start + newline + 1
            if len(data) < READ_CHUNK:
                break  # a short read means the run has written nothing more yet
        while True:
            data = runner.read(self.handle, "stderr", READ_CHUNK)
            if not data:
                break
            start = self.stderr_read
            self.stderr_read += len(data)
            self.stderr_tail += data
            del self.stderr_tail[:-STDERR_TAIL]
            newline = data.rfind(b"\n")
            for line in self.stderr_lines.feed(data):
                if line.strip():
                    events.append(Event(EventKind.STDERR, strip_ansi(line)))
            if newline >= 0:
                self.record.stderr_offset = start + newline + 1
            if not final:
                break
        if final:
            events.extend(self.parser.close())
            for line in self.stderr_lines.close():
                if line.strip():
                    events.append(Event(EventKind.STDERR, strip_ansi(line)))
            self.record.stdout_offset = self.stdout_read
            self.record.stderr_offset = self.stderr_read
        if events:
            self._record(events)
        return events

    def _record(self, events: list[Event]) -> None:
        summary = self.record.summary
        lines = []
        for event in events:
            summary.apply(event)
            if event.kind in (EventKind.RAW, EventKind.TEXT) and event.text:
                self.stdout_tail.append(event.text[-500:])
            lines.append(json.dumps(_bounded(event), ensure_ascii=False, default=str))
        if self.events_file is not None:
            self.events_file.write("\n".join(lines) + "\n")
            self.events_pending = True
        self.record.last_output_at = clock.now()
        self.dirty = True

    def flush_events(self, now: float) -> None:
        """Write the buffered events to events.jsonl, for readers that follow the file.

        The file may then run ahead of run.json's ``events_size``: a resume cuts it back to
        that size and reads the output again from the checkpointed offsets.
        """
        if self.events_file is not None:
            self.events_file.flush()
        self.events_pending = False
        self.events_flushed_at = now

    def checkpoint(self, fsync: bool = True) -> None:
        """Write run.json with offsets and summary that match events.jsonl exactly."""
        if self.events_file is not None:
            self.flush_events(clock.now())
            self.record.events_size = self.events_file.tell()
        write_json(self.run_dir / "run.json", self.record, fsync=fsync)
        self.dirty = False
        self.last_checkpoint = clock.now()

    def close(self, runner: Runner) -> None:
        if self.events_file is not None:
            self.events_file.close()
            self.events_file = None
        runner.release(self.handle)


def _bounded(event: Event, limit: int = 64 * 1024) -> dict:
    """Return the event as a dict with very long text cut, so events.jsonl stays readable."""
    out = event.to_dict()
    text = out.get("text")
    if text and len(text) > limit:
        out["text"] = text[:limit] + f"… [{len(text) - limit} more characters in stdout]"
    data = out.get("data")
    if data:
        encoded = json.dumps(data, ensure_ascii=False, default=str)
        if len(encoded) > limit:
            out["data"] = {"truncated": True, "size": len(encoded)}
    return out
