"""Claude adapter: argv, stream-json parsing and judging, on lines copied from real runs.

The recorded lines come from runs of Claude Code 2.1.332 and 2.1.197 without credentials and
without network. The init line of 2.1.332 was trimmed in the record, so the 2.1.197 init line
is used in its place.
"""

from __future__ import annotations

import json
from pathlib import Path

from aipass_tui.core.models import EventKind, RunStatus


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


NOT_LOGGED_IN_332 = (
    '{"type":"assistant","message":{"diagnostics":null,"id":"14829ff4-27c9-4831-a253-4c1048c32fd3","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"output_tokens_details":null,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null,"fallback_credit":null},"content":[{"type":"text","text":"Not logged in · Please run /login"}],"context_management":null},"parent_tool_use_id":null,"session_id":"9bbb7609-84a6-42e1-8bbf-15c109c63a2e","uuid":"9bf4398f-59b7-4177-a896-80f3b8971e10","timestamp":"2026-12-04T20:14:18.590Z","error":"authentication_failed","is_api_error_message":true}',
    '{"duration_api_ms":0,"stop_reason":"stop_sequence","session_id":"9bbb7609-84a6-42e1-8bbf-15c109c63a2e","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{},"permission_denials":[],"terminal_reason":"api_error","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":true,"num_turns":1,"subtype":"success","api_error_status":null,"result":"Not logged in · Please run /login","type":"result","duration_ms":136,"uuid":"b8f71856-2d54-417e-9169-7591267e23b6","queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{}}',
)

STREAM_JSON_NEEDS_VERBOSE = (
    'Error: When using --print, --output-format=stream-json requires --verbose',
)

OFFLINE_332 = (
    '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":609,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"07a89644-ce80-4d87-b697-4a409bee1899"}',
    '{"type":"system","subtype":"api_retry","attempt":2,"max_retries":10,"retry_delay_ms":1086,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"e87a2ea1-6daa-45d8-8179-b7b50d950955"}',
    '{"type":"system","subtype":"api_retry","attempt":3,"max_retries":10,"retry_delay_ms":2430,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"221d9573-69dd-497d-bc3a-e5a6aad272a0"}',
    '{"type":"system","subtype":"api_retry","attempt":4,"max_retries":10,"retry_delay_ms":4984,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"f52f0fef-1215-4232-bd96-e832ebb8b1b3"}',
    '{"type":"system","subtype":"api_retry","attempt":5,"max_retries":10,"retry_delay_ms":9725,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"78246900-a7ce-4f49-a9cb-43481166d8d9"}',
    '{"type":"system","subtype":"api_retry","attempt":6,"max_retries":10,"retry_delay_ms":19846,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"bd1e5230-fd2e-469a-ba66-224a16f7e49b"}',
    '{"type":"system","subtype":"api_retry","attempt":7,"max_retries":10,"retry_delay_ms":38247,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"a97bccc2-8382-4956-a6d6-c2cfce2520a8"}',
    '{"type":"system","subtype":"api_retry","attempt":8,"max_retries":10,"retry_delay_ms":38126,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"b384725d-ea18-491c-ba20-b4c698da9731"}',
    '{"type":"system","subtype":"api_retry","attempt":9,"max_retries":10,"retry_delay_ms":34085,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"20907da6-418a-4e70-9e67-3b7bb3b4af8e"}',
    '{"type":"system","subtype":"api_retry","attempt":10,"max_retries":10,"retry_delay_ms":32137,"error_status":null,"error":"unknown","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"69935f88-2ed3-40df-a482-3def7940acd9"}',
    '{"type":"assistant","message":{"diagnostics":null,"id":"494434b4-044b-4f22-9055-1848b3da1e41","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"output_tokens_details":null,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null,"fallback_credit":null},"content":[{"type":"text","text":"API Error: Can\'t reach the API server — check your internet or DNS (EAI_AGAIN)"}],"context_management":null},"parent_tool_use_id":null,"session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","uuid":"d40c4225-eed4-47b2-a43f-e4f5b3dabdd0","timestamp":"2026-12-04T20:20:33.553Z","error":"server_error","is_api_error_message":true,"api_error":"connection_failed"}',
    '{"duration_api_ms":0,"stop_reason":"stop_sequence","session_id":"6a59910f-be1b-40af-a4b6-6fd633c0e8b0","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{},"permission_denials":[],"terminal_reason":"api_error","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":true,"num_turns":1,"subtype":"success","api_error_status":null,"api_error":"connection_failed","result":"API Error: Can\'t reach the API server — check your internet or DNS (EAI_AGAIN)","type":"result","duration_ms":181613,"uuid":"94766e90-1cc4-4b06-8662-495b6f72fae9","queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{}}',
)

BAD_OPTION_VALUE = (
    "error: option '--output-format <format>' argument 'bogus' is invalid. Allowed choices are text, json, stream-json.",
)

UNKNOWN_OPTION = (
    "error: unknown option '--bogus'",
)

NOT_LOGGED_IN_197 = (
    '{"type":"system","subtype":"init","cwd":"<scratch>/runs/c197_streamjson_verbose/repo","session_id":"68c0fd43-ff5f-42d2-9b47-b1be7a494868","tools":["Task","Bash","CronCreate","CronDelete","CronList","DesignSync","Edit","EnterWorktree","ExitWorktree","NotebookEdit","Read","ReportFindings","ScheduleWakeup","SendMessage","Skill","TaskCreate","TaskGet","TaskList","TaskOutput","TaskStop","TaskUpdate","ToolSearch","WebFetch","WebSearch","Workflow","Write"],"mcp_servers":[],"model":"claude-opus-4-8[1m]","permissionMode":"default","slash_commands":["deep-research","design-sync","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","loop","claude-api","run","run-skill-generator","clear","compact","config","context","heapdump","init","reload-skills","review","security-review","usage","insights","goal","team-onboarding"],"apiKeySource":"none","claude_code_version":"2.1.197","output_style":"default","agents":["claude","Explore","general-purpose","Plan","statusline-setup"],"skills":["deep-research","design-sync","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","loop","claude-api","run","run-skill-generator"],"plugins":[],"analytics_disabled":false,"product_feedback_disabled":false,"uuid":"e28299b5-eabe-4254-828f-270240efbb96","memory_paths":{"auto":"<scratch>/runs/c197_streamjson_verbose/home/.claude/projects/-tmp-clirun-runs-c197-streamjson-verbose-repo/memory/"},"fast_mode_state":"off"}',
    '{"type":"assistant","message":{"id":"a3b747ce-f9ca-49b4-9f94-8d4f5011b0d0","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null},"content":[{"type":"text","text":"Not logged in · Please run /login"}],"context_management":null},"parent_tool_use_id":null,"session_id":"68c0fd43-ff5f-42d2-9b47-b1be7a494868","uuid":"79a4ce4c-96cf-4b84-9236-4b1180236854","error":"authentication_failed"}',
    '{"type":"result","subtype":"success","is_error":true,"api_error_status":null,"duration_ms":163,"duration_api_ms":0,"num_turns":1,"result":"Not logged in · Please run /login","stop_reason":"stop_sequence","session_id":"68c0fd43-ff5f-42d2-9b47-b1be7a494868","total_cost_usd":0,"usage":{"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard"},"modelUsage":{},"permission_denials":[],"terminal_reason":"completed","fast_mode_state":"off","uuid":"af4a72fa-ec60-437b-856f-7267c1d7381d"}',
)

RETRY_197 = (
    '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":561.7521069289512,"error_status":null,"error":"unknown","session_id":"45595702-c3fe-4434-8220-6f8ffda49f66","uuid":"25aaa302-c07d-4112-968b-08abafa301ee"}',
)

SIGINT_332 = (
    '{"type":"user","message":{"role":"user","content":[{"type":"text","text":"[Request interrupted by user]"}]},"parent_tool_use_id":null,"session_id":"e6ea23d6-1cf1-4ce2-ab87-429087999756","uuid":"5ac22be2-c751-4098-868d-0c1226de9926","timestamp":"2026-12-04T20:27:42.989Z"}',
    '{"duration_api_ms":0,"stop_reason":null,"session_id":"e6ea23d6-1cf1-4ce2-ab87-429087999756","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{},"permission_denials":[],"terminal_reason":"aborted_streaming","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":true,"num_turns":2,"subtype":"error_during_execution","errors":["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],"type":"result","duration_ms":4074,"uuid":"6fb7ec39-33c7-44f6-a2a0-463889fae573","queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{}}',
)

SESSION = "5f0c8a36-1d3e-4a57-b6f1-0c2d7a9e4b11"


def _event(**fields: object) -> str:
    return json.dumps({**fields, "session_id": SESSION, "uuid": "u"}, ensure_ascii=False)


def _assistant(blocks: list[dict], parent: str | None = None, message_id: str = "msg_1", usage: dict | None = None) -> str:
    message = {"id": message_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": blocks}
    if usage is not None:
        message["usage"] = usage
    return _event(type="assistant", message=message, parent_tool_use_id=parent)


def _tool_result(tool_use_id: str, content: object, parent: str | None = None, is_error: bool = False) -> str:
    block = {"tool_use_id": tool_use_id, "type": "tool_result", "content": content, "is_error": is_error}
    return _event(type="user", message={"role": "user", "content": [block]}, parent_tool_use_id=parent)


def _result(text: str = "All done.", is_error: bool = False, **extra: object) -> str:
    fields = {
        "type": "result", "subtype": "success", "is_error": is_error, "duration_ms": 5000, "duration_api_ms": 4000,
        "num_turns": 3, "result": text, "total_cost_usd": 0.0421,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 3000, "output_tokens": 450},
        "terminal_reason": "completed", "api_error_status": None,
    }
    fields.update(extra)
    return _event(**fields)


# -- argv ----------------------------------------------------------------------------------------


def test_argv_new_session(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("claude", binary="/opt/claude")
    argv = adapter.build_argv(kit.context("fix the bug", tmp_path, session_id=SESSION))
    assert argv == [
        "/opt/claude", "-p", "fix the bug", "--output-format", "stream-json", "--verbose",
        "--session-id", SESSION, "--permission-mode", "acceptEdits",
    ]


def test_argv_resume_model_mode_and_args(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("claude", model="opus", permission_mode="plan", args=["--max-turns", "5"])
    argv = adapter.build_argv(kit.context("go on", tmp_path, session_id="new", resume_session="old-session"))
    assert "--session-id" not in argv
    assert argv[argv.index("--resume") + 1] == "old-session"
    assert argv[argv.index("--permission-mode") + 1] == "plan"
    assert argv[argv.index("--model") + 1] == "opus"
    assert argv[-2:] == ["--max-turns", "5"]


def test_argv_prompt_starting_with_dash(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("claude")
    argv = adapter.build_argv(kit.context("--help me", tmp_path))
    assert argv[2] == " --help me"


def test_argv_uses_path_when_no_binary(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("claude", binary=None)
    assert Path(adapter.build_argv(kit.context("x", tmp_path))[0]).name == "claude"


# -- recorded failures -----------------------------------------------------------------------------


def test_not_logged_in_2_1_332(kit) -> None:
    adapter = kit.make_adapter("claude")
    stdout = _lines(NOT_LOGGED_IN_197[0], *NOT_LOGGED_IN_332)
    parsed = kit.parse(adapter, stdout)

    assert parsed.kinds() == ["init", "error", "result"]
    assert parsed.of("error")[0].text == "Not logged in · Please run /login"
    assert parsed.of("error")[0].data["error_kind"] == "auth"
    assert parsed.of("result")[0].data["error_kind"] == "auth"
    assert parsed.summary.session_id == "68c0fd43-ff5f-42d2-9b47-b1be7a494868"

    outcome = adapter.judge(kit.evidence(parsed, 1, stdout))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("claude is not logged in: run `claude` once in a terminal to log in")


def test_not_logged_in_2_1_197(kit) -> None:
    adapter = kit.make_adapter("claude")
    outcome = kit.judge_output(adapter, _lines(*NOT_LOGGED_IN_197), 1)
    assert outcome.status == RunStatus.FAILED
    assert "not logged in" in outcome.message


def test_not_logged_in_with_exit_0(kit) -> None:
    adapter = kit.make_adapter("claude")
    outcome = kit.judge_output(adapter, _lines(*NOT_LOGGED_IN_197), 0)
    assert outcome.status == RunStatus.FAILED
    assert "not logged in" in outcome.message


def test_offline_retries_then_gives_up(kit) -> None:
    adapter = kit.make_adapter("claude")
    stdout = _lines(*OFFLINE_332)
    parsed = kit.parse(adapter, stdout)

    retries = parsed.of("retry")
    assert len(retries) == 10
    assert retries[0].text == "API retry 1/10 in 0.6 s"
    assert retries[2].data == {"attempt": 3, "max_retries": 10, "retry_delay_ms": 2430.0, "error_status": None, "error": "unknown"}
    assert parsed.of("error")[0].data["error_kind"] == "network"
    assert parsed.of("result")[0].data["error_kind"] == "network"

    outcome = adapter.judge(kit.evidence(parsed, 1, stdout))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("claude could not reach the Anthropic API")
    assert "EAI_AGAIN" in outcome.message


def test_retry_delay_as_float(kit) -> None:
    parsed = kit.parse(kit.make_adapter("claude"), _lines(*RETRY_197))
    assert parsed.of("retry")[0].text == "API retry 1/10 in 0.6 s"


def test_timeout_while_retrying(kit) -> None:
    adapter = kit.make_adapter("claude")
    stdout = _lines(*OFFLINE_332[:5])
    outcome = kit.judge_output(adapter, stdout, -15, stop_requested="timeout")
    assert outcome.status == RunStatus.TIMED_OUT
    assert "retrying the API" in outcome.message


def test_stopped_by_user(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("claude"), _lines(*OFFLINE_332[:3]), 143, stop_requested="stop")
    assert outcome.status == RunStatus.STOPPED


def test_lost_exit_status(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("claude"), _lines(*OFFLINE_332[:3]), None)
    assert outcome.status == RunStatus.LOST


def test_sigint_result_with_exit_0_is_not_success(kit) -> None:
    adapter = kit.make_adapter("claude")
    parsed = kit.parse(adapter, _lines(*SIGINT_332))
    assert parsed.of("status")[0].text == "[Request interrupted by user]"
    assert parsed.of("result")[0].data["error_kind"] == "interrupted"
    outcome = adapter.judge(kit.evidence(parsed, 0))
    assert outcome.status == RunStatus.FAILED
    assert "interrupted" in outcome.message


def test_usage_errors_on_stderr(kit) -> None:
    adapter = kit.make_adapter("claude")
    for stderr in (STREAM_JSON_NEEDS_VERBOSE, BAD_OPTION_VALUE, UNKNOWN_OPTION):
        outcome = kit.judge_output(adapter, b"", 1, _lines(*stderr))
        assert outcome.status == RunStatus.FAILED
        assert outcome.message == f"claude rejected its command line: {stderr[0]} (check the agent's args)"


def test_killed_without_result(kit) -> None:
    adapter = kit.make_adapter("claude")
    outcome = kit.judge_output(adapter, _lines(NOT_LOGGED_IN_197[0]), -9)
    assert outcome.status == RunStatus.FAILED
    assert outcome.message == "claude was killed by signal 9 before it reported a result"


def test_exit_without_result(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("claude"), _lines(NOT_LOGGED_IN_197[0]), 0)
    assert outcome.status == RunStatus.FAILED
    assert "without reporting a result" in outcome.message


# -- a healthy session ----------------------------------------------------------------------------


def test_success(kit) -> None:
    adapter = kit.make_adapter("claude")
    stdout = _lines(NOT_LOGGED_IN_197[0], _assistant([{"type": "text", "text": "Hello."}]), _result())
    parsed = kit.parse(adapter, stdout)
    result = parsed.of("result")[0]
    assert result.text == "All done."
    assert result.data["input_tokens"] == 3210
    assert result.data["output_tokens"] == 450
    assert result.data["cost_usd"] == 0.0421
    assert parsed.summary.cost_usd == 0.0421
    assert parsed.summary.input_tokens == 3210

    assert adapter.judge(kit.evidence(parsed, 0)).message == "finished"
    assert adapter.judge(kit.evidence(parsed, 0)).status == RunStatus.SUCCEEDED


def test_success_with_exit_1_warns(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("claude"), _lines(_result()), 1)
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.message == "finished, but claude then exited with code 1"


def test_content_blocks(kit) -> None:
    stdout = _lines(
        _assistant([{"type": "thinking", "thinking": "Let me see.", "signature": "s"}]),
        _assistant([{"type": "text", "text": "I will list the files."}]),
        _assistant([{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}}]),
        _tool_result("toolu_1", "a.py\nb.py"),
        _tool_result("toolu_2", [{"type": "text", "text": "no such file"}], is_error=True),
    )
    parsed = kit.parse(kit.make_adapter("claude"), stdout)
    assert parsed.kinds() == ["thinking", "text", "tool_use", "tool_result", "tool_result"]
    tool_use = parsed.of("tool_use")[0]
    assert tool_use.text == "Bash: ls -la"
    assert tool_use.data == {"tool": "Bash", "input": {"command": "ls -la"}, "id": "toolu_1"}
    ok, failed = parsed.of("tool_result")
    assert ok.text == "a.py\nb.py"
    assert ok.data == {"tool_use_id": "toolu_1", "is_error": False, "tool": "Bash"}
    assert failed.data["is_error"] is True
    assert failed.text == "no such file"


def test_usage_counted_once_per_message(kit) -> None:
    usage = {"input_tokens": 5, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 900, "output_tokens": 40}
    stdout = _lines(
        _assistant([{"type": "text", "text": "a"}], message_id="m1", usage=usage),
        _assistant([{"type": "tool_use", "id": "t", "name": "Read", "input": {"file_path": "x"}}], message_id="m1", usage=usage),
        _assistant([{"type": "text", "text": "b"}], message_id="m2", usage=usage),
    )
    parsed = kit.parse(kit.make_adapter("claude"), stdout)
    totals = [(e.data["input_tokens"], e.data["output_tokens"]) for e in parsed.of("usage")]
    assert totals == [(1005, 40), (2010, 80)]
    assert parsed.summary.input_tokens == 2010


def test_todo_write(kit) -> None:
    todos = [
        {"content": "Read code", "status": "completed", "activeForm": "Reading code"},
        {"content": "Fix bug", "status": "in_progress", "activeForm": "Fixing bug"},
        {"content": "Run tests", "status": "pending", "activeForm": "Running tests"},
    ]
    stdout = _lines(_assistant([{"type": "tool_use", "id": "toolu_t", "name": "TodoWrite", "input": {"todos": todos}}]))
    parsed = kit.parse(kit.make_adapter("claude"), stdout)
    todo = parsed.of("todo")[0]
    assert todo.data["items"] == [
        {"text": "Read code", "status": "completed"},
        {"text": "Fix bug", "status": "in_progress"},
        {"text": "Run tests", "status": "pending"},
    ]
    assert [item.status for item in parsed.summary.todo] == ["completed", "in_progress", "pending"]


def test_subagents(kit) -> None:
    task_input = {"description": "Find the config loader", "prompt": "Look for it", "subagent_type": "Explore"}
    stdout = _lines(
        _assistant([{"type": "tool_use", "id": "toolu_task", "name": "Task", "input": task_input}]),
        _event(type="system", subtype="task_started", task_id="t1", tool_use_id="toolu_task", description="Find the config loader"),
        _event(type="user", message={"role": "user", "content": "Look for it"}, parent_tool_use_id="toolu_task"),
        _assistant([{"type": "text", "text": "Searching."}], parent="toolu_task", message_id="m2"),
        _assistant([{"type": "tool_use", "id": "toolu_g", "name": "Grep", "input": {"pattern": "load"}}], parent="toolu_task", message_id="m2"),
        _tool_result("toolu_g", "config.py", parent="toolu_task"),
        _event(type="system", subtype="task_progress", task_id="t1", tool_use_id="toolu_task", description="Find the config loader",
               usage={"total_tokens": 10}, last_tool_name="Grep"),
        _event(type="system", subtype="task_notification", task_id="t1", tool_use_id="toolu_task", status="completed",
               output_file="", summary="Found it in config.py"),
        _tool_result("toolu_task", [{"type": "text", "text": "It is in config.py"}]),
    )
    parsed = kit.parse(kit.make_adapter("claude"), stdout)

    starts = parsed.of("subagent_start")
    assert len(starts) == 1
    assert starts[0].text == "Find the config loader"
    assert starts[0].data == {"id": "toolu_task", "subagent_type": "Explore", "description": "Find the config loader", "parent": None}
    ends = parsed.of("subagent_end")
    assert len(ends) == 1
    assert ends[0].data["id"] == "toolu_task"
    assert ends[0].data["is_error"] is False
    inside = [e for e in parsed.events if e.parent == "toolu_task"]
    assert [e.kind.value for e in inside] == ["status", "text", "tool_use", "tool_result", "status"]

    sub = parsed.summary.subagents["toolu_task"]
    assert sub.status == "done"
    assert sub.kind == "Explore"
    assert sub.events == 5
    assert parsed.summary.last_message != "Searching."


def test_nested_subagent_is_registered(kit) -> None:
    outer = {"description": "outer", "prompt": "p", "subagent_type": "general-purpose"}
    inner = {"description": "inner", "prompt": "p", "subagent_type": "Explore"}
    stdout = _lines(
        _assistant([{"type": "tool_use", "id": "toolu_outer", "name": "Task", "input": outer}]),
        _assistant([{"type": "tool_use", "id": "toolu_inner", "name": "Task", "input": inner}], parent="toolu_outer"),
        _tool_result("toolu_inner", "inner done", parent="toolu_outer", is_error=True),
        _tool_result("toolu_outer", "outer done"),
    )
    parsed = kit.parse(kit.make_adapter("claude"), stdout)
    subagents = parsed.summary.subagents
    assert subagents["toolu_inner"].parent == "toolu_outer"
    assert subagents["toolu_inner"].status == "failed"
    assert subagents["toolu_outer"].status == "done"


def test_rate_limit_rejected(kit) -> None:
    adapter = kit.make_adapter("claude")
    stdout = _lines(
        _event(type="rate_limit_event", rate_limit_info={"status": "allowed", "resetsAt": 1774447200, "rateLimitType": "five_hour"}),
        _event(type="rate_limit_event", rate_limit_info={"status": "allowed_warning", "resetsAt": 1774447200,
                                                         "rateLimitType": "seven_day", "utilization": 0.8}),
        _event(type="rate_limit_event", rate_limit_info={"status": "rejected", "resetsAt": 1774447200, "rateLimitType": "five_hour"}),
        _result("API Error: Request rejected (429) · Rate limited. Please try again later.", is_error=True, api_error_status=429),
    )
    parsed = kit.parse(adapter, stdout)
    assert parsed.kinds() == ["status", "rate_limit", "result"]
    assert parsed.of("status")[0].text == "80% of the seven_day rate limit used"
    assert parsed.of("rate_limit")[0].text.startswith("five_hour rate limit reached; it resets at ")
    assert parsed.of("result")[0].data["error_kind"] == "rate_limit"
    outcome = adapter.judge(kit.evidence(parsed, 1))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("claude hit a rate or usage limit: wait until the limit resets")


def test_result_error_kinds(kit) -> None:
    adapter = kit.make_adapter("claude")
    cases = [
        (_result("x", is_error=True, subtype="error_max_turns"), "max_turns", "turn limit"),
        (_result("x", is_error=True, subtype="error_max_budget_usd"), "budget", "budget limit"),
        (_result("x", is_error=True, api_error_status=529), "server", "server error"),
        (_result("x", is_error=True, api_error_status=402), "billing", "credit balance"),
        (_result("Invalid API key · Fix external API key", is_error=True), "auth", "could not authenticate"),
        (_result("something odd", is_error=True), "unknown", "claude reported an error: something odd"),
    ]
    for line, kind, words in cases:
        parsed = kit.parse(adapter, _lines(line))
        assert parsed.of("result")[0].data["error_kind"] == kind
        outcome = adapter.judge(kit.evidence(parsed, 1))
        assert outcome.status == RunStatus.FAILED
        assert words in outcome.message


def test_assistant_error_kinds(kit) -> None:
    adapter = kit.make_adapter("claude")
    cases = {
        "billing_error": "billing",
        "rate_limit": "rate_limit",
        "invalid_request": "invalid_request",
        "server_error": "server",
        "unknown": "unknown",
    }
    for error, kind in cases.items():
        line = _event(type="assistant", message={"model": "<synthetic>", "content": [{"type": "text", "text": "API Error: 500"}]},
                      parent_tool_use_id=None, error=error)
        event = kit.parse(adapter, _lines(line)).events[0]
        assert event.kind == EventKind.ERROR
        expected = "server" if error == "unknown" else kind
        assert event.data["error_kind"] == expected


def test_usage_limit_plain_text(kit) -> None:
    adapter = kit.make_adapter("claude")
    stdout = _lines(NOT_LOGGED_IN_197[0], "Claude AI usage limit reached|1750000000")
    parsed = kit.parse(adapter, stdout)
    assert parsed.kinds() == ["init", "raw", "error"]
    assert parsed.of("error")[0].data["error_kind"] == "rate_limit"
    outcome = adapter.judge(kit.evidence(parsed, 1, stdout))
    assert outcome.status == RunStatus.FAILED
    assert "usage limit" in outcome.message


def test_ignored_and_unknown_events(kit) -> None:
    stdout = _lines(
        _event(type="stream_event", event={"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hel"}}),
        _event(type="stream_event", event={"type": "content_block_delta", "delta": {"type": "text_delta", "text": "lo"}}),
        _event(type="system", subtype="status", status="requesting"),
        _event(type="system", subtype="compact_boundary"),
        _event(type="brand_new_type", value=1),
        '{"type": "assistant", "message": "not a dict"}',
        '{"type": "user", "message": {"content": [1, null, {"type": "tool_result"}]}}',
        '{"type": "result"}',
        "[1, 2, 3]",
        "plain words",
    )
    parsed = kit.parse(kit.make_adapter("claude"), stdout)
    assert parsed.kinds() == ["status", "status", "status", "tool_result", "result", "raw", "raw"]
    assert parsed.of("status")[2].text == "claude event brand_new_type"


def test_event_written_into_another_line(kit) -> None:
    # Users of Claude Code 2.1.74 reported this stdout: a rate_limit_event written into the
    # middle of an assistant line, so the assistant line arrives in two pieces.
    whole = _assistant([{"type": "text", "text": "first part and second part"}])
    inserted = _event(type="rate_limit_event", rate_limit_info={"status": "rejected", "rateLimitType": "five_hour"})
    cut = whole.index("and second")
    stdout = _lines(whole[:cut] + inserted, whole[cut:], _result())
    parsed = kit.parse(kit.make_adapter("claude"), stdout)
    assert parsed.kinds() == ["rate_limit", "text", "result"]
    assert parsed.of("text")[0].text == "first part and second part"
