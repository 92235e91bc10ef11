"""Adapter for the Gemini CLI: ``gemini -p PROMPT --output-format stream-json``.

Event types follow ``packages/core/src/output/types.ts`` of google-gemini/gemini-cli. The exit
code is the best evidence (gemini-cli 0.61.0): 41 no auth configured, 42 bad input, 44 sandbox, 52
config, 53 turn limit, 54 tool failure, 55 untrusted folder, 130 cancelled, 1 API or usage error.
Start-up failures print plain text (or pretty-printed JSON) on stderr and nothing on stdout, and a
gemini stopped through its process group exits 0 without a result.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aipass_tui.core.agents.base import (
    Adapter,
    Evidence,
    JsonLineParser,
    Outcome,
    Parser,
    RunContext,
    classify_error_text,
    clip,
    describe_exit,
    find_line,
    first_line,
    guard_prompt,
    last_error_kind,
    stop_or_lost_outcome,
    strip_ansi,
)
from aipass_tui.core.models import Event, EventKind, RunStatus

EVENT_TYPES = frozenset({"init", "message", "tool_use", "tool_result", "error", "result"})
TOOL_RESULT_LIMIT = 8000
TODO_TOOLS = frozenset({"write_todos", "todo_write"})
AUTH_MESSAGE = "gemini is not authenticated: set GEMINI_API_KEY or run `gemini` once in a terminal to log in"
EXIT_MESSAGES = {
    42: "gemini rejected its input",
    44: "gemini could not start its sandbox",
    52: "gemini's configuration is invalid: check ~/.gemini/settings.json and the agent's args",
    53: "gemini reached its turn limit (model.maxSessionTurns): raise it or split the request",
    54: "a gemini tool failed",
}
AUTH_TEXT_RE = re.compile(r"Please set an Auth method|GEMINI_API_KEY|API key not valid|not authenticated", re.IGNORECASE)
TRUST_TEXT_RE = re.compile(r"not running in a trusted directory", re.IGNORECASE)
USAGE_TEXT_RE = re.compile(r"^(?:Invalid values:|Unknown argument|Unknown arguments|Not enough arguments|Missing required argument)")
LIMIT_TEXT_RE = re.compile(r"quota|rate limit|usage limit|resource[_ ]exhausted|has been exhausted|\b429\b", re.IGNORECASE)
NETWORK_TEXT_RE = re.compile(r"fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT", re.IGNORECASE)
# stderr lines printed on healthy runs too (gemini-cli 0.61.0 without a true-colour terminal or rg).
STDERR_NOISE_RE = re.compile(
    r"^(?:Warning: True color|Ripgrep is not available|\(node:\d+\) MaxListenersExceededWarning|\(Use `node --trace-warnings|at )"
)


class GeminiAdapter(Adapter):
    kind = "gemini"
    executable = "gemini"
    structured = True

    def build_argv(self, ctx: RunContext) -> list[str]:
        argv = [self.program(), "-p", guard_prompt(ctx.prompt), "--output-format", "stream-json"]
        if self.config.model:
            argv += ["-m", self.config.model]
        if ctx.resume_session:
            argv += ["--resume", ctx.resume_session]
        return argv + list(self.config.args)

    def new_parser(self) -> Parser:
        return GeminiParser(self.config.price_per_mtok)

    def judge(self, evidence: Evidence) -> Outcome:
        return judge_gemini(evidence)


class GeminiParser(JsonLineParser):
    """Turn Gemini's stream-json lines into events, one text event per assistant message."""

    def __init__(self, price_per_mtok: tuple[float, float] | None = None) -> None:
        super().__init__()
        self._price = price_per_mtok
        self._chunks: list[str] = []
        self._last_text = ""
        self._tool_names: dict[str, str] = {}

    def is_event(self, obj: dict[str, Any]) -> bool:
        kind = obj.get("type")
        return isinstance(kind, str) and kind in EVENT_TYPES

    def close(self) -> list[Event]:
        events = super().close()
        return events + self._flush()

    def parse_line(self, line: str) -> list[Event]:
        events = super().parse_line(line)
        if any(e.kind == EventKind.RAW for e in events):
            # A plain line ends the assistant message that was being assembled.
            return self._flush() + events
        return events

    def parse_object(self, obj: dict[str, Any]) -> list[Event]:
        kind = obj.get("type")
        if kind == "message" and obj.get("role") == "assistant":
            content = str(obj.get("content") or "")
            if obj.get("delta"):
                self._chunks.append(content)
                return []
            return self._flush() + self._text(content)
        events = self._flush()
        if kind == "init":
            model = obj.get("model")
            events.append(Event(EventKind.INIT, f"gemini started with model {model}", data={"session_id": obj.get("session_id"), "model": model}))
        elif kind == "message":
            return events  # the user's prompt, echoed back
        elif kind == "tool_use":
            events.extend(self._tool_use(obj))
        elif kind == "tool_result":
            events.append(self._tool_result(obj))
        elif kind == "error":
            events.append(_error_event(obj))
        elif kind == "result":
            events.extend(self._result(obj))
        else:
            events.append(Event(EventKind.STATUS, f"gemini event {kind}", data={"type": kind}))
        return events

    def _flush(self) -> list[Event]:
        if not self._chunks:
            return []
        text = "".join(self._chunks)
        self._chunks.clear()
        return self._text(text)

    def _text(self, text: str) -> list[Event]:
        if not text.strip():
            return []
        self._last_text = text
        return [Event(EventKind.TEXT, text)]

    def _tool_use(self, obj: dict[str, Any]) -> list[Event]:
        name = str(obj.get("tool_name") or "tool")
        tool_id = str(obj.get("tool_id") or "")
        params = obj.get("parameters") if isinstance(obj.get("parameters"), dict) else {}
        self._tool_names[tool_id] = name
        keys = ("command", "file_path", "absolute_path", "path", "pattern", "query", "url")
        preview = next((str(params[k]) for k in keys if params.get(k)), "")
        if not preview and params:
            preview = json.dumps(params, ensure_ascii=False)
        text = f"{name}: {first_line(preview, 200)}" if preview else name
        events = [Event(EventKind.TOOL_USE, text, data={"tool": name, "input": params, "id": tool_id})]
        if name in TODO_TOOLS and isinstance(params.get("todos"), list):
            items = [_todo_item(t) for t in params["todos"] if isinstance(t, dict)]
            events.append(Event(EventKind.TODO, f"{len(items)} todo items", data={"items": items}))
        return events

    def _tool_result(self, obj: dict[str, Any]) -> Event:
        tool_id = str(obj.get("tool_id") or "")
        is_error = obj.get("status") == "error"
        error = obj.get("error") if isinstance(obj.get("error"), dict) else {}
        text = str(obj.get("output") or "") or str(error.get("message") or "")
        data: dict[str, Any] = {"tool_use_id": tool_id, "is_error": is_error, "tool": self._tool_names.get(tool_id)}
        if len(text) > TOOL_RESULT_LIMIT:
            data["size"] = len(text)
        return Event(EventKind.TOOL_RESULT, clip(text, TOOL_RESULT_LIMIT), data=data)

    def _result(self, obj: dict[str, Any]) -> list[Event]:
        is_error = obj.get("status") == "error"
        error = obj.get("error") if isinstance(obj.get("error"), dict) else {}
        stats = obj.get("stats") if isinstance(obj.get("stats"), dict) else {}
        events: list[Event] = []
        if stats:
            input_tokens = _int(stats.get("input_tokens"))
            output_tokens = _int(stats.get("output_tokens"))
            data: dict[str, Any] = {
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cached_input_tokens": _int(stats.get("cached")),
                "tool_calls": stats.get("tool_calls"),
                "duration_ms": stats.get("duration_ms"),
                "total": True,
            }
            if self._price is not None:
                # An estimate: gemini reports no cost, and cached input is priced like other input.
                data["cost_usd"] = (input_tokens * self._price[0] + output_tokens * self._price[1]) / 1_000_000
                data["cost_estimated"] = True
            events.append(Event(EventKind.USAGE, f"{input_tokens} tokens in, {output_tokens} out", data=data))
        result_data: dict[str, Any] = {"is_error": is_error}
        if is_error:
            message = str(error.get("message") or "gemini reported an error")
            result_data["error_kind"] = classify_error_text(message) or "unknown"
            result_data["error_type"] = error.get("type")
            events.append(Event(EventKind.RESULT, message, data=result_data))
        else:
            events.append(Event(EventKind.RESULT, self._last_text, data=result_data))
        return events


def _error_event(obj: dict[str, Any]) -> Event:
    message = str(obj.get("message") or "")
    severity = obj.get("severity") or "error"
    if severity == "warning":
        return Event(EventKind.STATUS, f"warning: {message}", data={"severity": severity})
    return Event(EventKind.ERROR, message, data={"severity": severity, "error_kind": classify_error_text(message) or "unknown"})


def _todo_item(todo: dict[str, Any]) -> dict[str, Any]:
    """Map a write_todos entry to a todo item; a cancelled entry counts as completed."""
    status = todo.get("status")
    if status == "cancelled":
        status = "completed"
    elif status not in ("pending", "in_progress", "completed"):
        status = "pending"
    return {"text": str(todo.get("description") or todo.get("content") or todo.get("text") or ""), "status": status}


def judge_gemini(ev: Evidence) -> Outcome:
    """Decide a Gemini run's status from its exit code, result event and stderr."""
    settled = stop_or_lost_outcome("gemini", ev)
    if settled is not None:
        retrying = "Retrying with backoff" in ev.stderr_tail or "network" in ev.error_kinds
        if retrying and settled.status in (RunStatus.TIMED_OUT, RunStatus.STOPPED):
            return Outcome(settled.status, f"{settled.message} while gemini was retrying the API: check the network connection")
        return settled
    code = ev.exit_code
    assert code is not None
    stderr = strip_ansi(ev.stderr_tail)

    # Start-up checks fail with a plain-text message on stderr and a distinct exit code.
    if code == 41 or (not ev.result_seen and AUTH_TEXT_RE.search(stderr)):
        detail = find_line(stderr, AUTH_TEXT_RE) or stderr_error_message(stderr)
        return Outcome(RunStatus.FAILED, AUTH_MESSAGE + _quote(detail))
    if code == 55 or (not ev.result_seen and TRUST_TEXT_RE.search(stderr)):
        return Outcome(
            RunStatus.FAILED,
            'gemini refuses to run in a folder it does not trust: add "--skip-trust" to the agent\'s args, '
            "or trust the folder by running `gemini` there once",
        )
    if code == 130:
        return Outcome(RunStatus.FAILED, "gemini was cancelled by an interrupt (exit code 130) before it finished")
    if code in EXIT_MESSAGES:
        return Outcome(RunStatus.FAILED, EXIT_MESSAGES[code] + _quote(_detail(ev)))

    if ev.result_seen and ev.result_is_error is False:
        if code == 0:
            return Outcome(RunStatus.SUCCEEDED, "finished")
        return Outcome(RunStatus.SUCCEEDED, f"finished, but gemini then exited with {describe_exit(code)}")
    if ev.result_seen:
        detail = first_line(ev.result_text or (ev.errors[-1] if ev.errors else ""))
        kind = last_error_kind(ev.error_kinds) or classify_error_text(detail + "\n" + stderr)
        return Outcome(RunStatus.FAILED, explain_error(kind, detail))

    # No result: a usage error, a signal, or an API failure told on stderr.
    usage_line = find_line(stderr, USAGE_TEXT_RE)
    if usage_line:
        return Outcome(RunStatus.FAILED, f"gemini rejected its command line: {usage_line} (check the agent's args)")
    if code == 0:
        return Outcome(RunStatus.FAILED, "gemini exited without a result, as it does when a signal reaches its process group")
    if code < 0:
        return Outcome(RunStatus.FAILED, f"gemini was killed by signal {-code} before it reported a result")

    detail = _detail(ev)
    kind = last_error_kind(ev.error_kinds) or (classify_error_text(detail) if detail else None)
    if kind is None and LIMIT_TEXT_RE.search(stderr):
        kind = "rate_limit"
    if kind is None and NETWORK_TEXT_RE.search(stderr):
        kind = "network"
    if kind in ("auth", "billing", "rate_limit", "network", "server"):
        return Outcome(RunStatus.FAILED, explain_error(kind, detail))
    suffix = f": {detail}" if detail else ""
    return Outcome(RunStatus.FAILED, f"gemini exited with {describe_exit(code)} without a result{suffix}")


def explain_error(kind: str | None, detail: str) -> str:
    """Return what went wrong and what to do about it, for an error kind and Gemini's own words."""
    quoted = _quote(detail)
    messages = {
        "auth": AUTH_MESSAGE,
        "billing": "gemini's Google account or project cannot pay for requests: check its billing",
        "rate_limit": "gemini hit a rate limit or ran out of quota: wait until it resets, then dispatch the request again",
        "network": "gemini could not reach the Gemini API: check the network connection",
        "server": "the Gemini API failed with a server error: dispatch the request again later",
    }
    if kind in messages:
        return messages[kind] + quoted
    return f"gemini reported an error: {_short(detail)}" if detail else "gemini reported an error without a message"


def stderr_error_message(stderr: str) -> str:
    """Return the message of the pretty-printed JSON error object at the end of stderr, or ''."""
    start = stderr.rfind("\n{")
    if start >= 0:
        block = stderr[start + 1 :]
    elif stderr.lstrip().startswith("{"):
        block = stderr
    else:
        return ""
    try:
        obj = json.loads(block)
    except ValueError:
        return ""
    error = obj.get("error") if isinstance(obj, dict) else None
    return str(error.get("message") or "") if isinstance(error, dict) else ""


def _detail(ev: Evidence) -> str:
    stderr = strip_ansi(ev.stderr_tail)
    message = stderr_error_message(stderr)
    if message:
        return first_line(message)
    if ev.errors:
        return first_line(ev.errors[-1])
    for line in reversed(stderr.splitlines()):
        clean = line.strip()
        if clean and not STDERR_NOISE_RE.match(clean) and clean not in ("{", "}"):
            return clean[:300]
    return ""


def _short(text: str) -> str:
    return first_line(text, 300)


def _quote(detail: str) -> str:
    return f" (gemini's message: {_short(detail)})" if detail else ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
