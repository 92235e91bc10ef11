"""Fake claude, codex, gemini and aider CLIs run through the real orchestrator and git flow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aipass_tui.config import load_settings
from aipass_tui.core.models import RequestStatus, RunStatus
from aipass_tui.core.orchestrator import Orchestrator
from tests.conftest import FAKES, wait_until, write_config

BIN = FAKES / "bin"


def config_for(kinds: list[str], isolation: str = "shared") -> str:
    text = '[limits]\nmax_parallel = 8\nstart_rate = 50\nstop_grace = "0.5s"\n'
    for kind in kinds:
        text += f'\n[agents.{kind}]\nkind = "{kind}"\nbinary = "{BIN / kind}"\nisolation = "{isolation}"\nstall_after = "20s"\n'
        if kind == "aider":
            text += 'model = "gpt-4o"\n'
    return text


@pytest.fixture
def fleet(repo: Path, orchestrators: list) -> Orchestrator:
    write_config(repo, config_for(["claude", "codex", "gemini", "aider"]))
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    return orchestrator


def run_to_end(orchestrator: Orchestrator, agent: str, prompt: str, timeout: float = 30.0):
    request = orchestrator.dispatch(agent, prompt)

    def done():
        current = next(r for r in orchestrator.snapshot().requests if r.id == request.id)
        return current if current.status in (RequestStatus.DONE, RequestStatus.FAILED) else None

    final = wait_until(done, timeout=timeout, message=f"{agent} {prompt!r} to finish")
    return final, orchestrator.snapshot().runs[final.run]


@pytest.mark.parametrize("agent", ["claude", "codex", "gemini"])
def test_ok_session_succeeds_with_tokens(fleet: Orchestrator, agent: str) -> None:
    request, run = run_to_end(fleet, agent, "scenario=ok fix the bug")
    assert request.status == RequestStatus.DONE
    assert run.status == RunStatus.SUCCEEDED
    assert run.summary.input_tokens > 0
    assert run.summary.output_tokens > 0
    assert run.summary.todo, "the fake session writes a todo list"
    if agent == "claude":
        assert run.summary.cost_usd > 0
        assert run.session_id and f"--session-id" in run.argv
    # The agent's numbers are the finished run's final ones, in the cockpit and in local.json.
    summary = run.summary
    final = (summary.input_tokens, summary.output_tokens, summary.cost_usd)
    state = fleet.snapshot().agents[agent]
    assert (state.input_tokens, state.output_tokens, state.cost_usd) == final
    local = fleet.paths.agent_state(agent)

    def written() -> bool:
        data = json.loads(local.read_text())
        return (data["input_tokens"], data["output_tokens"], data["cost_usd"]) == final

    wait_until(written, timeout=10, message="final tokens in local.json")


@pytest.mark.parametrize(
    ("agent", "needle"),
    [("claude", "claude is not logged in"), ("codex", "codex"), ("gemini", "gemini is not authenticated"), ("aider", "aider")],
)
def test_auth_failure_fails_with_advice(fleet: Orchestrator, agent: str, needle: str) -> None:
    request, run = run_to_end(fleet, agent, "scenario=auth_fail")
    assert request.status == RequestStatus.FAILED
    assert run.status == RunStatus.FAILED
    assert needle in (run.message or "")


def test_claude_auth_failure_that_exits_zero_still_fails(fleet: Orchestrator) -> None:
    _, run = run_to_end(fleet, "claude", "scenario=exit0_fail")
    assert run.exit_code == 0
    assert run.status == RunStatus.FAILED
    assert "not logged in" in (run.message or "")


def test_claude_rate_limit_fails_with_reason(fleet: Orchestrator) -> None:
    _, run = run_to_end(fleet, "claude", "scenario=rate_limit")
    assert run.status == RunStatus.FAILED
    assert "rate" in (run.message or "").lower() or "limit" in (run.message or "").lower()


def test_claude_subagents_form_a_tree(fleet: Orchestrator) -> None:
    _, run = run_to_end(fleet, "claude", "scenario=ok subagents=3")
    subagents = run.summary.subagents
    assert len(subagents) == 3
    assert {sub.status for sub in subagents.values()} == {"done"}
    local = json.loads((fleet.repo / ".aipass/state/agents/claude/local.json").read_text())
    assert local["kind"] == "claude"


@pytest.mark.parametrize("scenario", ["long_line", "huge_json", "interleave", "no_newline", "utf8_split"])
def test_hard_output_is_delivered(fleet: Orchestrator, scenario: str) -> None:
    _, run = run_to_end(fleet, "claude", f"scenario={scenario}")
    assert run.status == RunStatus.SUCCEEDED, run.message
    events = (fleet.repo / ".aipass/runs" / run.id / "events.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["kind"] for line in events]
    assert "result" in kinds
    if scenario == "interleave":
        assert "raw" in kinds or kinds.count("text") >= 2, "the interleaved event is delivered or shown raw"


def test_crash_mid_line_keeps_the_partial_line(fleet: Orchestrator) -> None:
    _, run = run_to_end(fleet, "claude", "scenario=crash")
    assert run.status == RunStatus.FAILED
    events = [json.loads(line) for line in (fleet.repo / ".aipass/runs" / run.id / "events.jsonl").read_text().splitlines()]
    assert events[-1]["kind"] in ("raw", "stderr", "text"), "the cut-off last line is kept"


def test_login_prompt_stalls_and_stop_ends_it(repo: Path, orchestrators: list) -> None:
    write_config(repo, config_for(["claude"]).replace('stall_after = "20s"', 'stall_after = "1s"'))
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    request = orchestrator.dispatch("claude", "scenario=login_wait")
    wait_until(lambda: orchestrator.snapshot().agents["claude"].status == "stalled", message="stall")
    orchestrator.stop("claude")
    wait_until(lambda: next(r for r in orchestrator.snapshot().requests if r.id == request.id).status == RequestStatus.FAILED)
    run = next(iter(orchestrator.snapshot().runs.values()))
    assert run.status == RunStatus.STOPPED


def test_worktree_run_becomes_a_pull_request(repo: Path, orchestrators: list) -> None:
    write_config(repo, config_for(["claude"], isolation="worktree"))
    orchestrator = Orchestrator(repo, load_settings(repo), role="test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    _, run = run_to_end(orchestrator, "claude", "scenario=ok touch=notes.txt add notes")
    assert run.status == RunStatus.SUCCEEDED
    assert run.branch and run.branch.startswith("aipass/claude/")
    wait_until(lambda: list((repo / ".aipass/state/pulls").glob("*.json")), message="a pull request record")
    listing = subprocess.run(
        [sys.executable, "-m", "aipass_tui", "pr", "list", "--json", "--repo", str(repo)], capture_output=True, text=True
    )
    pulls = json.loads(listing.stdout)
    pulls = pulls["pulls"] if isinstance(pulls, dict) else pulls
    assert pulls[0]["agent"] == "claude"
    assert [f["path"] for f in pulls[0]["files"]] == ["notes.txt"]
