"""Adapter for local models: ``ollama run MODEL PROMPT``.

``ollama run`` prints the model's response as plain text on stdout and its failures as ``Error: ...`` on
stderr, for example ``Error: could not connect to ollama server, run 'ollama serve' to start it``
or ``Error: pull model manifest: file does not exist`` for an unknown model.
"""

from __future__ import annotations

import re

from aipass_tui.core.agents.base import (
    Adapter,
    Evidence,
    Outcome,
    Parser,
    RunContext,
    classify_error_text,
    describe_exit,
    guard_prompt,
    stop_or_lost_outcome,
    strip_ansi,
)
from aipass_tui.core.models import Event, EventKind, RunStatus

ERROR_RE = re.compile(r"^Error: (?P<message>.*)")
MODEL_MISSING_RE = re.compile(r"file does not exist|not found|no such model|manifest unknown", re.IGNORECASE)
SERVER_DOWN_RE = re.compile(r"could not connect to ollama|connection refused|is it running", re.IGNORECASE)


class OllamaAdapter(Adapter):
    kind = "ollama"
    executable = "ollama"

    def build_argv(self, ctx: RunContext) -> list[str]:
        if not self.config.model:
            raise ValueError(
                f'agent "{self.name}" (kind = "ollama") has no model: set model = "<name>" under '
                f"[agents.{self.name}], for example model = \"llama3.2\""
            )
        return [self.program(), "run", self.config.model, *self.config.args, guard_prompt(ctx.prompt)]

    def extra_env(self, ctx: RunContext) -> dict[str, str]:
        return {"NO_COLOR": "1"}

    def new_parser(self) -> Parser:
        return OllamaParser()

    def judge(self, evidence: Evidence) -> Outcome:
        return judge_ollama(evidence, self.config.model or "MODEL")


class OllamaParser(Parser):
    """Pass the model's response through as raw lines and mark ``Error: ...`` lines."""

    def parse_line(self, line: str) -> list[Event]:
        text = strip_ansi(line)
        if not text.strip():
            return []
        events = [Event(EventKind.RAW, text)]
        match = ERROR_RE.match(text.strip())
        if match:
            # ollama writes its own errors to stderr, so an "Error:" line on stdout may be part
            # of the model's response. So only the known failures are marked.
            kind = ollama_error_kind(match.group("message"))
            if kind != "unknown":
                events.append(Event(EventKind.ERROR, text.strip(), data={"error_kind": kind}))
        return events


def ollama_error_kind(message: str) -> str:
    """Return the error kind of an ``Error: ...`` message from ``ollama run``."""
    if SERVER_DOWN_RE.search(message):
        return "server_down"
    if MODEL_MISSING_RE.search(message):
        return "model"
    return classify_error_text(message) or "unknown"


def judge_ollama(ev: Evidence, model: str) -> Outcome:
    """Decide an ``ollama run`` status from its ``Error:`` lines and exit code.

    An ``Error:`` line on stdout counts only when ollama also exited non-zero, because with exit
    code 0 it is part of the model's response.
    """
    settled = stop_or_lost_outcome("ollama", ev)
    if settled is not None:
        return settled
    code = ev.exit_code
    assert code is not None
    stderr_errors = [line.strip() for line in strip_ansi(ev.stderr_tail).splitlines() if ERROR_RE.match(line.strip())]
    errors = stderr_errors or (list(ev.errors) if code != 0 else [])
    if errors:
        message = errors[-1]
        kind = ollama_error_kind(message)
        if kind == "server_down":
            return Outcome(RunStatus.FAILED, f"ollama could not reach its server: start the ollama server with `ollama serve` ({message})")
        if kind == "model":
            return Outcome(RunStatus.FAILED, f"ollama has no model {model}: pull the model with `ollama pull {model}` ({message})")
        return Outcome(RunStatus.FAILED, f"ollama failed: {message}")
    if code != 0:
        detail = next((line.strip() for line in reversed(ev.stderr_tail.splitlines()) if line.strip()), "")
        return Outcome(RunStatus.FAILED, f"ollama exited with {describe_exit(code)}" + (f": {strip_ansi(detail)[:300]}" if detail else ""))
    if not ev.stdout_tail.strip():
        return Outcome(RunStatus.FAILED, "ollama exited without printing a response")
    return Outcome(RunStatus.SUCCEEDED, "finished")
