#!/usr/bin/env python3
"""Fake coding-agent CLIs for tests: ``fake_agent.py --flavor FLAVOR [the CLI's own args...]``.

Each flavour accepts the argv that aipass-tui's adapter builds for the real CLI and prints that
CLI's real output format (claude stream-json, codex exec --json, gemini stream-json, aider and
ollama plain text, and ``text`` for a plain command). The output shapes and failure texts are
copied from runs of claude 2.1.332, codex-cli 0.171.0, gemini-cli 0.61.0 and aider 0.86.2.

The scenario comes from ``FAKE_AGENT_SCENARIO`` (default ``ok``). Tokens in the prompt such as
``scenario=rate_limit lines=20 rate=50 seconds=3 exit=1`` override it, and every knob can also be
set as ``FAKE_AGENT_<KNOB>``. README.md beside this file lists the scenarios and knobs.

Only the standard library is imported, so the fake starts in a few tens of milliseconds.
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import sys
import time
import uuid
from typing import Any

FLAVORS = ("claude", "codex", "gemini", "aider", "ollama", "text")
KNOBS = ("scenario", "lines", "rate", "seconds", "exit", "size", "subagents", "touch", "record", "sleep", "cpu")
KNOB_RE = re.compile(r"(?<!\S)(" + "|".join(KNOBS) + r")=(\S+)")
SCENARIOS = (
    "ok",
    "auth_fail",
    "rate_limit",
    "retry_storm",
    "long_line",
    "crash",
    "stdin_wait",
    "login_wait",
    "fork_setsid",
    "slow",
    "interleave",
    "no_newline",
    "utf8_split",
    "huge_json",
    "exit0_fail",
    "success_exit1",
    "usage_limit_text",
    "untrusted",
    "no_server",
    "no_model",
)
FOREVER = 365 * 24 * 3600.0


class UsageError(Exception):
    """The fake CLI's argv is invalid. ``code`` is the exit code that the real CLI uses."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- output ------------------------------------------------------------------------------------


def write_bytes(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` at once (each call reaches the reader as one flush)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def out(text: str | bytes, end: str = "\n") -> None:
    data = text if isinstance(text, bytes) else text.encode("utf-8")
    write_bytes(1, data + end.encode())


def err(text: str, end: str = "\n") -> None:
    write_bytes(2, (text + end).encode("utf-8"))


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def burn_cpu(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    value = 0
    while time.monotonic() < deadline:
        for i in range(10_000):
            value ^= i * i
    if value == -1:  # keeps the loop from being optimised away
        print(value)


def wait_forever() -> None:
    while True:
        time.sleep(3600)


def wrap(text: str, width: int) -> list[str]:
    """Wrap like Aider on a non-terminal: at ``width`` columns, each cut line keeps its trailing space."""
    if width <= 0 or len(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line += word + " "
    lines.append(line.rstrip(" "))
    return lines


def big_text(size: int) -> str:
    """Return about ``size`` characters of text that looks like a source file."""
    line = "    value = compute(value, {index}) # a long line of a big file that an agent read\n"
    parts: list[str] = []
    total = 0
    index = 0
    while total < size:
        piece = line.format(index=index)
        parts.append(piece)
        total += len(piece)
        index += 1
    return "".join(parts)[:size]


# -- argv of each vendor CLI -------------------------------------------------------------------


def parse_options(
    args: list[str], flags: set[str], values: set[str], variadic: set[str] = frozenset()
) -> tuple[dict[str, Any], list[str], str | None]:
    """Split argv into options and positionals, and return the first unknown option too."""
    options: dict[str, Any] = {}
    positionals: list[str] = []
    unknown: str | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positionals.extend(args[i + 1 :])
            break
        if arg.startswith("-") and len(arg) > 1:
            name, eq, inline = arg.partition("=")
            if name in flags and not eq:
                options[name] = True
            elif name in values:
                if eq:
                    options[name] = inline
                elif i + 1 < len(args):
                    i += 1
                    options[name] = args[i]
                else:
                    raise UsageError(f"option '{name}' needs a value", 1)
            elif name in variadic:
                collected = [inline] if eq else []
                while i + 1 < len(args) and not args[i + 1].startswith("-"):
                    i += 1
                    collected.append(args[i])
                options[name] = collected
            elif unknown is None:
                unknown = name
        else:
            positionals.append(arg)
        i += 1
    return options, positionals, unknown


def parse_claude(args: list[str]) -> dict[str, Any]:
    flags = {"-p", "--print", "--verbose", "--include-partial-messages", "-c", "--continue", "--fork-session",
             "--no-session-persistence", "--strict-mcp-config", "--bare", "--dangerously-skip-permissions", "-d", "--debug"}
    values = {"--output-format", "--input-format", "--permission-mode", "--model", "--max-turns", "--max-budget-usd",
              "--session-id", "--resume", "-r", "--append-system-prompt", "--system-prompt", "--mcp-config",
              "--setting-sources", "--fallback-model", "--settings", "--agents"}
    variadic = {"--allowedTools", "--allowed-tools", "--disallowedTools", "--disallowed-tools", "--add-dir"}
    options, positionals, unknown = parse_options(args, flags, values, variadic)
    if unknown:
        raise UsageError(f"error: unknown option '{unknown}'", 1)

    output = options.get("--output-format", "text")
    if output not in ("text", "json", "stream-json"):
        raise UsageError(
            f"error: option '--output-format <format>' argument '{output}' is invalid. Allowed choices are text, json, stream-json.", 1
        )
    mode = options.get("--permission-mode", "default")
    modes = ("acceptEdits", "auto", "bypassPermissions", "manual", "dontAsk", "plan", "default")
    if mode not in modes:
        raise UsageError(
            f"error: option '--permission-mode <mode>' argument '{mode}' is invalid. "
            "Allowed choices are acceptEdits, auto, bypassPermissions, manual, dontAsk, plan.", 1
        )

    printing = options.get("-p") or options.get("--print")
    if printing and output == "stream-json" and not options.get("--verbose"):
        raise UsageError("Error: When using --print, --output-format=stream-json requires --verbose", 1)
    if not positionals:
        raise UsageError("Error: Input must be provided either through stdin or as a prompt argument when using --print", 1)
    return {
        "prompt": " ".join(positionals),
        "output": output,
        "model": options.get("--model"),
        "session_id": options.get("--resume") or options.get("-r") or options.get("--session-id"),
        "permission_mode": mode,
    }


CODEX_USAGE = (
    "error: unexpected argument '{arg}' found\n\n"
    "  tip: to pass '{arg}' as a value, use '-- {arg}'\n\n"
    "Usage: codex exec [OPTIONS] [PROMPT]\n"
    "       codex exec [OPTIONS] <COMMAND> [ARGS]\n\n"
    "For more information, try '--help'."
)


def parse_codex(args: list[str]) -> dict[str, Any]:
    if not args or args[0] != "exec":
        raise UsageError("error: this fake codex only implements `codex exec`", 2)
    flags = {"--json", "--skip-git-repo-check", "--ephemeral", "--full-auto", "--oss", "--yolo",
             "--dangerously-bypass-approvals-and-sandbox", "--last"}
    values = {"-m", "--model", "-s", "--sandbox", "-C", "--cd", "-c", "--config", "-o", "--output-last-message",
              "--output-schema", "-p", "--profile", "--color", "-i", "--image", "--local-provider"}
    options, positionals, unknown = parse_options(args[1:], flags, values)
    if unknown:
        raise UsageError(CODEX_USAGE.format(arg=unknown), 2)
    sandbox = options.get("-s") or options.get("--sandbox")
    if sandbox and sandbox not in ("read-only", "workspace-write", "danger-full-access"):
        raise UsageError(
            f"error: invalid value '{sandbox}' for '--sandbox <SANDBOX_MODE>'\n"
            "  [possible values: read-only, workspace-write, danger-full-access]\n\nFor more information, try '--help'.",
            2,
        )
    session = None
    if positionals and positionals[0] == "resume":
        positionals = positionals[1:]
        if positionals:
            session = positionals.pop(0)
    return {
        "prompt": " ".join(positionals),
        "json": bool(options.get("--json")),
        "model": options.get("-m") or options.get("--model"),
        "skip_git_check": bool(options.get("--skip-git-repo-check")),
        "sandbox": sandbox or "read-only",
        "session_id": session,
    }


def parse_gemini(args: list[str]) -> dict[str, Any]:
    flags = {"-y", "--yolo", "--skip-trust", "-d", "--debug", "-s", "--sandbox", "--screen-reader", "--experimental-acp"}
    values = {"-p", "--prompt", "-o", "--output-format", "-m", "--model", "--approval-mode", "-r", "--resume",
              "--include-directories", "--allowed-tools", "--allowed-mcp-server-names", "-e", "--extensions"}
    options, positionals, unknown = parse_options(args, flags, values)
    if unknown:
        raise UsageError(f"Unknown argument: {unknown.lstrip('-')}\nUsage: gemini [options] [command]", 1)
    output = options.get("-o") or options.get("--output-format") or "text"
    if output not in ("text", "json", "stream-json"):
        raise UsageError(
            f'Invalid values:\n  Argument: output-format, Given: "{output}", Choices: "text", "json", "stream-json"\n'
            "Usage: gemini [options] [command]", 1
        )
    prompt = options.get("-p") or options.get("--prompt") or " ".join(positionals)
    return {
        "prompt": prompt,
        "output": output,
        "model": options.get("-m") or options.get("--model"),
        "skip_trust": bool(options.get("--skip-trust")) or os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") == "true",
        "session_id": options.get("-r") or options.get("--resume"),
    }


AIDER_FLAGS = {
    "--yes-always", "--yes", "--no-pretty", "--pretty", "--no-stream", "--stream", "--no-fancy-input", "--fancy-input",
    "--no-check-update", "--check-update", "--no-show-release-notes", "--show-release-notes", "--analytics-disable",
    "--no-gitignore", "--gitignore", "--no-auto-commits", "--auto-commits", "--no-dirty-commits", "--dirty-commits",
    "--auto-test", "--no-auto-test", "--architect", "--no-git", "--dry-run", "--no-show-model-warnings", "--subtree-only",
    "-v", "--verbose", "--lint", "--no-auto-lint", "--auto-lint", "--no-suggest-shell-commands", "--no-detect-urls",
}
AIDER_VALUES = {
    "--message", "-m", "--msg", "--message-file", "-f", "--model", "--test-cmd", "--openai-api-key", "--anthropic-api-key",
    "--api-key", "--edit-format", "--weak-model", "--editor-model", "--read", "--file", "--map-tokens", "--encoding",
    "--env-file", "-c", "--config", "--lint-cmd", "--timeout", "--openai-api-base", "--chat-language", "--commit-prompt",
}


def parse_aider(args: list[str]) -> dict[str, Any]:
    options, files, unknown = parse_options(args, AIDER_FLAGS, AIDER_VALUES)
    if unknown:
        raise UsageError(
            "usage: aider [-h] [--model MODEL] [--openai-api-key OPENAI_API_KEY]\n"
            "             [--anthropic-api-key ANTHROPIC_API_KEY]\n"
            f"aider: error: unrecognized arguments: {unknown}", 2
        )
    message = options.get("--message") or options.get("-m") or options.get("--msg")
    if message is None and options.get("--message-file"):
        try:
            with open(options["--message-file"], encoding="utf-8") as handle:
                message = handle.read()
        except OSError as exc:
            raise UsageError(f"Error reading message file: {exc}", 1) from exc
    return {"prompt": message or "", "model": options.get("--model"), "files": files}


def parse_ollama(args: list[str]) -> dict[str, Any]:
    if not args or args[0] != "run":
        raise UsageError("Error: this fake ollama only implements `ollama run`", 1)
    flags = {"--verbose", "--nowordwrap", "--insecure", "--hidethinking"}
    values = {"--format", "--keepalive", "--think"}
    options, positionals, unknown = parse_options(args[1:], flags, values)
    if unknown:
        raise UsageError(f"Error: unknown flag: {unknown}", 1)
    if not positionals:
        raise UsageError("Error: requires at least 1 arg(s), only received 0", 1)
    return {"model": positionals[0], "prompt": " ".join(positionals[1:])}


PARSERS = {
    "claude": parse_claude,
    "codex": parse_codex,
    "gemini": parse_gemini,
    "aider": parse_aider,
    "ollama": parse_ollama,
    "text": lambda args: {"prompt": " ".join(args)},
}


# -- knobs -------------------------------------------------------------------------------------


class Knobs:
    """Scenario settings from ``FAKE_AGENT_*`` variables, overridden by ``key=value`` prompt tokens."""

    def __init__(self, prompt: str) -> None:
        values = {k: os.environ[f"FAKE_AGENT_{k.upper()}"] for k in KNOBS if f"FAKE_AGENT_{k.upper()}" in os.environ}
        values.update({m.group(1): m.group(2) for m in KNOB_RE.finditer(prompt)})
        self.values = values
        self.scenario = values.get("scenario", "ok")
        if self.scenario not in SCENARIOS:
            raise UsageError(f"fake_agent: unknown scenario {self.scenario!r}; use one of: {', '.join(SCENARIOS)}", 2)

    def number(self, key: str, default: float) -> float:
        raw = self.values.get(key)
        if raw is None:
            return default
        try:
            return float(raw)
        except ValueError:
            raise UsageError(f"fake_agent: invalid {key}={raw!r}: use a number", 2) from None

    def integer(self, key: str, default: int | None) -> int | None:
        if self.values.get(key) is None:
            return default
        return int(self.number(key, 0))

    def text(self, key: str) -> str | None:
        return self.values.get(key)


# -- the flavours ------------------------------------------------------------------------------


class Speaker:
    """Print one agent's events in its vendor's format; subclasses implement the format."""

    structured = True

    def __init__(self, cli: dict[str, Any], knobs: Knobs) -> None:
        self.cli = cli
        self.knobs = knobs
        self.prompt = cli.get("prompt", "")
        self.session_id = cli.get("session_id") or str(uuid.uuid4())
        self.model = cli.get("model")
        self.started = time.time()
        self.counter = 0
        self.texts: list[str] = []
        self.last_end = "\n"

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:04d}{uuid.uuid4().hex[:12]}"

    def line(self, obj: dict[str, Any] | str, end: str = "\n") -> None:
        out(obj if isinstance(obj, str) else dumps(obj), end)

    # The plain-text flavours print no session header, thinking, todo list or sub-agents.
    def start(self) -> None:
        return None

    def think(self, text: str) -> None:
        return None

    def todos(self, items: list[tuple[str, str]]) -> None:
        return None

    def subagent(self, index: int) -> None:
        self.say(f"sub-agent {index} finished")

    def say(self, text: str) -> None:
        raise NotImplementedError

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False) -> None:
        raise NotImplementedError

    def finish(self, final: str, end: str = "\n") -> None:
        raise NotImplementedError

    def auth_fail(self) -> int:
        raise NotImplementedError

    def rate_limit(self) -> int:
        raise NotImplementedError

    def retry(self, attempt: int) -> None:
        raise NotImplementedError

    def usage_limit_text(self) -> int:
        raise NotImplementedError

    def pair(self) -> tuple[str, str]:
        """Return two lines for the interleave scenario: one to cut in two, one to write between."""
        return ("This line was cut in two by another line.", "an interleaved line")

    def utf8_line(self, text: str) -> bytes:
        return text.encode("utf-8")

    def crash_prefix(self) -> bytes:
        return b"a line that was cut off in the mid"

    def login_prompt(self) -> None:
        out("Allow this tool to access the folder? [y/N] ", end="")


class ClaudeSpeaker(Speaker):
    """Claude Code 2.1.332 ``--output-format stream-json --verbose`` (json and text formats too)."""

    VERSION = "2.1.332"

    def __init__(self, cli: dict[str, Any], knobs: Knobs) -> None:
        super().__init__(cli, knobs)
        self.model = self.model or "claude-sonnet-4-5-20250929"
        self.output = cli.get("output", "text")
        self.turns = 0
        self.tokens_in = 0
        self.tokens_out = 0

    def line(self, obj: dict[str, Any] | str, end: str = "\n") -> None:
        if self.output == "stream-json" or isinstance(obj, str):
            super().line(obj, end)
        elif obj.get("type") == "result":
            super().line(obj if self.output == "json" else str(obj.get("result") or ""), end)

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, **fields, "session_id": self.session_id, "uuid": str(uuid.uuid4())}

    def start(self) -> None:
        self.line(
            {
                "type": "system",
                "subtype": "init",
                "cwd": os.getcwd(),
                "session_id": self.session_id,
                "tools": ["Task", "Bash", "Edit", "Glob", "Grep", "Read", "TodoWrite", "WebFetch", "Write"],
                "mcp_servers": [],
                "model": self.model,
                "permissionMode": self.cli.get("permission_mode", "default"),
                "slash_commands": ["compact", "context", "cost", "init", "review"],
                "apiKeySource": "ANTHROPIC_API_KEY" if os.environ.get("ANTHROPIC_API_KEY") else "none",
                "claude_code_version": self.VERSION,
                "output_style": "default",
                "agents": ["claude", "Explore", "general-purpose", "Plan"],
                "skills": [],
                "plugins": [],
                "uuid": str(uuid.uuid4()),
                "fast_mode_state": "off",
            }
        )

    def assistant(self, blocks: list[dict[str, Any]], parent: str | None = None, **extra: Any) -> None:
        message_id = self.next_id("msg_01")
        self.turns += 1
        self.tokens_in += 1200
        self.tokens_out += 60
        usage = {"input_tokens": 4, "cache_creation_input_tokens": 180, "cache_read_input_tokens": 1016, "output_tokens": 60,
                 "service_tier": "standard"}
        for block in blocks:
            message = {"id": message_id, "type": "message", "role": "assistant", "model": self.model, "content": [block],
                       "stop_reason": None, "stop_sequence": None, "usage": usage}
            self.line(self.event("assistant", message=message, parent_tool_use_id=parent, **extra))

    def tool_result(self, tool_id: str, output: Any, is_error: bool = False, parent: str | None = None) -> None:
        block = {"tool_use_id": tool_id, "type": "tool_result", "content": output, "is_error": is_error}
        message = {"role": "user", "content": [block]}
        result = {"stdout": output, "stderr": "", "interrupted": False} if isinstance(output, str) else output
        self.line(self.event("user", message=message, parent_tool_use_id=parent, tool_use_result=result))

    def think(self, text: str) -> None:
        self.assistant([{"type": "thinking", "thinking": text, "signature": "EqQBCkYIBxgCKkA" + uuid.uuid4().hex}])

    def say(self, text: str, parent: str | None = None) -> None:
        self.texts.append(text)
        self.assistant([{"type": "text", "text": text}], parent)

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False, parent: str | None = None) -> None:
        tool_id = self.next_id("toolu_01")
        self.assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}], parent)
        self.tool_result(tool_id, output, is_error, parent)

    def todos(self, items: list[tuple[str, str]]) -> None:
        todos = [{"content": text, "status": status, "activeForm": f"Working on: {text}"} for text, status in items]
        self.tool("TodoWrite", {"todos": todos}, "Todos have been modified successfully.")

    def subagent(self, index: int) -> None:
        task_id = self.next_id("toolu_01")
        description = f"Inspect part {index} of the repository"
        task_input = {"description": description, "prompt": f"Look at part {index} and report.", "subagent_type": "general-purpose"}
        self.assistant([{"type": "tool_use", "id": task_id, "name": "Task", "input": task_input}])
        background = f"task{index}{uuid.uuid4().hex[:6]}"
        self.line(self.event("system", subtype="task_started", task_id=background, tool_use_id=task_id,
                             description=description, task_type="local_agent"))
        self.line(self.event("user", message={"role": "user", "content": task_input["prompt"]}, parent_tool_use_id=task_id))
        self.say(f"Sub-agent {index} is reading the files.", parent=task_id)
        self.tool("Read", {"file_path": os.path.join(os.getcwd(), "README.md")}, "# README\n", parent=task_id)
        self.say(f"Sub-agent {index} found nothing to change.", parent=task_id)
        self.line(self.event("system", subtype="task_notification", task_id=background, tool_use_id=task_id,
                             status="completed", output_file="", summary=f"Part {index} needs no change."))
        self.tool_result(task_id, [{"type": "text", "text": f"Part {index} needs no change."}])

    def result(self, text: str, is_error: bool = False, end: str = "\n", **extra: Any) -> None:
        duration = int((time.time() - self.started) * 1000)
        usage = {"input_tokens": 12 * self.turns, "cache_creation_input_tokens": 180 * self.turns,
                 "cache_read_input_tokens": 1008 * self.turns, "output_tokens": self.tokens_out,
                 "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0}, "service_tier": "standard"}
        cost = round(self.tokens_in * 3e-6 + self.tokens_out * 15e-6, 6) if not is_error else 0
        fields = {
            "subtype": "success", "is_error": is_error, "duration_ms": duration, "duration_api_ms": duration,
            "num_turns": max(self.turns, 1), "result": text, "stop_reason": "end_turn", "total_cost_usd": cost,
            "usage": usage, "modelUsage": {self.model: {"inputTokens": usage["input_tokens"], "outputTokens": self.tokens_out,
                                                        "costUSD": cost}},
            "permission_denials": [], "terminal_reason": "completed",
        }
        fields.update(extra)
        self.line(self.event("result", **fields), end)

    def finish(self, final: str, end: str = "\n") -> None:
        self.say(final)
        self.result(final, end=end)

    def auth_fail(self) -> int:
        # The assistant and result lines of a real not-logged-in run of 2.1.332.
        self.line(self.event("assistant", message={
            "id": str(uuid.uuid4()), "container": None, "model": "<synthetic>", "role": "assistant", "stop_reason": "stop_sequence",
            "stop_sequence": "", "type": "message",
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            "content": [{"type": "text", "text": "Not logged in · Please run /login"}], "context_management": None},
            parent_tool_use_id=None, error="authentication_failed", is_api_error_message=True))
        self.line(self.event("result", duration_api_ms=0, stop_reason="stop_sequence", total_cost_usd=0,
                             usage={"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0},
                             modelUsage={}, permission_denials=[], terminal_reason="api_error", is_error=True, num_turns=1,
                             subtype="success", api_error_status=None, result="Not logged in · Please run /login", duration_ms=136))
        return 1

    def rate_limit(self) -> int:
        resets = int(time.time()) + 3600
        self.line(self.event("rate_limit_event", rate_limit_info={
            "status": "rejected", "resetsAt": resets, "rateLimitType": "five_hour", "utilization": 1.0,
            "overageStatus": "rejected", "overageDisabledReason": "org_level_disabled", "isUsingOverage": False}))
        text = "API Error: Request rejected (429) · Rate limited. Please try again later."
        self.line(self.event("assistant", message={
            "id": str(uuid.uuid4()), "model": "<synthetic>", "role": "assistant", "type": "message", "stop_reason": "stop_sequence",
            "content": [{"type": "text", "text": text}]}, parent_tool_use_id=None, error="rate_limit", is_api_error_message=True))
        self.result(text, is_error=True, api_error_status=429, terminal_reason="api_error")
        return 1

    def retry(self, attempt: int) -> None:
        number = (attempt - 1) % 10 + 1
        delay = min(600 * 2 ** (number - 1), 40_000) + random.randint(0, 99)
        self.line(self.event("system", subtype="api_retry", attempt=number, max_retries=10, retry_delay_ms=delay,
                             error_status=None, error="unknown"))

    def usage_limit_text(self) -> int:
        self.line(f"Claude AI usage limit reached|{int(time.time()) + 7200}")
        return 1

    def pair(self) -> tuple[str, str]:
        message = {"id": self.next_id("msg_01"), "type": "message", "role": "assistant", "model": self.model,
                   "content": [{"type": "text", "text": "This message was cut in two by another event."}]}
        first = dumps(self.event("assistant", message=message, parent_tool_use_id=None))
        second = dumps(self.event("rate_limit_event", rate_limit_info={"status": "allowed_warning", "resetsAt": int(time.time()) + 3600,
                                                                        "rateLimitType": "seven_day", "utilization": 0.8}))
        return first, second

    def utf8_line(self, text: str) -> bytes:
        message = {"id": self.next_id("msg_01"), "type": "message", "role": "assistant", "model": self.model,
                   "content": [{"type": "text", "text": text}]}
        return dumps(self.event("assistant", message=message, parent_tool_use_id=None)).encode("utf-8")

    def crash_prefix(self) -> bytes:
        return self.utf8_line("This message never ends because the process was killed")[:-30]


class CodexSpeaker(Speaker):
    """codex-cli 0.171.0 ``exec --json``."""

    def __init__(self, cli: dict[str, Any], knobs: Knobs) -> None:
        super().__init__(cli, knobs)
        self.items = 0
        self.todo_id: str | None = None
        self.todo_items: list[dict[str, Any]] = []
        self.json = cli.get("json", False)

    def line(self, obj: dict[str, Any] | str, end: str = "\n") -> None:
        if self.json or isinstance(obj, str):
            super().line(obj, end)

    def item(self, phase: str, kind: str, item_id: str | None = None, **fields: Any) -> str:
        if item_id is None:
            item_id = f"item_{self.items}"
            self.items += 1
        self.line({"type": f"item.{phase}", "item": {"id": item_id, "type": kind, **fields}})
        return item_id

    def start(self) -> None:
        if not self.json:
            err(f"OpenAI Codex v0.171.0\n--------\nworkdir: {os.getcwd()}\nmodel: {self.model or 'gpt-5-codex'}\n"
                f"sandbox: {self.cli.get('sandbox')}\nsession id: {self.session_id}\n--------")
        self.line({"type": "thread.started", "thread_id": self.session_id})
        self.line({"type": "turn.started"})

    def think(self, text: str) -> None:
        self.item("completed", "reasoning", text=text)

    def say(self, text: str) -> None:
        self.texts.append(text)
        self.item("completed", "agent_message", text=text)

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False) -> None:
        if name == "Edit":
            self.item("completed", "file_change", changes=[{"path": tool_input["file_path"], "kind": "update"}], status="completed")
            return
        command = f"bash -lc {tool_input.get('command', name)!r}"
        item_id = self.item("started", "command_execution", command=command, aggregated_output="", exit_code=None, status="in_progress")
        self.item("completed", "command_execution", item_id, command=command, aggregated_output=output,
                  exit_code=1 if is_error else 0, status="failed" if is_error else "completed")

    def todos(self, items: list[tuple[str, str]]) -> None:
        self.todo_items = [{"text": text, "completed": status == "completed"} for text, status in items]
        if self.todo_id is None:
            self.todo_id = self.item("started", "todo_list", items=self.todo_items)
        else:
            self.item("updated", "todo_list", self.todo_id, items=self.todo_items)

    def finish(self, final: str, end: str = "\n") -> None:
        if self.todo_id is not None:
            self.item("completed", "todo_list", self.todo_id, items=self.todo_items)
        self.say(final)
        if not self.json:
            out(final)
        usage = {"input_tokens": 2400 + 300 * self.items, "cached_input_tokens": 1800, "output_tokens": 90 * max(self.items, 1)}
        self.line({"type": "turn.completed", "usage": usage}, end)

    def failed(self, message: str) -> None:
        self.line({"type": "error", "message": message})
        self.line({"type": "turn.failed", "error": {"message": message}})
        if not self.json:
            err(f"ERROR: {message}")

    def auth_fail(self) -> int:
        self.failed("unexpected status 401 Unauthorized: Missing bearer or basic authentication in header")
        return 1

    def rate_limit(self) -> int:
        self.line({"type": "error", "message": "Reconnecting... 1/5 (exceeded retry limit, last status: 429 Too Many Requests)"})
        self.line({"type": "turn.failed", "error": {"message": "exceeded retry limit, last status: 429 Too Many Requests"}})
        return 1

    def retry(self, attempt: int) -> None:
        # The real offline sequence: Reconnecting 2/5..5/5, a fallback warning, then waiting for ever.
        cause = "stream disconnected before completion: failed to lookup address information: Try again"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000Z"
        err(f"{stamp} ERROR codex_api::endpoint::responses_websocket: failed to connect to Responses WebSocket stage=Unknown")
        if attempt <= 4:
            self.line({"type": "error", "message": f"Reconnecting... {attempt + 1}/5 ({cause})"})
        elif attempt == 5:
            self.item("completed", "error", message=f"Falling back from WebSockets to HTTPS transport. {cause}")
        else:
            self.line({"type": "error", "message": "Reconnecting... waiting for network (Connection failed: error sending request)"})

    def usage_limit_text(self) -> int:
        err("ERROR: You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), "
            "or try again in 4 days 2 hours 13 minutes.")
        return 1

    def pair(self) -> tuple[str, str]:
        first = dumps({"type": "item.completed", "item": {"id": f"item_{self.items}", "type": "agent_message",
                                                          "text": "This message was cut in two by another event."}})
        self.items += 1
        second = dumps({"type": "item.started", "item": {"id": f"item_{self.items}", "type": "command_execution",
                                                         "command": "bash -lc 'git status'", "aggregated_output": "",
                                                         "exit_code": None, "status": "in_progress"}})
        self.items += 1
        return first, second

    def utf8_line(self, text: str) -> bytes:
        item = {"id": f"item_{self.items}", "type": "agent_message", "text": text}
        self.items += 1
        return dumps({"type": "item.completed", "item": item}).encode("utf-8")

    def crash_prefix(self) -> bytes:
        return self.utf8_line("This message never ends because the process was killed")[:-25]


class GeminiSpeaker(Speaker):
    """gemini-cli 0.61.0 ``--output-format stream-json`` (json and text formats too)."""

    def __init__(self, cli: dict[str, Any], knobs: Knobs) -> None:
        super().__init__(cli, knobs)
        self.output = cli.get("output", "text")
        self.tool_calls = 0
        self.model = self.model or "auto"

    def stamp(self) -> str:
        now = time.time()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"

    def event(self, kind: str, **fields: Any) -> None:
        if self.output == "stream-json":
            self.line({"type": kind, "timestamp": self.stamp(), **fields})

    def start(self) -> None:
        self.event("init", session_id=self.session_id, model=self.model)
        self.event("message", role="user", content=self.prompt)

    def think(self, text: str) -> None:
        return None  # stream-json carries no thinking

    def say(self, text: str) -> None:
        self.texts.append(text)
        words = text.split(" ")
        chunks = [" ".join(words[i : i + 3]) + (" " if i + 3 < len(words) else "") for i in range(0, len(words), 3)]
        for chunk in chunks:
            self.event("message", role="assistant", content=chunk, delta=True)

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False) -> None:
        names = {"Bash": "run_shell_command", "Read": "read_file", "Edit": "replace", "TodoWrite": "write_todos"}
        tool_name = names.get(name, name)
        tool_id = f"{tool_name}-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        self.tool_calls += 1
        self.event("tool_use", tool_name=tool_name, tool_id=tool_id, parameters=tool_input)
        if is_error:
            self.event("tool_result", tool_id=tool_id, status="error", error={"type": "execution_failed", "message": output})
        else:
            self.event("tool_result", tool_id=tool_id, status="success", output=output)

    def todos(self, items: list[tuple[str, str]]) -> None:
        todos = [{"description": text, "status": status} for text, status in items]
        self.tool("TodoWrite", {"todos": todos}, "Successfully updated the todo list.")

    def stats(self) -> dict[str, Any]:
        return {"total_tokens": 5200, "input_tokens": 5000, "output_tokens": 200, "cached": 1200, "input": 3800,
                "duration_ms": int((time.time() - self.started) * 1000), "tool_calls": self.tool_calls}

    def finish(self, final: str, end: str = "\n") -> None:
        self.say(final)
        if self.output == "stream-json":
            self.line({"type": "result", "timestamp": self.stamp(), "status": "success", "stats": self.stats()}, end)
        elif self.output == "json":
            self.line({"session_id": self.session_id, "response": "".join(self.texts), "stats": {"models": {}}}, end)
        else:
            out("\n".join(self.texts), end)

    def error_result(self, message: str) -> None:
        if self.output == "stream-json":
            self.event("result", status="error", error={"type": "unknown", "message": message}, stats=self.stats())
        else:
            err(json.dumps({"session_id": self.session_id, "error": {"type": "Error", "message": message, "code": 1}}, indent=2))

    def auth_fail(self) -> int:
        home = os.path.expanduser("~")
        message = (f"Please set an Auth method in your {home}/.gemini/settings.json or specify one of the following environment "
                   "variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA")
        if self.output == "json":
            err(json.dumps({"session_id": self.session_id, "error": {"type": "Error", "message": message, "code": 41}}, indent=2))
        else:
            err(message)
        return 41

    def rate_limit(self) -> int:
        err('Attempt 1 failed with status 429. Retrying with backoff... ApiError: {"error":{"code":429,'
            '"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}')
        self.error_result("[API Error: Resource has been exhausted (e.g. check quota).]")
        return 1

    def retry(self, attempt: int) -> None:
        err(f"Attempt {attempt} failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request")
        err("    at async retryWithBackoff (file:///usr/lib/node_modules/@google/gemini-cli/bundle/chunk.js:308039:23)")

    def usage_limit_text(self) -> int:
        err("You have exhausted your daily quota on this model. Your quota will reset after 17h41m.")
        return 1

    def untrusted(self) -> int:
        err("\x1b[31mGemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, set the "
            "`GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, or trust this directory in interactive mode. For more "
            "details, see https://geminicli.com/docs/cli/trusted-folders/#headless-and-automated-environments\x1b[0m")
        return 55

    def pair(self) -> tuple[str, str]:
        first = dumps({"type": "message", "timestamp": self.stamp(), "role": "assistant",
                       "content": "This message was cut in two by another event.", "delta": True})
        second = dumps({"type": "tool_use", "timestamp": self.stamp(), "tool_name": "list_directory",
                        "tool_id": f"list_directory-{uuid.uuid4().hex[:12]}", "parameters": {"path": "."}})
        return first, second

    def utf8_line(self, text: str) -> bytes:
        return dumps({"type": "message", "timestamp": self.stamp(), "role": "assistant", "content": text, "delta": True}).encode()

    def crash_prefix(self) -> bytes:
        return self.utf8_line("This message never ends because the process was killed")[:-20]


class AiderSpeaker(Speaker):
    """aider-chat 0.86.2 ``--message`` with ``--no-pretty``: plain text on stdout."""

    structured = False

    def __init__(self, cli: dict[str, Any], knobs: Knobs) -> None:
        super().__init__(cli, knobs)
        self.model = self.model or "gpt-4o"
        columns = os.environ.get("COLUMNS", "")
        self.width = int(columns) if columns.isdigit() else 80

    def wrapped(self, text: str) -> None:
        for piece in wrap(text, self.width):
            out(piece)

    def start(self) -> None:
        for text in ("Aider v0.86.2", f"Main model: {self.model} with diff edit format", "Weak model: gpt-4o-mini",
                     "Git repo: .git with 3 files", "Repo-map: using 4096 tokens, auto refresh", ""):
            out(text)

    def say(self, text: str) -> None:
        self.texts.append(text)
        self.wrapped(text)

    def think(self, text: str) -> None:
        return None

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False) -> None:
        if name == "Edit":
            out(f"Applied edit to {tool_input['file_path']}")
        elif name == "Bash":
            out(f"Running {tool_input.get('command')}")
            for line in output.splitlines():
                out(line)

    def finish(self, final: str, end: str = "\n") -> None:
        self.say(final)
        out("Tokens: 2.1k sent, 85 received. Cost: $0.0062 message, $0.0062 session.", end)

    def auth_fail(self) -> int:
        self.wrapped("litellm.AuthenticationError: AuthenticationError: OpenAIException - The api_key client option must be set "
                     "either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable")
        out("The API provider is not able to authenticate you. Check your API key.")
        return 0

    def rate_limit(self) -> int:
        for delay in ("0.2", "0.5"):
            self.wrapped("litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o in "
                         "organization org-fake on tokens per min (TPM): Limit 30000, Used 30000, Requested 1200.")
            out("The API provider has rate limited you. Try again later or check your quotas.")
            out(f"Retrying in {delay} seconds...")
        self.wrapped("litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for gpt-4o.")
        out("The API provider has rate limited you. Try again later or check your quotas.")
        return 0

    def retry(self, attempt: int) -> None:
        self.wrapped("litellm.InternalServerError: InternalServerError: OpenAIException - Connection error.")
        out("The API provider's servers are down or overloaded.")
        out(f"Retrying in {min(0.2 * 2 ** (attempt - 1), 60):.1f} seconds...")

    def usage_limit_text(self) -> int:
        self.wrapped("litellm.RateLimitError: RateLimitError: AnthropicException - usage limit reached for this organization")
        out("The API provider has rate limited you. Try again later or check your quotas.")
        return 0

    def login_prompt(self) -> None:
        # What aider 0.86.2 prints with no model and no API key; it then waits 5 minutes.
        for text in ("No LLM model was specified and no API keys were provided.",
                     "OpenRouter provides free and paid access to many LLMs.", "",
                     "Please open this URL in your browser to connect Aider with OpenRouter:", "",
                     "https://openrouter.ai/auth?callback_url=http://localhost:8484/callback/aider&code_challenge=fake",
                     "", "Waiting up to 5 minutes for you to finish in the browser...", "Use Control-C to interrupt."):
            out(text)


class OllamaSpeaker(Speaker):
    """``ollama run MODEL PROMPT``: the model's response on stdout, ``Error: ...`` on stderr."""

    structured = False

    def say(self, text: str) -> None:
        self.texts.append(text)
        out(text)

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False) -> None:
        return None

    def finish(self, final: str, end: str = "\n") -> None:
        out(final, end)

    def auth_fail(self) -> int:
        err("Error: unauthorized")
        return 1

    def rate_limit(self) -> int:
        err("Error: 429 Too Many Requests: rate limit exceeded")
        return 1

    def retry(self, attempt: int) -> None:
        err(f"Error: could not connect to ollama server, retrying ({attempt})")

    def usage_limit_text(self) -> int:
        err("Error: you have reached your usage limit, please try again later")
        return 1


class TextSpeaker(Speaker):
    """A plain command: lines on stdout, failures on stderr, and a reliable exit code."""

    structured = False

    def start(self) -> None:
        first = self.prompt.strip().splitlines()[0] if self.prompt.strip() else ""
        out(f"working on: {first}")

    def say(self, text: str) -> None:
        self.texts.append(text)
        out(text)

    def tool(self, name: str, tool_input: dict[str, Any], output: str, is_error: bool = False) -> None:
        out(f"$ {tool_input.get('command', name)}")

    def finish(self, final: str, end: str = "\n") -> None:
        out(final, end)

    def auth_fail(self) -> int:
        err("error: authentication failed (401)")
        return 1

    def rate_limit(self) -> int:
        err("error: rate limit exceeded (429)")
        return 1

    def retry(self, attempt: int) -> None:
        out(f"retrying in {attempt} s")

    def usage_limit_text(self) -> int:
        out("usage limit reached")
        return 1


SPEAKERS = {
    "claude": ClaudeSpeaker,
    "codex": CodexSpeaker,
    "gemini": GeminiSpeaker,
    "aider": AiderSpeaker,
    "ollama": OllamaSpeaker,
    "text": TextSpeaker,
}


# -- scenarios ---------------------------------------------------------------------------------


def do_record(knobs: Knobs) -> None:
    path = knobs.text("record")
    if not path:
        return
    line = f"{os.environ.get('AIPASS_REQUEST_ID', '')} {os.environ.get('AIPASS_RUN_ID', '')}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_bytes(fd, line)
    finally:
        os.close(fd)


def do_touch(knobs: Knobs) -> str | None:
    path = knobs.text("touch")
    if not path:
        return None
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"changed by fake agent at {time.time():.3f}\n")
    return path


def read_stdin(wait: float | None) -> None:
    """Read stdin like the real CLIs: to EOF (``wait`` None) or for at most ``wait`` seconds."""
    try:
        if os.isatty(0):
            return
    except OSError:
        return
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
        try:
            ready, _, _ = select.select([0], [], [], timeout)
        except (OSError, ValueError):
            return
        if not ready:
            return
        try:
            chunk = os.read(0, 65536)
        except OSError:
            return
        if not chunk:
            return


def stdin_behaviour(flavor: str, scenario: str, knobs: Knobs) -> None:
    if flavor == "codex":
        err("Reading additional input from stdin...")
        read_stdin(None)
    elif flavor == "ollama":
        read_stdin(None)
    elif scenario == "stdin_wait":
        if flavor == "claude":
            waited = time.monotonic()
            read_stdin(knobs.number("seconds", 3.0))
            if time.monotonic() - waited >= knobs.number("seconds", 3.0) - 0.05:
                err("Warning: no stdin data received in 3s, proceeding without it. If piping from a slow command, "
                    "redirect stdin explicitly: < /dev/null to skip, or wait longer.")
        elif flavor == "gemini":
            read_stdin(0.5)
        else:
            read_stdin(None)


def work(speaker: Speaker, knobs: Knobs, touched: str | None) -> None:
    """The middle of a healthy session: todo list, tool calls, sub-agents, filler and work time."""
    speaker.think("The request needs a look at the repository first.")
    speaker.say("I'll look at the repository first.")
    todo = [("Read the repository", "in_progress"), ("Make the change", "pending"), ("Check the result", "pending")]
    speaker.todos(todo)
    speaker.tool("Bash", {"command": "ls", "description": "List files"}, "README.md\nsrc\ntests\n")
    if touched:
        speaker.tool("Edit", {"file_path": os.path.abspath(touched), "old_string": "", "new_string": "changed"},
                     f"The file {touched} has been updated.")
    for index in range(1, (knobs.integer("subagents", 0) or 0) + 1):
        speaker.subagent(index)
    for index in range(1, (knobs.integer("lines", 0) or 0) + 1):
        speaker.say(f"progress line {index}")
    sleep(knobs.number("sleep", 0))
    burn_cpu(knobs.number("cpu", 0))
    speaker.todos([(text, "completed") for text, _ in todo])


FINAL = "Done: the request is complete."


def run(flavor: str, speaker: Speaker, knobs: Knobs) -> int:
    """Play the scenario and return the exit code."""
    scenario = knobs.scenario
    do_record(knobs)
    touched = do_touch(knobs)
    stdin_behaviour(flavor, scenario, knobs)
    code = startup_failure(flavor, speaker, scenario)
    if code is not None:
        return code

    speaker.start()
    if scenario in ("ok", "stdin_wait", "untrusted", "no_server", "no_model", "success_exit1", "no_newline"):
        work(speaker, knobs, touched)
        speaker.finish(FINAL, end="" if scenario == "no_newline" else "\n")
        return 1 if scenario == "success_exit1" else 0
    if scenario in ("auth_fail", "exit0_fail"):
        code = speaker.auth_fail()
        return 0 if scenario == "exit0_fail" else code
    if scenario == "rate_limit":
        return speaker.rate_limit()
    if scenario == "usage_limit_text":
        return speaker.usage_limit_text()

    if scenario == "crash":
        speaker.say("Working on it.")
        write_bytes(1, speaker.crash_prefix())
        os.kill(os.getpid(), signal.SIGKILL)
    if scenario == "login_wait":
        speaker.login_prompt()
        wait_forever()
    plays = {
        "retry_storm": retry_storm,
        "long_line": long_line,
        "huge_json": long_line,
        "fork_setsid": fork_setsid,
        "slow": slow,
        "interleave": interleave,
        "utf8_split": utf8_split,
    }
    return plays[scenario](speaker, knobs)


def startup_failure(flavor: str, speaker: Speaker, scenario: str) -> int | None:
    """Print the failures that come before any event and return their exit code, or None."""
    if flavor == "gemini" and scenario == "untrusted" and not speaker.cli.get("skip_trust"):
        return speaker.untrusted()  # type: ignore[attr-defined]
    if flavor == "gemini" and scenario == "auth_fail":
        return speaker.auth_fail()
    if flavor == "ollama" and scenario == "no_server":
        err("Error: could not connect to ollama server, run 'ollama serve' to start it")
        return 1
    if flavor == "ollama" and scenario == "no_model":
        err("pulling manifest")
        err("Error: pull model manifest: file does not exist")
        return 1
    return None


def long_line(speaker: Speaker, knobs: Knobs) -> int:
    default = 4 * 1024 * 1024 if knobs.scenario == "long_line" else 96 * 1024
    size = knobs.integer("size", default) or 0
    speaker.say("Reading the big file.")
    if speaker.structured:
        speaker.tool("Read", {"file_path": "big_file.py"}, big_text(size))
    else:
        out(big_text(size).replace("\n", " "))
    speaker.finish(FINAL)
    return 0


def interleave(speaker: Speaker, knobs: Knobs) -> int:
    """Write one whole line into the middle of another, as two writers on one pipe do."""
    first, second = speaker.pair()
    middle = first.index("cut in two") + 4
    write_bytes(1, first[:middle].encode())
    sleep(0.02)
    out(second)
    sleep(0.02)
    out(first[middle:])
    speaker.finish(FINAL)
    return 0


def utf8_split(speaker: Speaker, knobs: Knobs) -> int:
    """Split a character across two writes, then write a line with bytes that are not UTF-8."""
    data = speaker.utf8_line("héllo wörld — 日本語 ✓")
    cut = data.index("日".encode()) + 1
    write_bytes(1, data[:cut])
    sleep(0.05)
    write_bytes(1, data[cut:] + b"\n")

    marker = "BYTES-NOT-UTF8"
    bad = speaker.utf8_line(f"bad bytes: {marker} end").replace(marker.encode(), b"\xff\xfe\xc3")
    write_bytes(1, bad + b"\n")
    speaker.finish(FINAL)
    return 0


def retry_storm(speaker: Speaker, knobs: Knobs) -> int:
    rate = knobs.number("rate", 5.0)
    limit = knobs.integer("lines", None)
    attempt = 0
    while limit is None or attempt < limit:
        attempt += 1
        speaker.retry(attempt)
        sleep(1.0 / rate if rate > 0 else 1.0)
    wait_forever()
    return 1


def slow(speaker: Speaker, knobs: Knobs) -> int:
    rate = knobs.number("rate", 10.0)
    seconds = knobs.number("seconds", 3.0)
    limit = knobs.integer("lines", None)
    started = time.monotonic()
    count = 0
    while time.monotonic() - started < seconds and (limit is None or count < limit):
        count += 1
        speaker.say(f"slow line {count}")
        next_at = started + count / rate
        sleep(next_at - time.monotonic())
    speaker.finish(FINAL)
    return 0


def fork_setsid(speaker: Speaker, knobs: Knobs) -> int:
    """Start a child in its own session that ignores SIGTERM, then keep running too."""
    seconds = knobs.number("seconds", FOREVER)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            err(f"fake_agent: child {os.getpid()} started its own session {os.getsid(0)}")
            time.sleep(seconds)
        finally:
            os._exit(0)
    speaker.say(f"Started a helper process {pid}.")
    sleep(seconds)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "--flavor" or argv[1] not in FLAVORS:
        err(f"usage: fake_agent.py --flavor {{{','.join(FLAVORS)}}} [the CLI's own arguments...]")
        return 2
    flavor = argv[1]
    try:
        cli = PARSERS[flavor](argv[2:])
        knobs = Knobs(cli.get("prompt", ""))
        if flavor == "codex" and not cli.get("skip_git_check") and not inside_git_repo(os.getcwd()):
            err("Reading additional input from stdin...")
            err("Not inside a trusted directory and --skip-git-repo-check was not specified.")
            return 1
        speaker = SPEAKERS[flavor](cli, knobs)
        code = run(flavor, speaker, knobs)
    except UsageError as exc:
        err(str(exc))
        return exc.code
    except BrokenPipeError:
        return 141
    exit_knob = knobs.integer("exit", None)
    return code if exit_knob is None else exit_knob


def inside_git_repo(path: str) -> bool:
    path = os.path.abspath(path)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return True
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
