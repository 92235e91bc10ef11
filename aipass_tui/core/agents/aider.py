"""Adapter for Aider: ``aider --message PROMPT`` with the flags for headless use.

Aider prints free text only, and its exit code is unreliable: aider-chat 0.86.2 exits 0 after an
authentication error and after its network retries run out. So the parser marks the known error
lines (auth, network, rate limit, usage), and the judge decides from them and from whether the
repository changed. ``COLUMNS=4000`` keeps Aider from wrapping its error messages across lines.
"""

from __future__ import annotations

import re
from typing import Any

from aipass_tui.core.agents.base import (
    Adapter,
    Evidence,
    Outcome,
    Parser,
    RunContext,
    classify_error_text,
    describe_exit,
    find_line,
    first_line,
    last_error_kind,
    stop_or_lost_outcome,
    strip_ansi,
)
from aipass_tui.core.models import Event, EventKind, RunStatus

HEADLESS_FLAGS = (
    "--yes-always",
    "--no-pretty",
    "--no-stream",
    "--no-fancy-input",
    "--no-check-update",
    "--no-show-release-notes",
    "--analytics-disable",
    "--no-gitignore",
)
NO_MODEL_TEXT = "No LLM model was specified and no API keys were provided"
# Each pattern marks a line that reports a failure, with the error kind it means.
ERROR_LINES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(re.escape(NO_MODEL_TEXT)), "auth"),
    (re.compile(r"^Waiting up to \d+ minutes for you to finish in the browser"), "auth"),
    (re.compile(r"^Authentication with OpenRouter failed"), "auth"),
    (re.compile(r"^litellm\.AuthenticationError:"), "auth"),
    (re.compile(r"^The API provider is not able to authenticate you"), "auth"),
    (re.compile(r"^litellm\.PermissionDeniedError:"), "auth"),
    (re.compile(r"^litellm\.RateLimitError:"), "rate_limit"),
    (re.compile(r"^The API provider has rate limited you"), "rate_limit"),
    (re.compile(r"^litellm\.(?:APIConnectionError|Timeout):"), "network"),
    (re.compile(r"^litellm\.InternalServerError:"), "server"),
    (re.compile(r"^litellm\.ServiceUnavailableError:"), "server"),
    (re.compile(r"^The API provider's servers are down or overloaded"), "server"),
    (re.compile(r"^litellm\.NotFoundError:"), "model"),
    (re.compile(r"^litellm\.BadRequestError:"), "invalid_request"),
    (re.compile(r"^litellm\.ContextWindowExceededError:"), "context_window"),
    (re.compile(r"^litellm\.\w+Error:"), "unknown"),
    (re.compile(r"usage limit reached|exceeded your current quota", re.IGNORECASE), "rate_limit"),
    (re.compile(r"^aider: error: "), "usage"),
)
RETRY_RE = re.compile(r"^Retrying in ([\d.]+) seconds")
RETRY_LINE_RE = re.compile(r"^Retrying in [\d.]+ seconds", re.MULTILINE)
# "Tokens: 2.1k sent, 1.0k cache write, 85 received. Cost: $0.0042 message, $0.0130 session."
TOKENS_RE = re.compile(
    r"^Tokens: (?P<sent>[\d.]+[kKmM]?) sent,(?: (?P<write>[\d.]+[kKmM]?) cache write,)?"
    r"(?: (?P<hit>[\d.]+[kKmM]?) cache hit,)? (?P<received>[\d.]+[kKmM]?) received\."
    r"(?: Cost: \$(?P<cost>[\d.]+) message)?"
)
USAGE_LINE_RE = re.compile(r"^(?:aider: error: |usage: aider)")
KIND_ORDER = ("auth", "billing", "rate_limit", "network", "server", "model", "invalid_request", "context_window")


class AiderAdapter(Adapter):
    kind = "aider"
    executable = "aider"

    def build_argv(self, ctx: RunContext) -> list[str]:
        # "--message=VALUE" keeps argparse from reading a prompt that starts with "-" as an option.
        message = ["--message=" + ctx.prompt] if ctx.prompt.startswith("-") else ["--message", ctx.prompt]
        argv = [self.program(), *message, *HEADLESS_FLAGS]
        if self.config.model:
            argv += ["--model", self.config.model]
        return argv + list(self.config.args)

    def extra_env(self, ctx: RunContext) -> dict[str, str]:
        return {"COLUMNS": "4000", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}

    def new_parser(self) -> Parser:
        return AiderParser()

    def judge(self, evidence: Evidence) -> Outcome:
        return judge_aider(evidence)


class AiderParser(Parser):
    """Pass Aider's lines through as raw events and mark errors, retries and token counts."""

    def parse_line(self, line: str) -> list[Event]:
        text = strip_ansi(line)
        if not text.strip():
            return []
        events = [Event(EventKind.RAW, text)]
        stripped = text.strip()
        kind = error_line_kind(stripped)
        if kind is not None:
            events.append(Event(EventKind.ERROR, stripped, data={"error_kind": kind}))
        retry = RETRY_RE.match(stripped)
        if retry:
            delay = float(retry.group(1))
            events.append(Event(EventKind.RETRY, stripped, data={"retry_delay_ms": delay * 1000}))
        tokens = TOKENS_RE.match(stripped)
        if tokens:
            events.append(_usage_event(tokens))
        return events


def error_line_kind(line: str) -> str | None:
    """Return the error kind of one line of Aider's output, or None when it reports no failure."""
    for pattern, kind in ERROR_LINES:
        if pattern.search(line):
            if kind in ("rate_limit", "server", "unknown"):
                # "Connection error" is a network failure and "insufficient_quota" a billing one.
                return classify_error_text(line) or kind
            return kind
    return None


def _usage_event(match: re.Match[str]) -> Event:
    sent = _count(match.group("sent")) + _count(match.group("write")) + _count(match.group("hit"))
    received = _count(match.group("received"))
    data: dict[str, Any] = {"input_tokens": sent, "output_tokens": received}
    if match.group("cost"):
        data["cost_usd"] = float(match.group("cost"))
    return Event(EventKind.USAGE, f"{sent} tokens in, {received} out", data=data)


def _count(value: str | None) -> int:
    """Read Aider's rounded token counts such as ``85``, ``2.1k`` or ``1.2M``."""
    if not value:
        return 0
    scale = {"k": 1_000, "m": 1_000_000}.get(value[-1].lower(), 1)
    number = value[:-1] if scale > 1 else value
    try:
        return int(float(number) * scale)
    except ValueError:
        return 0


def judge_aider(ev: Evidence) -> Outcome:
    """Decide an Aider run's status from its error lines and the repository, not its exit code."""
    settled = stop_or_lost_outcome("aider", ev)
    if settled is not None:
        if settled.status in (RunStatus.TIMED_OUT, RunStatus.STOPPED) and _waiting_for_login(ev):
            return Outcome(
                settled.status,
                f"{settled.message} while aider was waiting for a browser login: set the agent's model and the "
                "provider's API key (for example OPENAI_API_KEY) in its env",
            )
        if settled.status in (RunStatus.TIMED_OUT, RunStatus.STOPPED) and RETRY_LINE_RE.search(ev.stdout_tail):
            return Outcome(settled.status, f"{settled.message} while aider was retrying the model provider: check the network connection")
        return settled
    code = ev.exit_code
    assert code is not None

    if _waiting_for_login(ev):
        return Outcome(
            RunStatus.FAILED,
            "aider has no model and no API key: set the agent's model (--model) and the provider's API key "
            "(for example OPENAI_API_KEY) in the agent's env",
        )
    usage_line = find_line(ev.stderr_tail, USAGE_LINE_RE)
    if usage_line or code == 2:
        line = usage_line or f"exit code {code}"
        return Outcome(RunStatus.FAILED, f"aider rejected its command line: {line} (check the agent's args)")

    # A changed repository is the work done, whatever errors came before a successful retry.
    errors = list(ev.errors) or _error_lines(ev.stdout_tail)
    kinds = list(ev.error_kinds) or [error_line_kind(e) or "unknown" for e in errors]
    if ev.repo_changed:
        if errors:
            return Outcome(RunStatus.SUCCEEDED, f"finished with changes to the repository, after aider reported: {first_line(errors[-1])}")
        return Outcome(RunStatus.SUCCEEDED, "finished with changes to the repository")
    if errors:
        kind = _main_kind(kinds)
        return Outcome(RunStatus.FAILED, explain_error(kind, first_line(_line_of_kind(errors, kind))))

    if code != 0:
        return Outcome(RunStatus.FAILED, f"aider exited with {describe_exit(code)}: {_last_line(ev) or 'no output'}")
    if not ev.stdout_tail.strip():
        return Outcome(RunStatus.FAILED, "aider exited without printing a reply")
    if ev.repo_changed is None:
        return Outcome(RunStatus.SUCCEEDED, "finished")
    return Outcome(RunStatus.SUCCEEDED, "finished without changing the repository")


def explain_error(kind: str | None, detail: str) -> str:
    """Return what went wrong and what to do about it, for an error kind and Aider's own words."""
    quoted = f" (aider's message: {detail})" if detail else ""
    messages = {
        "auth": "aider could not authenticate with the model provider: check the provider's API key (for example OPENAI_API_KEY) in the agent's env",
        "billing": "aider's model provider account cannot pay for requests: check its plan or billing",
        "rate_limit": "aider was rate limited or ran out of quota: wait until the limit resets, then dispatch the request again",
        "network": "aider could not reach the model provider: check the network connection",
        "server": "aider's model provider failed or could not be reached: check the network connection, then dispatch the request again",
        "model": "aider's model was not found: check the agent's model name",
        "invalid_request": "the model provider rejected aider's request as invalid",
        "context_window": "the request is too large for the model's context window: split it or use a larger model",
    }
    if kind in messages:
        return messages[kind] + quoted
    return f"aider reported an error: {detail}" if detail else "aider reported an error"


def _waiting_for_login(ev: Evidence) -> bool:
    return any(NO_MODEL_TEXT in e for e in ev.errors) or NO_MODEL_TEXT in ev.stdout_tail


def _error_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if error_line_kind(line.strip())]


def _main_kind(kinds: list[str]) -> str | None:
    for kind in KIND_ORDER:
        if kind in kinds:
            return kind
    return last_error_kind(kinds)


def _line_of_kind(errors: list[str], kind: str | None) -> str:
    for line in errors:
        if error_line_kind(line) == kind:
            return line
    return errors[-1]


def _last_line(ev: Evidence) -> str:
    for text in (ev.stderr_tail, ev.stdout_tail):
        for line in reversed(text.splitlines()):
            if line.strip():
                return strip_ansi(line.strip())[:300]
    return ""
