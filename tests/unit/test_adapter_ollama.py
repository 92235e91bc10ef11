"""Ollama adapter: argv, the model check, and judging ``ollama run`` output and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aipass_tui.core.models import RunStatus


def _lines(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_argv(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("ollama", binary="/usr/bin/ollama", model="qwen2.5-coder:7b", args=["--nowordwrap"])
    argv = adapter.build_argv(kit.context("explain main.py", tmp_path))
    assert argv == ["/usr/bin/ollama", "run", "qwen2.5-coder:7b", "--nowordwrap", "explain main.py"]


def test_argv_prompt_starting_with_dash(kit, tmp_path: Path) -> None:
    argv = kit.make_adapter("ollama", model="llama3.2").build_argv(kit.context("-h", tmp_path))
    assert argv[-1] == " -h"


def test_missing_model(kit, tmp_path: Path) -> None:
    adapter = kit.make_adapter("ollama")
    with pytest.raises(ValueError) as caught:
        adapter.build_argv(kit.context("x", tmp_path))
    assert 'agent "ollama-test"' in str(caught.value)
    assert "[agents.ollama-test]" in str(caught.value)
    assert 'model = "llama3.2"' in str(caught.value)


def test_server_not_running(kit) -> None:
    stderr = _lines("Error: could not connect to ollama server, run 'ollama serve' to start it")
    outcome = kit.judge_output(kit.make_adapter("ollama", model="llama3.2"), b"", 1, stderr)
    assert outcome.status == RunStatus.FAILED
    assert outcome.message.startswith("ollama could not reach its server: start the ollama server with `ollama serve`")


def test_old_server_message(kit) -> None:
    stderr = _lines("Error: could not connect to ollama app, is it running?")
    outcome = kit.judge_output(kit.make_adapter("ollama", model="llama3.2"), b"", 1, stderr)
    assert "`ollama serve`" in outcome.message


def test_model_not_found(kit) -> None:
    adapter = kit.make_adapter("ollama", model="nosuch:1b")
    for line in ("Error: pull model manifest: file does not exist", 'Error: model "nosuch:1b" not found, try pulling it first'):
        outcome = kit.judge_output(adapter, b"", 1, _lines("pulling manifest", line))
        assert outcome.status == RunStatus.FAILED
        assert outcome.message.startswith("ollama has no model nosuch:1b: pull the model with `ollama pull nosuch:1b`")


def test_error_line_on_stdout(kit) -> None:
    adapter = kit.make_adapter("ollama", model="llama3.2")
    stdout = _lines("Error: could not connect to ollama server, run 'ollama serve' to start it")
    parsed = kit.parse(adapter, stdout)
    assert parsed.kinds() == ["raw", "error"]
    assert parsed.of("error")[0].data["error_kind"] == "server_down"
    assert adapter.judge(kit.evidence(parsed, 1, stdout)).status == RunStatus.FAILED


def test_response_that_mentions_an_error(kit) -> None:
    adapter = kit.make_adapter("ollama", model="llama3.2")
    stdout = _lines("The log shows:", "Error: config.toml not found", "so create the file first.")
    parsed = kit.parse(adapter, stdout)
    assert parsed.of("error")[0].data["error_kind"] == "model"
    outcome = adapter.judge(kit.evidence(parsed, 0, stdout))
    assert outcome.status == RunStatus.SUCCEEDED
    assert parsed.kinds().count("raw") == 3


def test_plain_response(kit) -> None:
    adapter = kit.make_adapter("ollama", model="llama3.2")
    stdout = _lines("\x1b[1mHere\x1b[0m is the fix:", "", "use a dict.")
    parsed = kit.parse(adapter, stdout)
    assert [e.text for e in parsed.events] == ["Here is the fix:", "use a dict."]
    assert adapter.judge(kit.evidence(parsed, 0, stdout)).message == "finished"


def test_other_failures(kit) -> None:
    adapter = kit.make_adapter("ollama", model="llama3.2")
    assert kit.judge_output(adapter, b"", 0).message == "ollama exited without printing a response"
    assert kit.judge_output(adapter, b"", 2, _lines("panic: boom")).message == "ollama exited with code 2: panic: boom"
    assert kit.judge_output(adapter, b"", 1, _lines("Error: unauthorized")).message == "ollama failed: Error: unauthorized"
    assert kit.judge_output(adapter, b"x\n", -15, stop_requested="stop").status == RunStatus.STOPPED
