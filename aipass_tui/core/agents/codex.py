"""Adapter for the OpenAI Codex CLI: ``codex exec --json PROMPT``.

The JSONL event types follow ``codex-rs/exec/src/exec_events.rs``. In codex-cli 0.171.0 a
top-level ``error`` event that starts with ``Reconnecting...`` is a progress notice, and an
``item`` of type ``error`` is a warning. Only ``turn.failed`` or the process exiting ends a turn.
Offline, codex reconnects for ever, so the orchestrator's timeout is what ends such a run.
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

EVENT_TYPES = frozenset(
    {
        "thread.started",
        "turn.started",
        "turn.completed",
        "turn.failed",
        "item.started",
        "item.updated",
        "item.completed",
        "item.plan.delta",
        "error",
        "request_user_input",
    }
)
SANDBOX_OPTIONS = ("--sandbox", "-s", "--dangerously-bypass-approvals-and-sandbox", "--yolo", "--full-auto")
RECONNECT_RE = re.compile(r"^Reconnecting\.\.\.\s*(?:(\d+)/(\d+))?")
TOOL_RESULT_LIMIT = 8000
NOT_A_REPO_RE = re.compile(r"Not inside a trusted directory|--skip-git-repo-check")
USAGE_ERROR_RE = re.compile(r"^error: ")
LIMIT_TEXT_RE = re.compile(r"usage limit|rate limit|hit your limit|quota", re.IGNORECASE)
# stderr lines that codex prints on every run, failed or not.
STDERR_NOISE_RE = re.compile(
    r"^(?:WARNING: proceeding|Reading additional input from stdin|\d{4}-\d\d-\d\dT\S+ +(?:INFO|WARN|DEBUG|TRACE)\b)"
)


class CodexAdapter(Adapter):
    kind = "codex"
    executable = "codex"
    structured = True

    def build_argv(self, ctx: RunContext) -> list[str]:
        argv = [self.program(), "exec", "--json"]
        if self.config.model:
            argv += ["-m", self.config.model]
        if not has_sandbox_option(self.config.args):
            argv += ["--sandbox", "workspace-write"]
        argv += list(self.config.args)
        if ctx.resume_session:
            argv += ["resume", ctx.resume_session]
        argv.append(guard_prompt(ctx.prompt))
        return argv

    def new_parser(self) -> Parser:
        return CodexParser(self.config.price_per_mtok)

    def judge(self, evidence: Evidence) -> Outcome:
        return judge_codex(evidence)


def has_sandbox_option(args: list[str]) -> bool:
    """Tell whether the agent's own args already choose a sandbox mode."""
    for arg in args:
        if arg in SANDBOX_OPTIONS or arg.startswith(("--sandbox=", "-s=")) or "sandbox_mode=" in arg:
            return True
    return False


class CodexParser(JsonLineParser):
    """Turn ``codex exec --json`` lines into events."""

    def __init__(self, price_per_mtok: tuple[float, float] | None = None) -> None:
        super().__init__()
        self._price = price_per_mtok
        self._last_message = ""
        self._started_tools: set[str] = set()
        self._todo: list[dict[str, Any]] | None = None

    def is_event(self, obj: dict[str, Any]) -> bool:
        kind = obj.get("type")
        if not isinstance(kind, str):
            return False
        # An error item ({"id", "type": "error", "message"}) nested in item.* is not an event.
        return kind in EVENT_TYPES and not (kind == "error" and "id" in obj)

    def parse_object(self, obj: dict[str, Any]) -> list[Event]:
        kind = str(obj.get("type") or "")
        if kind == "thread.started":
            thread = obj.get("thread_id")
            return [Event(EventKind.INIT, f"codex thread {thread} started", data={"session_id": thread})]
        if kind == "turn.started":
            return [Event(EventKind.STATUS, "turn started")]
        if kind.startswith("item.") and isinstance(obj.get("item"), dict):
            return self._item(kind.removeprefix("item."), obj["item"])
        if kind == "error":
            return [_stream_error(str(obj.get("message") or ""))]
        if kind == "turn.completed":
            return self._turn_completed(obj)
        if kind == "turn.failed":
            return _turn_failed(obj)
        if kind == "item.plan.delta":
            return []
        if kind == "request_user_input":
            questions = obj.get("questions") or []
            text = "; ".join(str(q.get("question", q)) if isinstance(q, dict) else str(q) for q in questions)
            return [Event(EventKind.STATUS, f"codex asked for input: {text}", data={"type": kind})]
        return [Event(EventKind.STATUS, f"codex event {kind}", data={"type": kind})]

    def _item(self, phase: str, item: dict[str, Any]) -> list[Event]:
        kind = item.get("type")
        item_id = str(item.get("id") or "")
        if kind == "todo_list":
            return self._todo_list(item)
        if kind in ("command_execution", "mcp_tool_call", "collab_tool_call", "web_search"):
            return self._tool(phase, kind, item_id, item)
        if phase != "completed":
            return []
        if kind == "agent_message":
            text = str(item.get("text") or "")
            self._last_message = text or self._last_message
            return [Event(EventKind.TEXT, text)] if text.strip() else []
        if kind == "reasoning":
            text = str(item.get("text") or "")
            return [Event(EventKind.THINKING, text)] if text.strip() else []
        if kind == "plan":
            return [Event(EventKind.STATUS, f"plan: {item.get('text') or ''}", data={"type": kind})]
        if kind == "file_change":
            return [_file_change(item_id, item)]
        if kind == "error":
            message = str(item.get("message") or "")
            data = {"error_kind": classify_error_text(message) or "unknown", "severity": "warning"}
            return [Event(EventKind.ERROR, message, data=data)]
        return [Event(EventKind.STATUS, f"codex item {kind}", data={"type": kind})]

    def _tool(self, phase: str, kind: str, item_id: str, item: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if item_id not in self._started_tools:
            self._started_tools.add(item_id)
            events.append(_tool_use(kind, item_id, item))
        if phase == "completed":
            events.append(_tool_result(kind, item_id, item))
        return events

    def _todo_list(self, item: dict[str, Any]) -> list[Event]:
        items = [
            {"text": str(i.get("text") or ""), "status": "completed" if i.get("completed") else "pending"}
            for i in item.get("items") or []
            if isinstance(i, dict)
        ]
        if items == self._todo:
            return []
        self._todo = items
        done = sum(1 for i in items if i["status"] == "completed")
        return [Event(EventKind.TODO, f"{done}/{len(items)} todo items done", data={"items": items})]

    def _turn_completed(self, obj: dict[str, Any]) -> list[Event]:
        usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
        input_tokens = _int(usage.get("input_tokens"))
        output_tokens = _int(usage.get("output_tokens"))
        data: dict[str, Any] = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cached_input_tokens": _int(usage.get("cached_input_tokens")),
            "total": True,
        }
        if self._price is not None:
            # An estimate: codex reports no cost, and cached input is priced like other input.
            data["cost_usd"] = (input_tokens * self._price[0] + output_tokens * self._price[1]) / 1_000_000
            data["cost_estimated"] = True
        usage_event = Event(EventKind.USAGE, f"{input_tokens} tokens in, {output_tokens} out", data=data)
        result = Event(EventKind.RESULT, self._last_message, data={"is_error": False})
        return [usage_event, result]


def _stream_error(message: str) -> Event:
    match = RECONNECT_RE.match(message)
    kind = classify_error_text(message) or "unknown"
    if match:
        data = {
            "attempt": int(match.group(1)) if match.group(1) else None,
            "max_retries": int(match.group(2)) if match.group(2) else None,
            "error_kind": kind,
        }
        return Event(EventKind.RETRY, message, data=data)
    return Event(EventKind.ERROR, message, data={"error_kind": kind})


def _turn_failed(obj: dict[str, Any]) -> list[Event]:
    error = obj.get("error") if isinstance(obj.get("error"), dict) else {}
    message = str(error.get("message") or "the turn failed")
    kind = classify_error_text(message) or "unknown"
    return [
        Event(EventKind.ERROR, message, data={"error_kind": kind}),
        Event(EventKind.RESULT, message, data={"is_error": True, "error_kind": kind}),
    ]


def _tool_use(kind: str, item_id: str, item: dict[str, Any]) -> Event:
    if kind == "command_execution":
        command = str(item.get("command") or "")
        return Event(EventKind.TOOL_USE, f"shell: {first_line(command, 200)}", data={"tool": "shell", "input": {"command": command}, "id": item_id})
    if kind == "mcp_tool_call":
        tool = f"{item.get('server') or 'mcp'}.{item.get('tool') or 'tool'}"
        arguments = item.get("arguments")
        preview = json.dumps(arguments, ensure_ascii=False)[:200] if arguments else ""
        text = f"{tool}: {preview}" if preview else tool
        return Event(EventKind.TOOL_USE, text, data={"tool": tool, "input": arguments, "id": item_id})
    if kind == "web_search":
        query = str(item.get("query") or "")
        return Event(EventKind.TOOL_USE, f"web_search: {query}", data={"tool": "web_search", "input": {"query": query}, "id": item_id})
    fields = {k: v for k, v in item.items() if k not in ("id", "type", "status")}
    return Event(EventKind.TOOL_USE, kind, data={"tool": kind, "input": fields, "id": item_id})


def _tool_result(kind: str, item_id: str, item: dict[str, Any]) -> Event:
    status = item.get("status")
    data: dict[str, Any] = {"tool_use_id": item_id, "status": status, "tool": "shell" if kind == "command_execution" else kind}
    if kind == "command_execution":
        exit_code = item.get("exit_code")
        text = str(item.get("aggregated_output") or "")
        data["exit_code"] = exit_code
        data["is_error"] = status in ("failed", "declined") or (isinstance(exit_code, int) and exit_code != 0)
    elif kind == "mcp_tool_call":
        error = item.get("error") if isinstance(item.get("error"), dict) else None
        text = str(error.get("message") or "") if error else _mcp_text(item.get("result"))
        data["is_error"] = bool(error) or status == "failed"
    else:
        text = str(item.get("query") or item.get("text") or "")
        data["is_error"] = status == "failed"
    if len(text) > TOOL_RESULT_LIMIT:
        data["size"] = len(text)
    return Event(EventKind.TOOL_RESULT, clip(text, TOOL_RESULT_LIMIT), data=data)


def _file_change(item_id: str, item: dict[str, Any]) -> Event:
    changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
    paths = [str(c.get("path") or "") for c in changes]
    text = "\n".join(f"{c.get('kind', 'update')} {c.get('path', '')}" for c in changes)
    data = {
        "tool_use_id": item_id,
        "tool": "file_change",
        "paths": paths,
        "changes": changes,
        "status": item.get("status"),
        "is_error": item.get("status") == "failed",
    }
    return Event(EventKind.TOOL_RESULT, text, data=data)


def _mcp_text(result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    parts = [str(c.get("text") or "") for c in result.get("content") or [] if isinstance(c, dict) and c.get("type") == "text"]
    if parts:
        return "\n".join(parts)
    structured = result.get("structured_content")
    return json.dumps(structured, ensure_ascii=False) if structured is not None else ""


def judge_codex(ev: Evidence) -> Outcome:
    """Decide a Codex run's status from its turn events, exit code and stderr."""
    settled = stop_or_lost_outcome("codex", ev)
    if settled is not None:
        reconnecting = "Reconnecting..." in ev.stdout_tail or "network" in ev.error_kinds
        if reconnecting and settled.status in (RunStatus.TIMED_OUT, RunStatus.STOPPED):
            return Outcome(settled.status, f"{settled.message} while codex was reconnecting to the API: check the network connection")
        return settled
    code = ev.exit_code
    assert code is not None

    # A finished turn is a success even when codex exits 1 because it saw warnings on the way.
    if ev.result_seen and ev.result_is_error is False:
        if code == 0:
            return Outcome(RunStatus.SUCCEEDED, "finished")
        warning = f" after reporting: {first_line(ev.errors[-1])}" if ev.errors else ""
        return Outcome(RunStatus.SUCCEEDED, f"finished, but codex exited with {describe_exit(code)}{warning}")
    if ev.result_seen:
        detail = first_line(ev.result_text or (ev.errors[-1] if ev.errors else ""))
        kind = last_error_kind(ev.error_kinds) or classify_error_text(detail)
        return Outcome(RunStatus.FAILED, explain_error(kind, detail))

    # No turn result: start-up failures print plain text on stderr.
    if NOT_A_REPO_RE.search(ev.stderr_tail):
        return Outcome(
            RunStatus.FAILED,
            'codex refuses to run outside a git repository: run the agent in a git repository, or add "--skip-git-repo-check" to its args',
        )
    usage_line = find_line(ev.stderr_tail, USAGE_ERROR_RE)
    if usage_line or code == 2:
        line = usage_line or stderr_detail(ev.stderr_tail) or f"exit code {code}"
        return Outcome(RunStatus.FAILED, f"codex rejected its command line: {line} (check the agent's args)")
    limit_line = find_line(ev.stderr_tail, LIMIT_TEXT_RE)
    if limit_line:
        return Outcome(RunStatus.FAILED, explain_error(classify_error_text(limit_line) or "rate_limit", limit_line))

    hard_errors = [e for e in ev.errors if not RECONNECT_RE.match(e)]
    if hard_errors and code != 0:
        detail = first_line(hard_errors[-1])
        return Outcome(RunStatus.FAILED, explain_error(last_error_kind(ev.error_kinds) or classify_error_text(detail), detail))
    if code < 0:
        return Outcome(RunStatus.FAILED, f"codex was killed by signal {-code} before it finished its turn")
    detail = stderr_detail(ev.stderr_tail)
    suffix = f": {detail}" if detail else ""
    return Outcome(RunStatus.FAILED, f"codex exited with {describe_exit(code)} before it finished its turn{suffix}")


def explain_error(kind: str | None, detail: str) -> str:
    """Return what went wrong and what to do about it, for an error kind and Codex's own words."""
    quoted = f" (codex's message: {detail})" if detail else ""
    messages = {
        "auth": "codex is not logged in or its API key was rejected: run `codex login` in a terminal, or set OPENAI_API_KEY in the agent's env",
        "billing": "codex's OpenAI account has no quota left: check the plan and billing details",
        "rate_limit": "codex hit a rate or usage limit: wait until the limit resets, then dispatch the request again",
        "network": "codex could not reach the OpenAI API: check the network connection",
        "server": "the OpenAI API failed with a server error: dispatch the request again later",
    }
    if kind in messages:
        return messages[kind] + quoted
    return f"codex reported an error: {detail}" if detail else "codex reported an error without a message"


def stderr_detail(stderr: str) -> str:
    """Return the last stderr line that is not one of the notices codex prints on every run."""
    for line in reversed(stderr.splitlines()):
        clean = strip_ansi(line).strip()
        if clean and not STDERR_NOISE_RE.match(clean):
            return clean[:300]
    return ""


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
