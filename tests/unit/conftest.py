"""Fixtures for the adapter tests: run the fake agent CLIs and fold their output like a run does."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from aipass_tui.config import AgentConfig
from aipass_tui.core.agents import adapter_for
from aipass_tui.core.agents.base import Adapter, Evidence, Outcome, RunContext
from aipass_tui.core.models import Event, RunSummary

FAKES = Path(__file__).resolve().parents[1] / "fakes"
FAKE_BIN = FAKES / "bin"
TAIL_BYTES = 64 * 1024


@dataclass
class Parsed:
    """Events of one output stream and the run summary folded from them."""

    events: list[Event]
    summary: RunSummary = field(default_factory=RunSummary)

    def kinds(self) -> list[str]:
        return [e.kind.value for e in self.events]

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind.value == kind]


def parse(adapter: Adapter, data: bytes, chunk: int | None = None) -> Parsed:
    """Feed ``data`` to a fresh parser (whole, or in chunks of ``chunk`` bytes) and fold the events."""
    parser = adapter.new_parser()
    events: list[Event] = []
    step = chunk or max(len(data), 1)
    for start in range(0, len(data), step):
        events.extend(parser.feed(data[start : start + step]))
    events.extend(parser.close())
    summary = RunSummary()
    for event in events:
        summary.apply(event)
    return Parsed(events, summary)


def evidence(
    parsed: Parsed,
    exit_code: int | None,
    stdout: bytes = b"",
    stderr: bytes = b"",
    stop_requested: str | None = None,
    repo_changed: bool | None = None,
) -> Evidence:
    """Build the evidence for a finished run the way the orchestrator does: from the summary and the tails."""
    summary = parsed.summary
    return Evidence(
        exit_code=exit_code,
        stop_requested=stop_requested,
        result_seen=summary.result_is_error is not None,
        result_is_error=summary.result_is_error,
        result_text=summary.result_text,
        errors=list(summary.errors),
        error_kinds=list(summary.error_kinds),
        stderr_tail=stderr[-TAIL_BYTES:].decode("utf-8", "replace"),
        stdout_tail=stdout[-TAIL_BYTES:].decode("utf-8", "replace"),
        repo_changed=repo_changed,
    )


def judge_output(adapter: Adapter, stdout: bytes, exit_code: int | None, stderr: bytes = b"", **kwargs: Any) -> Outcome:
    """Parse ``stdout`` and judge it together with the exit code and stderr."""
    parsed = parse(adapter, stdout)
    return adapter.judge(evidence(parsed, exit_code, stdout, stderr, **kwargs))


def make_adapter(kind: str, **config: Any) -> Adapter:
    """Return the adapter for a fake CLI of this kind (its ``binary`` points at tests/fakes/bin)."""
    config.setdefault("binary", str(FAKE_BIN / kind))
    return adapter_for(f"{kind}-test", AgentConfig(kind=kind, **config))


def context(prompt: str, cwd: Path, **extra: Any) -> RunContext:
    return RunContext(
        prompt=prompt,
        subject=prompt,
        body="",
        run_id=extra.pop("run_id", "run-1"),
        request_id=extra.pop("request_id", "req-1"),
        cwd=cwd,
        **extra,
    )


def fake_env(adapter: Adapter, ctx: RunContext, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_AGENT_")}
    env.update(adapter.extra_env(ctx))
    env["AIPASS_FAKE_PYTHON"] = sys.executable
    env["AIPASS_RUN_ID"] = ctx.run_id
    env["AIPASS_REQUEST_ID"] = ctx.request_id
    env.update(extra)
    return env


@dataclass
class FakeRun:
    adapter: Adapter
    argv: list[str]
    stdout: bytes
    stderr: bytes
    exit_code: int

    def parsed(self) -> Parsed:
        return parse(self.adapter, self.stdout)

    def outcome(self, **kwargs: Any) -> Outcome:
        return self.adapter.judge(evidence(self.parsed(), self.exit_code, self.stdout, self.stderr, **kwargs))


def run_fake(kind: str, prompt: str, cwd: Path, timeout: float = 30, env: dict[str, str] | None = None, **config: Any) -> FakeRun:
    """Run a fake CLI with the argv its adapter builds, stdin from /dev/null, to completion."""
    adapter = make_adapter(kind, **config)
    ctx = context(prompt, cwd, session_id="0b5e2a4e-1d7c-4f7e-9a51-6a7f3c1d2e90")
    argv = adapter.build_argv(ctx)
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=fake_env(adapter, ctx, **(env or {})),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    return FakeRun(adapter, argv, proc.stdout, proc.stderr, proc.returncode)


class AgentKit:
    """The helpers above, handed to tests through the ``kit`` fixture.

    Test modules cannot import this conftest by name, because tests/conftest.py is also a module
    named ``conftest``.
    """

    FAKE_BIN = FAKE_BIN
    parse = staticmethod(parse)
    evidence = staticmethod(evidence)
    judge_output = staticmethod(judge_output)
    make_adapter = staticmethod(make_adapter)
    context = staticmethod(context)
    fake_env = staticmethod(fake_env)
    run_fake = staticmethod(run_fake)


@pytest.fixture(scope="session")
def kit() -> type[AgentKit]:
    return AgentKit
