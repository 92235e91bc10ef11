"""Codex adapter: argv, exec --json parsing and judging, on lines copied from codex-cli 0.171.0 runs."""

from __future__ import annotations

import json
from pathlib import Path

from aipass_tui.core.models import RunStatus


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


OFFLINE_60S = (
    '{"type":"thread.started","thread_id":"01a242b2-0eaa-7a73-9985-fdae948a9278"}',
    '{"type":"turn.started"}',
    '{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"error","message":"Reconnecting... 3/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"error","message":"Reconnecting... 4/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"error","message":"Reconnecting... 5/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Falling back from WebSockets to HTTPS transport. stream disconnected before completion: failed to lookup address information: Try again"}}',
)

OFFLINE_300S = (
    '{"type":"thread.started","thread_id":"01a242b4-2f9d-7192-99db-f0a4255c0d35"}',
    '{"type":"turn.started"}',
    '{"type":"error","message":"Reconnecting... 2/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"error","message":"Reconnecting... 3/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"error","message":"Reconnecting... 4/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"error","message":"Reconnecting... 5/5 (stream disconnected before completion: failed to lookup address information: Try again)"}',
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Falling back from WebSockets to HTTPS transport. stream disconnected before completion: failed to lookup address information: Try again"}}',
    '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}',
    '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}',
    '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}',
    '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}',
    '{"type":"error","message":"Reconnecting... waiting for network (Connection failed: error sending request)"}',
)

OUTSIDE_REPO_STDERR = (
    'WARNING: proceeding, even though we could not create PATH aliases: Refusing to create helper binaries under temporary dir "/tmp" (codex_home: AbsolutePathBuf("<scratch>/runs/x_norepo/home/.codex"))',
    'Reading additional input from stdin...',
    'Not inside a trusted directory and --skip-git-repo-check was not specified.',
)

UNKNOWN_OPTION_STDERR = (
    'WARNING: proceeding, even though we could not create PATH aliases: Refusing to create helper binaries under temporary dir "/tmp" (codex_home: AbsolutePathBuf("<scratch>/runs/x_badflag/home/.codex"))',
    "error: unexpected argument '--bogus' found",
    '',
    "  tip: to pass '--bogus' as a value, use '-- --bogus'",
    '',
    'Usage: codex exec [OPTIONS] [PROMPT]',
    '       codex exec [OPTIONS] <COMMAND> [ARGS]',
    '',
    "For more information, try '--help'.",
)


def _j(**fields: object) -> str:
    return json.dumps(fields)


def _item(phase: str, **item: object) -> str:
    return _j(type=f"item.{phase}", item=item)


HEALTHY = (
    _j(type="thread.started", thread_id="01a242b2-aaaa"),
    _j(type="turn.started"),
    _item("completed", id="item_0", type="reasoning", text="**Looking at files**"),
    _item("started", id="item_1", type="todo_list", items=[{"text": "read", "completed": False}, {"text": "fix", "completed": False}]),
    _item("completed", id="item_2", type="agent_message", text="I'll check the tests."),
    _item("started", id="item_3", type="command_execution", command="bash -lc ls", aggregated_output="", exit_code=None, status="in_progress"),
    _item("completed", id="item_3", type="command_execution", command="bash -lc ls", aggregated_output="a.py\n", exit_code=0, status="completed"),
    _item("completed", id="item_4", type="file_change", changes=[{"path": "a.py", "kind": "update"}, {"path": "b.py", "kind": "add"}], status="completed"),
    _item("updated", id="item_1", type="todo_list", items=[{"text": "read", "completed": True}, {"text": "fix", "completed": False}]),
    _item("completed", id="item_1", type="todo_list", items=[{"text": "read", "completed": True}, {"text": "fix", "completed": False}]),
    _item("completed", id="item_5", type="agent_message", text="Fixed the bug."),
    _j(type="turn.completed", usage={"input_tokens": 20000, "cached_input_tokens": 15000, "output_tokens": 1000}),
)


# -- argv ----------------------------------------------------------------------------------------


def test_argv_default(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("codex", binary="/opt/codex")
    argv = adapter.build_argv(kit.context("fix it", tmp_path))
    assert argv == ["/opt/codex", "exec", "--json", "--sandbox", "workspace-write", "fix it"]


def test_argv_model_args_and_resume(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("codex", model="gpt-5-codex", args=["--skip-git-repo-check"])
    argv = adapter.build_argv(kit.context("-v please", tmp_path, resume_session="thread-1"))
    assert argv[1:] == [
        "exec", "--json", "-m", "gpt-5-codex", "--sandbox", "workspace-write", "--skip-git-repo-check",
        "resume", "thread-1", " -v please",
    ]


def test_argv_keeps_configured_sandbox(kit, tmp_path: Path) -> None:
    for args in (["--sandbox", "read-only"], ["-s", "danger-full-access"], ["--sandbox=read-only"], ["--yolo"],
                 ["--dangerously-bypass-approvals-and-sandbox"], ["-c", "sandbox_mode=read-only"]):
        argv = kit.make_adapter("codex", args=args).build_argv(kit.context("x", tmp_path))
        assert "workspace-write" not in argv, args
        assert argv[-1 - len(args) : -1] == args


# -- recorded offline runs -------------------------------------------------------------------------


def test_offline_reconnects_are_retries(kit) -> None:
    adapter = kit.make_adapter("codex")
    parsed = kit.parse(adapter, _lines(*OFFLINE_300S))
    assert parsed.kinds() == ["init", "status"] + ["retry"] * 4 + ["error"] + ["retry"] * 5
    first = parsed.of("retry")[0]
    assert first.data == {"attempt": 2, "max_retries": 5, "error_kind": "network"}
    assert parsed.of("retry")[-1].data["attempt"] is None
    warning = parsed.of("error")[0]
    assert warning.data == {"error_kind": "network", "severity": "warning"}
    assert parsed.summary.session_id == "01a242b4-2f9d-7192-99db-f0a4255c0d35"
    assert parsed.summary.retrying is True
    assert parsed.summary.result_is_error is None


def test_offline_run_timed_out(kit) -> None:
    adapter = kit.make_adapter("codex")
    stdout = _lines(*OFFLINE_60S)
    outcome = kit.judge_output(adapter, stdout, -15, stop_requested="timeout")
    assert outcome.status == RunStatus.TIMED_OUT
    assert outcome.message.endswith("while codex was reconnecting to the API: check the network connection")


def test_outside_a_repository(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("codex"), b"", 1, _lines(*OUTSIDE_REPO_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("codex refuses to run outside a git repository")
    assert '"--skip-git-repo-check"' in outcome.message


def test_unknown_option(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("codex"), b"", 2, _lines(*UNKNOWN_OPTION_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message == "codex rejected its command line: error: unexpected argument '--bogus' found (check the agent's args)"


def test_sigint_exit_1_without_final_event(kit) -> None:
    stderr = _lines(OUTSIDE_REPO_STDERR[0], "Reading additional input from stdin...")
    outcome = kit.judge_output(kit.make_adapter("codex"), _lines(*OFFLINE_60S[:2]), 1, stderr)
    assert outcome.status == RunStatus.FAILED
    assert outcome.message == "codex exited with code 1 before it finished its turn"


# -- a healthy turn --------------------------------------------------------------------------------


def test_healthy_turn(kit) -> None:
    adapter = kit.make_adapter("codex", price_per_mtok=(1.25, 10.0))
    parsed = kit.parse(adapter, _lines(*HEALTHY))
    assert parsed.kinds() == [
        "init", "status", "thinking", "todo", "text", "tool_use", "tool_result", "tool_result", "todo", "text", "usage", "result",
    ]
    shell_use, shell_result = parsed.of("tool_use")[0], parsed.of("tool_result")[0]
    assert shell_use.text == "shell: bash -lc ls"
    assert shell_result.data == {"tool_use_id": "item_3", "status": "completed", "tool": "shell", "exit_code": 0, "is_error": False}
    change = parsed.of("tool_result")[1]
    assert change.data["paths"] == ["a.py", "b.py"]
    assert change.text == "update a.py\nadd b.py"
    assert parsed.of("todo")[1].data["items"] == [{"text": "read", "status": "completed"}, {"text": "fix", "status": "pending"}]
    usage = parsed.of("usage")[0].data
    assert usage["cost_usd"] == (20000 * 1.25 + 1000 * 10.0) / 1_000_000
    assert parsed.of("result")[0].text == "Fixed the bug."
    assert parsed.summary.cost_usd == usage["cost_usd"]
    assert parsed.summary.input_tokens == 20000

    assert adapter.judge(kit.evidence(parsed, 0)).status == RunStatus.SUCCEEDED


def test_no_cost_without_price(kit) -> None:
    parsed = kit.parse(kit.make_adapter("codex"), _lines(*HEALTHY))
    assert "cost_usd" not in parsed.of("usage")[0].data
    assert parsed.summary.cost_usd == 0.0


def test_success_after_warnings_exit_1(kit) -> None:
    adapter = kit.make_adapter("codex")
    stdout = _lines(*OFFLINE_60S, *HEALTHY[2:])
    outcome = kit.judge_output(adapter, stdout, 1)
    assert outcome.status == RunStatus.SUCCEEDED
    assert outcome.message.startswith("finished, but codex exited with code 1 after reporting: Falling back")


def test_turn_failed_kinds(kit) -> None:
    adapter = kit.make_adapter("codex")
    cases = [
        ("unexpected status 401 Unauthorized: Missing bearer or basic authentication in header", "auth", "run `codex login`"),
        ("exceeded retry limit, last status: 429 Too Many Requests", "rate_limit", "rate or usage limit"),
        ("Quota exceeded. Check your plan and billing details: insufficient_quota", "billing", "no quota left"),
        ("stream error: 500 Internal Server Error", "server", "server error"),
        ("something else broke", "unknown", "codex reported an error: something else broke"),
    ]
    for message, kind, words in cases:
        stdout = _lines(HEALTHY[0], HEALTHY[1], _j(type="turn.failed", error={"message": message}))
        parsed = kit.parse(adapter, stdout)
        assert parsed.kinds() == ["init", "status", "error", "result"]
        assert parsed.of("result")[0].data == {"is_error": True, "error_kind": kind}
        outcome = adapter.judge(kit.evidence(parsed, 1, stdout))
        assert outcome.status == RunStatus.FAILED
        assert words in outcome.message


def test_fatal_top_level_error(kit) -> None:
    adapter = kit.make_adapter("codex")
    stdout = _lines(HEALTHY[0], _j(type="error", message="unexpected status 401 Unauthorized"))
    parsed = kit.parse(adapter, stdout)
    assert parsed.of("error")[0].data["error_kind"] == "auth"
    outcome = adapter.judge(kit.evidence(parsed, 1, stdout))
    assert outcome.status == RunStatus.FAILED
    assert "codex login" in outcome.message


def test_usage_limit_on_stderr(kit) -> None:
    stderr = _lines("ERROR: You've hit your usage limit. Upgrade to Pro (https://chatgpt.com/explore/pro), or try again in 4 days.")
    outcome = kit.judge_output(kit.make_adapter("codex"), _lines(*HEALTHY[:2]), 1, stderr)
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("codex hit a rate or usage limit")


def test_other_items(kit) -> None:
    stdout = _lines(
        _item("completed", id="c1", type="command_execution", command="false", aggregated_output="", exit_code=1, status="failed"),
        _item("started", id="m1", type="mcp_tool_call", server="docs", tool="search", arguments={"q": "x"}, result=None, error=None,
              status="in_progress"),
        _item("completed", id="m1", type="mcp_tool_call", server="docs", tool="search", arguments={"q": "x"},
              result={"content": [{"type": "text", "text": "found"}], "structured_content": None}, error=None, status="completed"),
        _item("completed", id="m2", type="mcp_tool_call", server="docs", tool="get", arguments={}, result=None,
              error={"message": "boom"}, status="failed"),
        _item("started", id="w1", type="web_search", query="textual widgets", action="search"),
        _item("completed", id="w1", type="web_search", query="textual widgets", action="search"),
        _item("completed", id="p1", type="plan", text="1. read 2. fix"),
        _item("completed", id="x1", type="something_new"),
        _j(type="item.plan.delta", item_id="p1", delta="more"),
        _j(type="request_user_input", id="r", call_id="c", questions=[{"question": "Which file?"}]),
        _j(type="turn.exotic"),
    )
    parsed = kit.parse(kit.make_adapter("codex"), stdout)
    assert parsed.kinds() == [
        "tool_use", "tool_result", "tool_use", "tool_result", "tool_use", "tool_result", "tool_use", "tool_result",
        "status", "status", "status", "status",
    ]
    results = parsed.of("tool_result")
    assert results[0].data["is_error"] is True
    assert results[1].text == "found"
    assert parsed.of("tool_use")[1].text == 'docs.search: {"q": "x"}'
    assert results[2].text == "boom"
    assert results[2].data["is_error"] is True
    assert parsed.of("tool_use")[3].text == "web_search: textual widgets"
    assert parsed.of("status")[2].text == "codex asked for input: Which file?"


def test_todo_list_repeats_are_dropped(kit) -> None:
    same = dict(id="t", type="todo_list", items=[{"text": "a", "completed": False}])
    parsed = kit.parse(kit.make_adapter("codex"), _lines(_item("started", **same), _item("updated", **same)))
    assert parsed.kinds() == ["todo"]
