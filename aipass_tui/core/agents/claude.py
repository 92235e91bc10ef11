"""Adapter for Claude Code: ``claude -p PROMPT --output-format stream-json --verbose``.

The stream is NDJSON, one object per line. The event types follow the message parser of the
official Python SDK (claude-agent-sdk 0.2.x) and runs of Claude Code 2.1.197 and 2.1.332. Key
order differs between versions, so nothing here relies on it.
"""

from __future__ import annotations

import json
import re
import time
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
    last_nonempty_line,
    stop_or_lost_outcome,
)
from aipass_tui.core.models import Event, EventKind, RunStatus

EVENT_TYPES = frozenset(
    {
        "system",
        "assistant",
        "user",
        "result",
        "stream_event",
        "rate_limit_event",
        "control_request",
        "control_response",
        "control_cancel_request",
        "subagent_token_usage",
        "keep_alive",
    }
)
SILENT_TYPES = frozenset(
    {"stream_event", "control_request", "control_response", "control_cancel_request", "subagent_token_usage", "keep_alive"}
)
SUBAGENT_TOOLS = frozenset({"Task", "Agent"})
TASK_END_STATUSES = frozenset({"completed", "failed", "stopped", "killed", "cancelled"})
TOOL_RESULT_LIMIT = 8000
INPUT_VALUE_LIMIT = 2000

ASSISTANT_ERRORS = {
    "authentication_failed": "auth",
    "billing_error": "billing",
    "rate_limit": "rate_limit",
    "invalid_request": "invalid_request",
}
HTTP_ERRORS = {400: "invalid_request", 401: "auth", 402: "billing", 403: "auth", 429: "rate_limit"}
RESULT_SUBTYPES = {
    "error_max_turns": "max_turns",
    "error_max_budget_usd": "budget",
    "error_max_structured_output_retries": "structured_output",
}
# Command-line errors go to stderr as "error: ..." (commander) or "Error: ..." (the CLI's checks).
USAGE_ERROR_RE = re.compile(r"^(?:error|Error): ")
PLAIN_ERROR_RE = re.compile(r"not logged in|usage limit|limit reached|hit your limit|api error|invalid api key", re.IGNORECASE)


class ClaudeAdapter(Adapter):
    kind = "claude"
    executable = "claude"
    structured = True

    def build_argv(self, ctx: RunContext) -> list[str]:
        argv = [self.program(), "-p", guard_prompt(ctx.prompt), "--output-format", "stream-json", "--verbose"]
        if ctx.resume_session:
            argv += ["--resume", ctx.resume_session]
        elif ctx.session_id:
            argv += ["--session-id", ctx.session_id]
        argv += ["--permission-mode", self.config.permission_mode or "acceptEdits"]
        if self.config.model:
            argv += ["--model", self.config.model]
        return argv + list(self.config.args)

    def new_parser(self) -> Parser:
        return ClaudeParser()

    def judge(self, evidence: Evidence) -> Outcome:
        return judge_claude(evidence)


class ClaudeParser(JsonLineParser):
    """Turn Claude Code's stream-json lines into events."""

    def __init__(self) -> None:
        super().__init__()
        self._tool_names: dict[str, str] = {}
        self._subagents_started: set[str] = set()
        self._subagents_ended: set[str] = set()
        self._task_subagent: dict[str, str] = {}
        self._message_usage: dict[str, tuple[int, int]] = {}
        self._usage_sent: tuple[int, int] = (0, 0)
        self._rate_limited = False
        self._error_kind: str | None = None

    def is_event(self, obj: dict[str, Any]) -> bool:
        kind = obj.get("type")
        return isinstance(kind, str) and kind in EVENT_TYPES

    def parse_line(self, line: str) -> list[Event]:
        events = super().parse_line(line)
        return _with_plain_errors(events)

    def close(self) -> list[Event]:
        return _with_plain_errors(super().close())

    def parse_object(self, obj: dict[str, Any]) -> list[Event]:
        kind = str(obj.get("type"))
        if kind == "system":
            return self._system(obj)
        if kind == "assistant":
            return self._assistant(obj)
        if kind == "user":
            return self._user(obj)
        if kind == "result":
            return [self._result(obj)]
        if kind == "rate_limit_event":
            return self._rate_limit(obj)
        if kind in SILENT_TYPES:
            # stream_event carries token deltas that the complete assistant message repeats.
            return []
        return [Event(EventKind.STATUS, f"claude event {kind}", data={"type": kind})]

    # -- system -----------------------------------------------------------------------------

    def _system(self, obj: dict[str, Any]) -> list[Event]:
        subtype = str(obj.get("subtype") or "")
        if subtype == "init":
            model = obj.get("model")
            data = {
                "session_id": obj.get("session_id"),
                "model": model,
                "cwd": obj.get("cwd"),
                "permission_mode": obj.get("permissionMode"),
                "version": obj.get("claude_code_version"),
            }
            version = f" {data['version']}" if data["version"] else ""
            return [Event(EventKind.INIT, f"claude{version} started with model {model}", data=data)]
        if subtype == "api_retry":
            return [_retry_event(obj)]
        if subtype.startswith("task_"):
            return self._task(subtype, obj)
        if subtype == "status":
            status = obj.get("status")
            return [Event(EventKind.STATUS, str(status), data={"status": status})] if status else []
        if subtype == "compact_boundary":
            return [Event(EventKind.STATUS, "conversation compacted", data={"subtype": subtype})]
        if subtype.startswith("hook_"):
            name = obj.get("hook_name") or obj.get("hook_event") or obj.get("hook_event_name") or "hook"
            return [Event(EventKind.STATUS, f"{name} {subtype.removeprefix('hook_')}", data={"subtype": subtype})]
        return [Event(EventKind.STATUS, f"claude system event {subtype}", data={"subtype": subtype})]

    def _task(self, subtype: str, obj: dict[str, Any]) -> list[Event]:
        task_id = str(obj.get("task_id") or "")
        sub_id = str(obj.get("tool_use_id") or self._task_subagent.get(task_id) or task_id)
        if task_id:
            self._task_subagent[task_id] = sub_id
        description = str(obj.get("description") or "")
        if subtype == "task_started":
            return self._start_subagent(sub_id, description, str(obj.get("task_type") or ""), None)
        if subtype == "task_progress":
            tool = obj.get("last_tool_name")
            text = f"{description} · {tool}" if tool else description
            return [Event(EventKind.STATUS, text, sub_id, {"subtype": subtype, "usage": obj.get("usage")})]
        status = obj.get("status")
        if subtype == "task_updated":
            patch = obj.get("patch") if isinstance(obj.get("patch"), dict) else {}
            status = patch.get("status")
        if isinstance(status, str) and status in TASK_END_STATUSES:
            summary = str(obj.get("summary") or "")
            return self._end_subagent(sub_id, summary, status != "completed", None, status)
        return []

    # -- assistant --------------------------------------------------------------------------

    def _assistant(self, obj: dict[str, Any]) -> list[Event]:
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        parent = _parent(obj)
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": str(content or "")}]
        error = obj.get("error")
        if error:
            text = "\n".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict) and b.get("type") == "text")
            kind = _assistant_error_kind(str(error), text, obj.get("api_error"))
            if parent is None:
                self._error_kind = kind
            data = {"error_kind": kind, "error": error, "model": message.get("model")}
            return [Event(EventKind.ERROR, text.strip() or str(error), parent, data)]
        events: list[Event] = []
        for block in blocks:
            if isinstance(block, dict):
                events.extend(self._content_block(block, parent))
        if parent is None:
            events.extend(self._usage(message))
        return events

    def _content_block(self, block: dict[str, Any], parent: str | None) -> list[Event]:
        kind = block.get("type")
        if kind == "text":
            text = str(block.get("text") or "")
            return [Event(EventKind.TEXT, text, parent)] if text.strip() else []
        if kind == "thinking":
            text = str(block.get("thinking") or "")
            return [Event(EventKind.THINKING, text, parent)] if text.strip() else []
        if kind in ("tool_use", "server_tool_use"):
            return self._tool_use(block, parent)
        return []

    def _tool_use(self, block: dict[str, Any], parent: str | None) -> list[Event]:
        tool_id = str(block.get("id") or "")
        name = str(block.get("name") or "tool")
        tool_input = block.get("input") if isinstance(block.get("input"), dict) else {}
        self._tool_names[tool_id] = name
        data = {"tool": name, "input": _clip_input(tool_input), "id": tool_id}
        events = [Event(EventKind.TOOL_USE, describe_tool_use(name, tool_input), parent, data)]
        if name == "TodoWrite" and isinstance(tool_input.get("todos"), list):
            items = [_todo_item(t) for t in tool_input["todos"] if isinstance(t, dict)]
            events.append(Event(EventKind.TODO, f"{len(items)} todo items", parent, {"items": items}))
        if name in SUBAGENT_TOOLS and tool_id:
            description = str(tool_input.get("description") or tool_input.get("prompt") or "")[:300]
            events.extend(self._start_subagent(tool_id, description, str(tool_input.get("subagent_type") or ""), parent))
        return events

    def _usage(self, message: dict[str, Any]) -> list[Event]:
        usage = message.get("usage")
        message_id = message.get("id")
        if not isinstance(usage, dict) or not message_id or message.get("model") == "<synthetic>":
            return []
        self._message_usage[str(message_id)] = (_input_tokens(usage), _int(usage.get("output_tokens")))
        totals = (
            sum(u[0] for u in self._message_usage.values()),
            sum(u[1] for u in self._message_usage.values()),
        )
        if totals == self._usage_sent:
            return []
        self._usage_sent = totals
        data = {"input_tokens": totals[0], "output_tokens": totals[1], "total": True}
        return [Event(EventKind.USAGE, f"{totals[0]} tokens in, {totals[1]} out", data=data)]

    # -- user (tool results) ----------------------------------------------------------------

    def _user(self, obj: dict[str, Any]) -> list[Event]:
        message = obj.get("message") if isinstance(obj.get("message"), dict) else {}
        parent = _parent(obj)
        content = message.get("content")
        if isinstance(content, str):
            # A sub-agent's prompt, or a note such as "[Request interrupted by user]".
            return [Event(EventKind.STATUS, clip(content, 500), parent)] if content.strip() else []
        events: list[Event] = []
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_result":
                events.extend(self._tool_result(block, parent))
            elif block.get("type") == "text" and str(block.get("text") or "").strip():
                events.append(Event(EventKind.STATUS, clip(str(block["text"]), 500), parent))
        return events

    def _tool_result(self, block: dict[str, Any], parent: str | None) -> list[Event]:
        tool_use_id = str(block.get("tool_use_id") or "")
        is_error = bool(block.get("is_error"))
        text = tool_result_text(block.get("content"))
        data = {"tool_use_id": tool_use_id, "is_error": is_error, "tool": self._tool_names.get(tool_use_id)}
        if len(text) > TOOL_RESULT_LIMIT:
            data["size"] = len(text)
        events = [Event(EventKind.TOOL_RESULT, clip(text, TOOL_RESULT_LIMIT), parent, data)]
        if tool_use_id in self._subagents_started:
            events.extend(self._end_subagent(tool_use_id, text, is_error, parent, None))
        return events

    # -- sub-agents -------------------------------------------------------------------------

    def _start_subagent(self, sub_id: str, description: str, subagent_type: str, parent: str | None) -> list[Event]:
        if sub_id in self._subagents_started:
            return []
        self._subagents_started.add(sub_id)
        data = {"id": sub_id, "subagent_type": subagent_type, "description": description, "parent": parent}
        # Event.parent stays None so that RunSummary registers nested sub-agents too;
        # data["parent"] names the sub-agent that started this one.
        return [Event(EventKind.SUBAGENT_START, description, None, data)]

    def _end_subagent(self, sub_id: str, text: str, is_error: bool, parent: str | None, status: str | None) -> list[Event]:
        if sub_id not in self._subagents_started or sub_id in self._subagents_ended:
            return []
        self._subagents_ended.add(sub_id)
        data = {"id": sub_id, "is_error": is_error, "parent": parent, "status": status or ("failed" if is_error else "completed")}
        return [Event(EventKind.SUBAGENT_END, clip(text, 500), None, data)]

    # -- rate limits and the result -----------------------------------------------------------

    def _rate_limit(self, obj: dict[str, Any]) -> list[Event]:
        info = obj.get("rate_limit_info") if isinstance(obj.get("rate_limit_info"), dict) else {}
        status = info.get("status")
        limit = info.get("rateLimitType") or "usage"
        resets_at = info.get("resetsAt")
        data = {"status": status, "rate_limit_type": limit, "resets_at": resets_at, "utilization": info.get("utilization")}
        if status == "rejected":
            self._rate_limited = True
            when = _clock(resets_at)
            text = f"{limit} rate limit reached" + (f"; it resets at {when}" if when else "")
            return [Event(EventKind.RATE_LIMIT, text, data=data)]
        if status == "allowed_warning":
            used = info.get("utilization")
            share = f"{float(used) * 100:.0f}% of " if isinstance(used, (int, float)) else ""
            return [Event(EventKind.STATUS, f"{share}the {limit} rate limit used", data=data)]
        return []

    def _result(self, obj: dict[str, Any]) -> Event:
        is_error = bool(obj.get("is_error"))
        errors = [str(e) for e in obj.get("errors") or [] if e]
        text = str(obj.get("result") or "") or ("; ".join(errors) if is_error else "")
        usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
        data: dict[str, Any] = {
            "is_error": is_error,
            "subtype": obj.get("subtype"),
            "terminal_reason": obj.get("terminal_reason"),
            "api_error_status": obj.get("api_error_status"),
            "input_tokens": _input_tokens(usage),
            "output_tokens": _int(usage.get("output_tokens")),
            "cache_read_tokens": _int(usage.get("cache_read_input_tokens")),
            "cache_creation_tokens": _int(usage.get("cache_creation_input_tokens")),
            "cost_usd": _float(obj.get("total_cost_usd")),
            "num_turns": obj.get("num_turns"),
            "duration_ms": obj.get("duration_ms"),
            "session_id": obj.get("session_id"),
        }
        if is_error:
            data["error_kind"] = self._result_error_kind(obj, text)
        return Event(EventKind.RESULT, text, data=data)

    def _result_error_kind(self, obj: dict[str, Any], text: str) -> str:
        subtype_kind = RESULT_SUBTYPES.get(str(obj.get("subtype")))
        if subtype_kind:
            return subtype_kind
        if obj.get("terminal_reason") == "aborted_streaming":
            return "interrupted"
        status = obj.get("api_error_status")
        if isinstance(status, int):
            if status in HTTP_ERRORS:
                return HTTP_ERRORS[status]
            if status >= 500:
                return "server"
        if obj.get("api_error") == "connection_failed":
            return "network"
        if self._error_kind and self._error_kind != "unknown":
            return self._error_kind
        if self._rate_limited:
            return "rate_limit"
        return classify_error_text(text) or "unknown"


def describe_tool_use(name: str, tool_input: dict[str, Any]) -> str:
    """Return a one-line description of a tool call, such as ``Bash: ls -la``."""
    for key in ("command", "file_path", "path", "pattern", "url", "query", "description", "notebook_path"):
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            return f"{name}: {first_line(value, 200)}"
    if name == "TodoWrite":
        return f"{name}: {len(tool_input.get('todos') or [])} items"
    compact = json.dumps(tool_input, ensure_ascii=False)
    return f"{name}: {compact[:200]}" if tool_input else name


def tool_result_text(content: Any) -> str:
    """Return the text of a tool result's content (a string or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if block.get("type") == "text":
                    parts.append(str(block.get("text") or ""))
                else:
                    parts.append(f"[{block.get('type', 'content')}]")
            else:
                parts.append(str(block))
        return "\n".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def judge_claude(ev: Evidence) -> Outcome:
    """Decide a Claude run's status from its result, error events, exit code and output tails."""
    settled = stop_or_lost_outcome("claude", ev)
    if settled is not None:
        return _explain_stop(settled, ev)
    code = ev.exit_code
    assert code is not None

    # The result's is_error decides, because subtype is "success" even for failures.
    if ev.result_seen and ev.result_is_error is False:
        if code == 0:
            return Outcome(RunStatus.SUCCEEDED, "finished")
        return Outcome(RunStatus.SUCCEEDED, f"finished, but claude then exited with {describe_exit(code)}")
    detail = first_line(ev.result_text or (ev.errors[-1] if ev.errors else ""))
    kind = last_error_kind(ev.error_kinds)
    if ev.result_seen:
        return Outcome(RunStatus.FAILED, explain_error(kind, detail))

    # No result: a command-line error on stderr, an error event, or plain text.
    usage_line = find_line(ev.stderr_tail, USAGE_ERROR_RE)
    if usage_line and not ev.errors:
        return Outcome(RunStatus.FAILED, f"claude rejected its command line: {usage_line} (check the agent's args)")
    if ev.errors:
        return Outcome(RunStatus.FAILED, explain_error(kind or classify_error_text(detail), detail))
    plain = _plain_error_line(ev.stdout_tail) or _plain_error_line(ev.stderr_tail)
    if plain:
        return Outcome(RunStatus.FAILED, explain_error(classify_error_text(plain), plain))

    if code < 0:
        return Outcome(RunStatus.FAILED, f"claude was killed by signal {-code} before it reported a result")
    tail = last_nonempty_line(ev.stderr_tail)
    suffix = f": {tail}" if tail else ""
    return Outcome(RunStatus.FAILED, f"claude exited with {describe_exit(code)} without reporting a result{suffix}")


def _plain_error_line(text: str) -> str:
    """Return the last line that is not JSON and reports a known failure, or ''."""
    for line in reversed(text.splitlines()):
        clean = line.strip()
        if clean and not clean.startswith(("{", "[")) and PLAIN_ERROR_RE.search(clean):
            return clean[:300]
    return ""


def explain_error(kind: str | None, detail: str) -> str:
    """Return what went wrong and what to do about it, for an error kind and Claude's own words."""
    quoted = f" (claude's message: {detail})" if detail else ""
    if kind == "auth":
        if not detail or "not logged in" in detail.lower():
            return f"claude is not logged in: run `claude` once in a terminal to log in, or set ANTHROPIC_API_KEY in the agent's env{quoted}"
        return f"claude could not authenticate: log in again with `claude` in a terminal, or check ANTHROPIC_API_KEY{quoted}"
    messages = {
        "billing": "claude's account cannot pay for requests: check the plan or the credit balance",
        "rate_limit": "claude hit a rate or usage limit: wait until the limit resets, then dispatch the request again",
        "network": "claude could not reach the Anthropic API: check the network connection and proxy settings",
        "server": "the Anthropic API failed with a server error: dispatch the request again later",
        "max_turns": "claude stopped at its turn limit (--max-turns): raise it in the agent's args or split the request",
        "budget": "claude stopped at its budget limit (--max-budget-usd): raise it in the agent's args",
        "structured_output": "claude could not produce the requested structured output",
        "interrupted": "claude was interrupted before it finished",
        "invalid_request": "the Anthropic API rejected the request as invalid",
    }
    if kind in messages:
        return messages[kind] + quoted
    return f"claude reported an error: {detail}" if detail else "claude reported an error without a message"


def _explain_stop(outcome: Outcome, ev: Evidence) -> Outcome:
    if outcome.status not in (RunStatus.TIMED_OUT, RunStatus.STOPPED):
        return outcome
    retrying = '"api_retry"' in ev.stdout_tail or "network" in ev.error_kinds
    if retrying:
        return Outcome(outcome.status, f"{outcome.message} while claude was retrying the API: check the network connection")
    return outcome


def _with_plain_errors(events: list[Event]) -> list[Event]:
    """Add an error event after each plain-text line that reports a known failure."""
    out: list[Event] = []
    for event in events:
        out.append(event)
        text = event.text
        if event.kind == EventKind.RAW and not text.startswith(("{", "[")) and PLAIN_ERROR_RE.search(text):
            out.append(Event(EventKind.ERROR, text, data={"error_kind": classify_error_text(text) or "unknown"}))
    return out


def _assistant_error_kind(error: str, text: str, api_error: Any) -> str:
    if error in ASSISTANT_ERRORS:
        return ASSISTANT_ERRORS[error]
    guessed = classify_error_text(text)
    if error == "server_error":
        return "network" if api_error == "connection_failed" or guessed == "network" else "server"
    return guessed or "unknown"


def _retry_event(obj: dict[str, Any]) -> Event:
    attempt = obj.get("attempt")
    max_retries = obj.get("max_retries")
    delay_ms = _float(obj.get("retry_delay_ms"))
    status = obj.get("error_status")
    text = f"API retry {attempt}/{max_retries} in {delay_ms / 1000:.1f} s"
    if status:
        text += f" (HTTP {status})"
    data = {
        "attempt": attempt,
        "max_retries": max_retries,
        "retry_delay_ms": delay_ms,
        "error_status": status,
        "error": obj.get("error"),
    }
    return Event(EventKind.RETRY, text, data=data)


def _parent(obj: dict[str, Any]) -> str | None:
    parent = obj.get("parent_tool_use_id")
    return str(parent) if parent else None


def _todo_item(todo: dict[str, Any]) -> dict[str, Any]:
    status = todo.get("status")
    return {
        "text": str(todo.get("content") or todo.get("activeForm") or ""),
        "status": status if status in ("pending", "in_progress", "completed") else "pending",
    }


def _clip_input(tool_input: dict[str, Any]) -> dict[str, Any]:
    return {k: clip(v, INPUT_VALUE_LIMIT) if isinstance(v, str) else v for k, v in tool_input.items()}


def _input_tokens(usage: dict[str, Any]) -> int:
    """Count all input tokens: uncached, written to the cache and read from it."""
    return (
        _int(usage.get("input_tokens"))
        + _int(usage.get("cache_creation_input_tokens"))
        + _int(usage.get("cache_read_input_tokens"))
    )


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _clock(epoch: Any) -> str:
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool) or epoch <= 0:
        return ""
    try:
        return time.strftime("%H:%M", time.localtime(epoch))
    except (OverflowError, OSError, ValueError):
        return ""
