"""The fake agent CLIs, run as real subprocesses with the argv each adapter builds.

Each run's stdout goes through the matching adapter's parser and its judge weighs the real exit
code, so these tests check the fakes and the adapters against each other.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from aipass_tui.config import AgentConfig
from aipass_tui.core.agents.command import CommandAdapter
from aipass_tui.core.models import RunStatus

FAKE_SCRIPT = Path(__file__).resolve().parents[1] / "fakes" / "fake_agent.py"
CONFIG = {"ollama": {"model": "llama3.2"}}
FLAVORS = ("claude", "codex", "gemini", "aider", "ollama")


def _wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Running:
    """A fake CLI started in the background, with its output collected by reader threads."""

    def __init__(self, kit, kind: str, prompt: str, cwd: Path, stdin: int = subprocess.DEVNULL, **config: object) -> None:
        self.adapter = kit.make_adapter(kind, **{**CONFIG.get(kind, {}), **config})
        ctx = kit.context(prompt, cwd)
        self.proc = subprocess.Popen(
            self.adapter.build_argv(ctx),
            cwd=cwd,
            env=kit.fake_env(self.adapter, ctx),
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _pump(stream, buffer: bytearray) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            buffer.extend(chunk)

    def kill(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)
        return code


def _run(kit, kind: str, prompt: str, cwd: Path, **config: object):
    return kit.run_fake(kind, prompt, cwd, **{**CONFIG.get(kind, {}), **config})


# -- one table of scenarios and outcomes ----------------------------------------------------------

EXPECTED = {
    "ok": {k: (RunStatus.SUCCEEDED, "finished") for k in FLAVORS},
    "auth_fail": {
        "claude": (RunStatus.FAILED, "claude is not logged in: run `claude` once in a terminal"),
        "codex": (RunStatus.FAILED, "run `codex login` in a terminal"),
        "gemini": (RunStatus.FAILED, "gemini is not authenticated: set GEMINI_API_KEY"),
        "aider": (RunStatus.FAILED, "aider could not authenticate with the model provider"),
        "ollama": (RunStatus.FAILED, "ollama failed: Error: unauthorized"),
    },
    "rate_limit": {
        "claude": (RunStatus.FAILED, "claude hit a rate or usage limit"),
        "codex": (RunStatus.FAILED, "codex hit a rate or usage limit"),
        "gemini": (RunStatus.FAILED, "gemini hit a rate limit or ran out of quota"),
        "aider": (RunStatus.FAILED, "aider was rate limited"),
        "ollama": (RunStatus.FAILED, "ollama failed: Error: 429"),
    },
    "usage_limit_text": {
        "claude": (RunStatus.FAILED, "claude hit a rate or usage limit"),
        "codex": (RunStatus.FAILED, "codex hit a rate or usage limit"),
        "gemini": (RunStatus.FAILED, "gemini hit a rate limit or ran out of quota"),
        "aider": (RunStatus.FAILED, "aider was rate limited"),
        "ollama": (RunStatus.FAILED, "usage limit"),
    },
    "exit0_fail": {
        "claude": (RunStatus.FAILED, "claude is not logged in"),
        "codex": (RunStatus.FAILED, "codex login"),
        "gemini": (RunStatus.FAILED, "gemini is not authenticated"),
        "aider": (RunStatus.FAILED, "aider could not authenticate"),
        "ollama": (RunStatus.FAILED, "unauthorized"),
    },
    "success_exit1": {
        "claude": (RunStatus.SUCCEEDED, "finished, but claude then exited with code 1"),
        "codex": (RunStatus.SUCCEEDED, "finished, but codex exited with code 1"),
        "gemini": (RunStatus.SUCCEEDED, "finished, but gemini then exited with code 1"),
        "aider": (RunStatus.FAILED, "aider exited with code 1"),
        "ollama": (RunStatus.FAILED, "ollama exited with code 1"),
    },
    "crash": {
        "claude": (RunStatus.FAILED, "claude was killed by signal 9"),
        "codex": (RunStatus.FAILED, "codex was killed by signal 9"),
        "gemini": (RunStatus.FAILED, "gemini was killed by signal 9"),
        "aider": (RunStatus.FAILED, "aider exited with signal 9"),
        "ollama": (RunStatus.FAILED, "ollama exited with signal 9"),
    },
}
for _scenario in ("interleave", "no_newline", "utf8_split", "huge_json", "stdin_wait"):
    EXPECTED[_scenario] = EXPECTED["ok"]
CASES = [(kind, scenario) for scenario, by_kind in EXPECTED.items() for kind in by_kind]


@pytest.mark.parametrize(("kind", "scenario"), CASES, ids=[f"{k}-{s}" for k, s in CASES])
def test_scenario_outcome(kit, repo: Path, kind: str, scenario: str) -> None:
    run = _run(kit, kind, f"Do the work. scenario={scenario}", repo)
    status, words = EXPECTED[scenario][kind]
    outcome = run.outcome()
    assert outcome.status == status, (outcome, run.stderr[-500:])
    assert words in outcome.message
    if scenario == "crash":
        assert run.exit_code == -signal.SIGKILL
        assert run.parsed().of("raw"), "the cut-off last line is delivered at close"


def test_ok_session_events(kit, repo: Path) -> None:
    run = _run(kit, "claude", "Fix it. subagents=2 lines=3", repo, model="opus")
    parsed = run.parsed()
    summary = parsed.summary
    assert summary.model == "opus"
    assert summary.session_id == "0b5e2a4e-1d7c-4f7e-9a51-6a7f3c1d2e90"
    assert [item.status for item in summary.todo] == ["completed"] * 3
    assert len(summary.subagents) == 2
    assert all(sub.status == "done" and sub.events >= 4 for sub in summary.subagents.values())
    assert summary.cost_usd > 0
    assert summary.input_tokens > 0
    assert summary.result_text == "Done: the request is complete."
    assert [e.text for e in parsed.of("text") if e.text.startswith("progress line")] == ["progress line 1", "progress line 2", "progress line 3"]


@pytest.mark.parametrize("kind", ["codex", "gemini"])
def test_ok_session_todo_and_tools(kit, repo: Path, kind: str) -> None:
    parsed = _run(kit, kind, "Fix it.", repo).parsed()
    assert [item.status for item in parsed.summary.todo] == ["completed"] * 3
    assert parsed.of("tool_use")
    assert parsed.of("tool_result")
    assert parsed.of("usage")


def test_long_line_4_mb(kit, repo: Path) -> None:
    run = _run(kit, "claude", "scenario=long_line", repo)
    assert len(max(run.stdout.split(b"\n"), key=len)) > 4 * 1024 * 1024
    parsed = run.parsed()
    big = [e for e in parsed.of("tool_result") if e.data.get("size")]
    assert big[0].data["size"] == 4 * 1024 * 1024
    assert run.outcome().status == RunStatus.SUCCEEDED


@pytest.mark.parametrize("kind", ["codex", "gemini", "aider"])
def test_long_line_other_flavours(kit, repo: Path, kind: str) -> None:
    run = _run(kit, kind, "scenario=long_line size=300000", repo)
    assert len(max(run.stdout.split(b"\n"), key=len)) >= 300000
    assert run.outcome().status == RunStatus.SUCCEEDED


def test_interleaved_event_is_salvaged(kit, repo: Path) -> None:
    run = _run(kit, "claude", "scenario=interleave", repo)
    parsed = run.parsed()
    assert "This message was cut in two by another event." in [e.text for e in parsed.of("text")]
    assert any("seven_day" in e.text for e in parsed.of("status"))
    assert not parsed.of("raw")


def test_utf8_split_and_bad_bytes(kit, repo: Path) -> None:
    for kind in ("claude", "codex"):
        texts = [e.text for e in _run(kit, kind, "scenario=utf8_split", repo).parsed().of("text")]
        assert "héllo wörld — 日本語 ✓" in texts
        assert any(t.startswith("bad bytes: \ufffd") for t in texts)


def test_slow_output(kit, repo: Path) -> None:
    run = _run(kit, "codex", "scenario=slow rate=40 seconds=0.5", repo)
    lines = [e.text for e in run.parsed().of("text") if e.text.startswith("slow line")]
    assert len(lines) >= 5
    assert lines[0] == "slow line 1"
    assert run.outcome().status == RunStatus.SUCCEEDED


def test_command_agent_text_flavour(kit, repo: Path) -> None:
    config = AgentConfig(kind="command", command=[sys.executable, str(FAKE_SCRIPT), "--flavor", "text", "{prompt}"])
    adapter = CommandAdapter("script", config)
    expected = {"ok": RunStatus.SUCCEEDED, "auth_fail": RunStatus.FAILED, "exit0_fail": RunStatus.SUCCEEDED, "success_exit1": RunStatus.FAILED}
    for scenario, status in expected.items():
        ctx = kit.context(f"work scenario={scenario}", repo)
        proc = subprocess.run(adapter.build_argv(ctx), cwd=repo, env=kit.fake_env(adapter, ctx), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30)
        parsed = kit.parse(adapter, proc.stdout)
        outcome = adapter.judge(kit.evidence(parsed, proc.returncode, proc.stdout, proc.stderr))
        assert outcome.status == status, scenario
    assert parsed.of("raw")[0].text == "working on: work scenario=success_exit1"


# -- knobs ----------------------------------------------------------------------------------------


def test_touch_and_record(kit, repo: Path, tmp_path: Path) -> None:
    record = tmp_path / "starts.log"
    for _ in range(2):
        run = _run(kit, "claude", f"scenario=ok touch=notes/a.txt record={record}", repo)
        assert run.exit_code == 0
    assert record.read_text() == "req-1 run-1\nreq-1 run-1\n"
    assert len((repo / "notes" / "a.txt").read_text().splitlines()) == 2
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert "notes/" in status


def test_scenario_from_environment(kit, repo: Path) -> None:
    env = {"FAKE_AGENT_SCENARIO": "auth_fail"}
    assert kit.run_fake("claude", "plain prompt", repo, env=env).outcome().status == RunStatus.FAILED
    assert kit.run_fake("claude", "prompt scenario=ok", repo, env=env).outcome().status == RunStatus.SUCCEEDED


def test_exit_knob(kit, repo: Path) -> None:
    run = _run(kit, "claude", "scenario=ok exit=3", repo)
    assert run.exit_code == 3
    assert run.outcome().message == "finished, but claude then exited with code 3"


def test_unknown_scenario(kit, repo: Path) -> None:
    run = _run(kit, "claude", "scenario=nonsense", repo)
    assert run.exit_code == 2
    assert b"unknown scenario 'nonsense'" in run.stderr


def test_sleep_and_cpu_knobs(kit, repo: Path) -> None:
    run = _run(kit, "claude", "scenario=ok sleep=0.1 cpu=0.1", repo)
    assert run.outcome().status == RunStatus.SUCCEEDED


# -- faithful command-line checks --------------------------------------------------------------------


def test_claude_needs_verbose(kit, repo: Path) -> None:
    adapter = kit.make_adapter("claude")
    proc = subprocess.run([str(kit.FAKE_BIN / "claude"), "-p", "hi", "--output-format", "stream-json"], cwd=repo,
                          env=kit.fake_env(adapter, kit.context("hi", repo)), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert proc.returncode == 1
    outcome = kit.judge_output(adapter, proc.stdout, proc.returncode, proc.stderr)
    assert outcome.message == (
        "claude rejected its command line: Error: When using --print, --output-format=stream-json requires --verbose "
        "(check the agent's args)"
    )


def test_bad_permission_mode(kit, repo: Path) -> None:
    run = _run(kit, "claude", "hi", repo, permission_mode="bogus")
    assert run.exit_code == 1
    assert run.outcome().message.startswith("claude rejected its command line: error: option '--permission-mode <mode>'")


def test_codex_outside_a_repository(kit, tmp_path: Path) -> None:
    run = _run(kit, "codex", "hi", tmp_path)
    assert run.exit_code == 1
    assert run.outcome().message.startswith("codex refuses to run outside a git repository")
    allowed = _run(kit, "codex", "hi", tmp_path, args=["--skip-git-repo-check"])
    assert allowed.outcome().status == RunStatus.SUCCEEDED


def test_unknown_options(kit, repo: Path) -> None:
    expected = {
        "claude": "claude rejected its command line: error: unknown option '--bogus'",
        "codex": "codex rejected its command line: error: unexpected argument '--bogus' found",
        "gemini": "gemini rejected its command line: Unknown argument: bogus",
        "aider": "aider rejected its command line: aider: error: unrecognized arguments: --bogus",
    }
    for kind, message in expected.items():
        run = _run(kit, kind, "hi", repo, args=["--bogus"])
        assert run.outcome().status == RunStatus.FAILED
        assert run.outcome().message.startswith(message), kind


def test_gemini_untrusted_folder(kit, repo: Path) -> None:
    run = _run(kit, "gemini", "scenario=untrusted", repo)
    assert run.exit_code == 55
    assert '"--skip-trust"' in run.outcome().message
    trusted = _run(kit, "gemini", "scenario=untrusted", repo, args=["--skip-trust"])
    assert trusted.outcome().status == RunStatus.SUCCEEDED


def test_ollama_server_and_model_missing(kit, repo: Path) -> None:
    assert "`ollama serve`" in _run(kit, "ollama", "scenario=no_server", repo).outcome().message
    assert "`ollama pull llama3.2`" in _run(kit, "ollama", "scenario=no_model", repo).outcome().message


# -- runs that do not end on their own -------------------------------------------------------------


def test_claude_waits_for_open_stdin(kit, repo: Path) -> None:
    run = Running(kit, "claude", "scenario=stdin_wait seconds=0.3", repo, stdin=subprocess.PIPE)
    try:
        code = run.proc.wait(timeout=20)
    finally:
        run.kill()
    assert b"Warning: no stdin data received in 3s" in run.stderr
    assert run.adapter.judge(kit.evidence(kit.parse(run.adapter, bytes(run.stdout)), code)).status == RunStatus.SUCCEEDED


def test_codex_blocks_on_open_stdin(kit, repo: Path) -> None:
    run = Running(kit, "codex", "scenario=ok", repo, stdin=subprocess.PIPE)
    try:
        _wait_for(lambda: b"Reading additional input from stdin..." in run.stderr, what="codex to read stdin")
        assert run.proc.poll() is None
        assert not run.stdout
        run.proc.stdin.close()
        code = run.proc.wait(timeout=20)
    finally:
        run.kill()
    assert code == 0
    assert b'"turn.completed"' in run.stdout


@pytest.mark.parametrize(
    ("kind", "marker", "words"),
    [
        ("claude", b'"api_retry"', "while claude was retrying the API"),
        ("codex", b"Reconnecting...", "while codex was reconnecting to the API"),
        ("aider", b"Retrying in", "while aider was retrying the model provider"),
        ("gemini", b"Retrying with backoff", "while gemini was retrying the API"),
    ],
)
def test_retry_storm_until_timeout(kit, repo: Path, kind: str, marker: bytes, words: str) -> None:
    run = Running(kit, kind, "scenario=retry_storm rate=200 lines=8", repo)
    output = run.stderr if kind == "gemini" else run.stdout
    expected = 7 if kind == "codex" else 8  # one of codex's eight notices is an error item
    try:
        _wait_for(lambda: output.count(marker) >= expected, what=f"{kind} retries")
    finally:
        code = run.kill()
    parsed = kit.parse(run.adapter, bytes(run.stdout))
    outcome = run.adapter.judge(kit.evidence(parsed, code, bytes(run.stdout), bytes(run.stderr), stop_requested="timeout"))
    assert outcome.status == RunStatus.TIMED_OUT
    assert words in outcome.message
    if kind != "gemini":
        assert parsed.summary.retry_count == expected


@pytest.mark.parametrize(("kind", "marker"), [("aider", b"Waiting up to 5 minutes"), ("claude", b"[y/N] ")])
def test_login_wait_until_stalled(kit, repo: Path, kind: str, marker: bytes) -> None:
    run = Running(kit, kind, "scenario=login_wait", repo)
    try:
        _wait_for(lambda: marker in run.stdout, what=f"{kind} login prompt")
    finally:
        code = run.kill()
    parsed = kit.parse(run.adapter, bytes(run.stdout))
    outcome = run.adapter.judge(kit.evidence(parsed, code, bytes(run.stdout), stop_requested="stall"))
    assert outcome.status == RunStatus.STOPPED
    if kind == "aider":
        assert "waiting for a browser login" in outcome.message
    else:
        assert parsed.of("raw")[-1].text == "Allow this tool to access the folder? [y/N]"


def test_fork_setsid_child_escapes(kit, repo: Path) -> None:
    run = Running(kit, "claude", "scenario=fork_setsid", repo)
    child = None
    try:
        _wait_for(lambda: b"started its own session" in run.stderr, what="the child's pid")
        child = int(run.stderr.split(b"fake_agent: child ")[1].split()[0])
        assert os.getsid(child) == child
        assert os.getsid(child) != os.getsid(run.proc.pid)
        ignored = int(Path(f"/proc/{child}/status").read_text().split("SigIgn:")[1].split()[0], 16)
        assert ignored & (1 << (signal.SIGTERM - 1))
        assert run.proc.poll() is None
    finally:
        if child is not None:
            os.kill(child, signal.SIGKILL)
        run.kill()
