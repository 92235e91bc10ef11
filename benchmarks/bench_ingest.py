"""Ingest capacity: how many output lines per CPU-second the orchestrator parses and persists.

Writes a transcript of N lines in an agent's real format to a run folder, then lets the same
code path a live run uses (LiveRun.pump: adapter parser, summary, events.jsonl) read it flat out.

    python benchmarks/bench_ingest.py --kind claude --lines 200000
    python benchmarks/bench_ingest.py --kind command --lines 200000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aipass_tui.config import AgentConfig
from aipass_tui.core.agents import adapter_for
from aipass_tui.core.live import LiveRun
from aipass_tui.core.models import RunRecord
from aipass_tui.core.runners.base import RunHandle
from aipass_tui.core.runners.local import LocalRunner

CLAUDE_LINES = [
    {"type": "assistant", "message": {"id": "m1", "model": "claude-sonnet", "role": "assistant", "content": [{"type": "text", "text": "I will read the file and then change the function that parses the header. " * 2}], "usage": {"input_tokens": 12, "output_tokens": 40}}, "parent_tool_use_id": None, "session_id": "s"},
    {"type": "assistant", "message": {"id": "m2", "model": "claude-sonnet", "role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "/repo/src/app.py"}}]}, "parent_tool_use_id": None, "session_id": "s"},
    {"type": "user", "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "def main():\n    return 0\n" * 4, "is_error": False}]}, "parent_tool_use_id": None, "session_id": "s"},
]


def write_transcript(path: Path, kind: str, lines: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(lines):
            if kind == "claude":
                handle.write(json.dumps(CLAUDE_LINES[i % 3]) + "\n")
            else:
                handle.write(f"line {i}: compiling module {i % 97} of the project, 42 warnings so far\n")


def measure(kind: str, lines: int) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="aipass-ingest-"))
    run_dir = root / "run"
    run_dir.mkdir()
    write_transcript(run_dir / "stdout", kind, lines)
    (run_dir / "stderr").touch()
    config = AgentConfig(kind=kind, command=["x"]) if kind == "command" else AgentConfig(kind=kind)
    adapter = adapter_for("bench", config)
    runner = LocalRunner()
    handle = RunHandle("bench-run", run_dir, extra={"child": False})
    runner._open(handle)  # noqa: SLF001 - reads the file like a re-attached run
    record = RunRecord(id="bench-run", agent="bench", request="r", kind=kind)
    live = LiveRun(record=record, handle=handle, adapter=adapter, parser=adapter.new_parser())
    live.open_events()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    events = 0
    while True:
        batch = live.pump(runner)
        if not batch:
            break
        events += len(batch)
    live.checkpoint()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    live.close(runner)
    assert events >= lines, f"expected at least {lines} events, got {events}"
    return lines / cpu, lines / wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", default="claude", choices=["claude", "codex", "gemini", "command"])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    per_cpu, per_wall = zip(*(measure(args.kind, args.lines) for _ in range(args.repeats)))
    print(json.dumps({
        "kind": args.kind,
        "lines": args.lines,
        "repeats": args.repeats,
        "lines_per_cpu_second_median": round(statistics.median(per_cpu)),
        "lines_per_wall_second_median": round(statistics.median(per_wall)),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
