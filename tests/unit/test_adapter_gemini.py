"""Gemini adapter: argv, stream-json parsing and judging, on output copied from gemini-cli 0.61.0 runs."""

from __future__ import annotations

import json
from pathlib import Path

from aipass_tui.core.models import RunStatus


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


NO_AUTH_STDERR = (
    'Please set an Auth method in your <scratch>/runs/g_streamjson/home/.gemini/settings.json or specify one of the following environment variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA',
)

NO_AUTH_JSON_STDERR = (
    '{',
    '  "session_id": "2872f6f4-d185-460b-a066-176bdfeed1a1",',
    '  "error": {',
    '    "type": "Error",',
    '    "message": "Please set an Auth method in your <scratch>/runs/g_json/home/.gemini/settings.json or specify one of the following environment variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA",',
    '    "code": 41',
    '  }',
    '}',
)

UNTRUSTED_STDERR = (
    '\x1b[31mGemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, or trust this directory in interactive mode. For more details, see https://geminicli.com/docs/cli/trusted-folders/#headless-and-automated-environments\x1b[0m',
)

OFFLINE_STDOUT = (
    '{"type":"init","timestamp":"2026-12-04T20:19:37.723Z","session_id":"72e26be6-f951-4ed8-aba4-f36e5c284d06","model":"auto"}',
    '{"type":"message","timestamp":"2026-12-04T20:19:37.725Z","role":"user","content":"say hi"}',
    '{"type":"result","timestamp":"2026-12-04T20:24:22.111Z","status":"error","error":{"type":"unknown","message":"[API Error: exception TypeError: fetch failed sending request]"},"stats":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0,"duration_ms":0,"tool_calls":0,"models":{"gemini-3.5-flash-lite":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0},"gemini-3.1-pro-preview":{"total_tokens":0,"input_tokens":0,"output_tokens":0,"cached":0,"input":0}}}}',
)

OFFLINE_JSON_STDERR = (
    'Warning: True color (24-bit) support not detected. Using a terminal with true color enabled will result in a better visual experience.',
    'Ripgrep is not available. Falling back to GrepTool.',
    'Attempt 1 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 2 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 3 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 4 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Error generating content via API. Full report available at: $TMPDIR/gemini-client-error-generateJson-api-2026-12-04T20-20-43-932Z.json Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    '[Routing] NumericalClassifierStrategy failed: Error: Failed to generate content: exception TypeError: fetch failed sending request',
    '[… 9 stack-frame lines "    at …" omitted …]',
    'Attempt 1 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 2 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 3 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 4 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 5 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    '(node:1620) MaxListenersExceededWarning: Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]. MaxListeners is 10. Use events.setMaxListeners() to increase limit',
    '(Use `node --trace-warnings ...` to show where the warning was created)',
    'Attempt 6 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 7 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 8 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Attempt 9 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    'Error when talking to Gemini API Full report available at: $TMPDIR/gemini-client-error-Turn.run-sendMessageStream-2026-12-04T20-24-14-981Z.json Error: exception TypeError: fetch failed sending request',
    '[… 10 stack-frame lines "    at …" omitted …]',
    '{',
    '  "session_id": "4445494b-93e6-489d-846d-630c568ff26a",',
    '  "error": {',
    '    "type": "Error",',
    '    "message": "exception TypeError: fetch failed sending request",',
    '    "code": 1',
    '  }',
    '}',
)

BAD_OPTION_STDERR = (
    'Invalid values:',
    '  Argument: output-format, Given: "bogus", Choices: "text", "json", "stream-json"',
    'Usage: gemini [options] [command]',
    '',
)


def _e(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, "timestamp": "2026-12-04T20:19:37.723Z", **fields})


def _delta(text: str) -> str:
    return _e("message", role="assistant", content=text, delta=True)


HEALTHY = (
    OFFLINE_STDOUT[0],
    OFFLINE_STDOUT[1],
    _delta("I'll list "),
    _delta("the files."),
    _e("tool_use", tool_name="run_shell_command", tool_id="run_shell_command-1", parameters={"command": "ls"}),
    _e("tool_result", tool_id="run_shell_command-1", status="success", output="a.py\n"),
    _e("tool_use", tool_name="write_todos", tool_id="write_todos-2",
       parameters={"todos": [{"description": "read", "status": "completed"}, {"description": "fix", "status": "in_progress"},
                             {"description": "drop", "status": "cancelled"}]}),
    _e("tool_result", tool_id="write_todos-2", status="error", error={"type": "invalid", "message": "bad todo"}),
    _e("error", severity="warning", message="Loop detected, retrying"),
    _delta("Done "),
    _delta("now."),
    _e("result", status="success", stats={"total_tokens": 1500, "input_tokens": 1200, "output_tokens": 300, "cached": 200,
                                          "input": 1000, "duration_ms": 900, "tool_calls": 2}),
)


# -- argv ----------------------------------------------------------------------------------------


def test_argv(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("gemini", binary="/opt/gemini", model="flash", args=["--skip-trust"])
    argv = adapter.build_argv(kit.context("add tests", tmp_path, resume_session="latest"))
    assert argv == ["/opt/gemini", "-p", "add tests", "--output-format", "stream-json", "-m", "flash", "--resume", "latest", "--skip-trust"]


def test_argv_minimal(kit, tmp_path: Path) -> None:
    argv = kit.make_adapter("gemini").build_argv(kit.context("-x", tmp_path))
    assert argv[1:] == ["-p", " -x", "--output-format", "stream-json"]


# -- recorded failures -----------------------------------------------------------------------------


def test_no_auth_exit_41(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("gemini"), b"", 41, _lines(*NO_AUTH_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith(
        "gemini is not authenticated: set GEMINI_API_KEY or run `gemini` once in a terminal to log in (gemini's message: Please set an Auth method"
    )


def test_no_auth_json_error_on_stderr(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("gemini"), b"", 41, _lines(*NO_AUTH_JSON_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("gemini is not authenticated")


def test_auth_text_without_exit_41(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("gemini"), b"", 1, _lines(*NO_AUTH_STDERR))
    assert outcome.message.startswith("gemini is not authenticated")


def test_untrusted_folder_exit_55(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("gemini"), b"", 55, _lines(*UNTRUSTED_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert '"--skip-trust"' in outcome.message
    assert "trust the folder" in outcome.message


def test_offline_result_error(kit) -> None:
    adapter = kit.make_adapter("gemini")
    stdout = _lines(*OFFLINE_STDOUT)
    parsed = kit.parse(adapter, stdout)
    assert parsed.kinds() == ["init", "usage", "result"]
    assert parsed.summary.model == "auto"
    result = parsed.of("result")[0]
    assert result.data["error_kind"] == "network"
    assert result.text == "[API Error: exception TypeError: fetch failed sending request]"
    outcome = adapter.judge(kit.evidence(parsed, 1, stdout, _lines(*OFFLINE_JSON_STDERR)))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("gemini could not reach the Gemini API: check the network connection")


def test_offline_json_format_error_on_stderr(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("gemini"), b"", 1, _lines(*OFFLINE_JSON_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message == (
        "gemini could not reach the Gemini API: check the network connection "
        "(gemini's message: exception TypeError: fetch failed sending request)"
    )


def test_bad_option(kit) -> None:
    outcome = kit.judge_output(kit.make_adapter("gemini"), b"", 1, _lines(*BAD_OPTION_STDERR))
    assert outcome.status == RunStatus.FAILED
    assert outcome.message == "gemini rejected its command line: Invalid values: (check the agent's args)"


def test_signalled_exit_0_without_result(kit) -> None:
    adapter = kit.make_adapter("gemini")
    stdout = _lines(*OFFLINE_STDOUT[:2])
    unexplained = kit.judge_output(adapter, stdout, 0)
    assert unexplained.status == RunStatus.FAILED
    assert "exited without a result" in unexplained.message
    stopped = kit.judge_output(adapter, stdout, 0, stop_requested="stop")
    assert stopped.status == RunStatus.STOPPED


def test_exit_codes(kit) -> None:
    adapter = kit.make_adapter("gemini")
    stderr = _lines("Warning: True color (24-bit) support not detected.", "Error: sandbox image not found")
    expected = {
        42: "gemini rejected its input",
        44: "gemini could not start its sandbox",
        52: "gemini's configuration is invalid",
        53: "gemini reached its turn limit",
        54: "a gemini tool failed",
        130: "gemini was cancelled",
    }
    for code, words in expected.items():
        outcome = kit.judge_output(adapter, b"", code, stderr)
        assert outcome.status == RunStatus.FAILED
        assert outcome.message.startswith(words), code
    assert "Error: sandbox image not found" in kit.judge_output(adapter, b"", 44, stderr).message


def test_quota_on_stderr(kit) -> None:
    stderr = _lines("You have exhausted your daily quota on this model.")
    outcome = kit.judge_output(kit.make_adapter("gemini"), _lines(*OFFLINE_STDOUT[:2]), 1, stderr)
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("gemini hit a rate limit or ran out of quota")


# -- a healthy session ----------------------------------------------------------------------------


def test_healthy_session(kit) -> None:
    adapter = kit.make_adapter("gemini", price_per_mtok=(0.3, 2.5))
    parsed = kit.parse(adapter, _lines(*HEALTHY))
    assert parsed.kinds() == ["init", "text", "tool_use", "tool_result", "tool_use", "todo", "tool_result", "status", "text", "usage", "result"]
    assert [e.text for e in parsed.of("text")] == ["I'll list the files.", "Done now."]
    assert parsed.of("tool_use")[0].text == "run_shell_command: ls"
    assert parsed.of("tool_result")[0].data == {"tool_use_id": "run_shell_command-1", "is_error": False, "tool": "run_shell_command"}
    assert parsed.of("tool_result")[1].text == "bad todo"
    assert parsed.of("tool_result")[1].data["is_error"] is True
    assert parsed.of("todo")[0].data["items"] == [
        {"text": "read", "status": "completed"}, {"text": "fix", "status": "in_progress"}, {"text": "drop", "status": "completed"},
    ]
    assert parsed.of("status")[0].text == "warning: Loop detected, retrying"
    assert parsed.of("usage")[0].data["cost_usd"] == (1200 * 0.3 + 300 * 2.5) / 1_000_000
    assert parsed.of("result")[0].text == "Done now."
    assert parsed.summary.last_message == "Done now."

    assert adapter.judge(kit.evidence(parsed, 0)).status == RunStatus.SUCCEEDED
    late = adapter.judge(kit.evidence(parsed, 1))
    assert late.status == RunStatus.SUCCEEDED
    assert late.message == "finished, but gemini then exited with code 1"


def test_deltas_flushed_at_close(kit) -> None:
    parsed = kit.parse(kit.make_adapter("gemini"), _lines(OFFLINE_STDOUT[0], _delta("cut "), _delta("short")))
    assert parsed.kinds() == ["init", "text"]
    assert parsed.of("text")[0].text == "cut short"


def test_deltas_flushed_before_plain_line(kit) -> None:
    parsed = kit.parse(kit.make_adapter("gemini"), _lines(_delta("one "), _delta("two"), "not json", _delta("three")))
    assert [(e.kind.value, e.text) for e in parsed.events] == [("text", "one two"), ("raw", "not json"), ("text", "three")]


def test_whole_assistant_message_and_error(kit) -> None:
    stdout = _lines(
        _e("message", role="assistant", content="complete message"),
        _e("error", severity="error", message="429 rate limit"),
        _e("brand_new", x=1),
    )
    parsed = kit.parse(kit.make_adapter("gemini"), stdout)
    assert parsed.kinds() == ["text", "error", "status"]
    assert parsed.of("error")[0].data["error_kind"] == "rate_limit"


def test_timeout_while_retrying(kit) -> None:
    stderr = _lines(*OFFLINE_JSON_STDERR[:6])
    outcome = kit.judge_output(kit.make_adapter("gemini"), _lines(*OFFLINE_STDOUT[:2]), 0, stderr, stop_requested="timeout")
    assert outcome.status == RunStatus.TIMED_OUT
    assert outcome.message.endswith("while gemini was retrying the API: check the network connection")
