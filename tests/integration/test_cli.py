"""The headless commands, run as real subprocesses."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.conftest import wait_until, write_config


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aipass_tui", *args], cwd=cwd, env=env, input=input,
        capture_output=True, text=True, timeout=timeout,
    )


def start_work(repo: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aipass_tui", "work", *extra, "--repo", str(repo)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("aipass-tui ")


def test_init_creates_private_folder_and_finds_clis(repo: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("claude", "codex"):
        program = bin_dir / name
        program.write_text("#!/bin/sh\nexit 0\n")
        program.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = cli("init", "--repo", str(repo), env=env)
    assert result.returncode == 0, result.stderr
    root = repo / ".aipass"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert ".aipass/" in (repo / ".git/info/exclude").read_text().splitlines()
    config = (root / "config.toml").read_text()
    assert '[agents.claude]\nkind = "claude"' in config
    assert '[agents.codex]\nkind = "codex"' in config
    assert "[agents.gemini]" not in config
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True)
    assert ".aipass" not in status.stdout


def test_init_without_clis_writes_command_example_and_never_overwrites(repo: Path) -> None:
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    assert cli("init", "--repo", str(repo), env=env).returncode == 0
    config = repo / ".aipass/config.toml"
    assert '# kind = "command"' in config.read_text()
    config.write_text("# mine\n")
    second = cli("init", "--repo", str(repo), env=env)
    assert second.returncode == 0
    assert "left unchanged" in second.stdout
    assert config.read_text() == "# mine\n"


def test_init_outside_git_exits_2(tmp_path: Path) -> None:
    result = cli("init", "--repo", str(tmp_path))
    assert result.returncode == 2
    assert "not inside a git repository" in result.stderr


def test_invalid_config_exits_2_naming_line(repo: Path) -> None:
    write_config(repo, '[agents.a]\nkind = "robot"\n')
    result = cli("status", "--repo", str(repo))
    assert result.returncode == 2
    assert "config.toml:2: agents.a.kind" in result.stderr


def test_dispatch_unknown_agent_exits_2(repo: Path) -> None:
    write_config(repo, '[agents.a]\nkind = "command"\ncommand = ["true"]\n')
    result = cli("dispatch", "nobody", "do it", "--repo", str(repo))
    assert result.returncode == 2
    assert "unknown agent 'nobody' (configured agents: a)" in result.stderr
    assert list((repo / ".aipass/inbox").glob("*.json")) == [] if (repo / ".aipass/inbox").exists() else True


def test_dispatch_work_status_logs(repo: Path) -> None:
    write_config(repo, """
        [agents.echo]
        kind = "command"
        command = ["sh", "-c", "echo \\"$1\\"; echo second line", "sh", "{body}"]
        isolation = "shared"

        [agents.failer]
        kind = "command"
        command = ["sh", "-c", "echo broken >&2; exit 7"]
        isolation = "shared"
    """)
    first = cli("dispatch", "echo", "greet", "-", "--priority", "3", "--from", "tester", "--repo", str(repo), input="hello from stdin")
    assert first.returncode == 0, first.stderr
    request_id = first.stdout.strip()
    assert cli("dispatch", "echo", "greet", "-", "--repo", str(repo), input="hello from stdin").returncode == 0
    assert cli("dispatch", "failer", "break", "--repo", str(repo)).returncode == 0
    work = cli("work", "--until-idle", "--repo", str(repo))
    assert work.returncode == 1, "a failed run makes --until-idle exit 1"
    assert f"queued   {request_id} echo: greet" in work.stdout
    assert "finished failer-" in work.stdout
    status = json.loads(cli("status", "--json", "--repo", str(repo)).stdout)
    assert {"agents", "requests", "runs"} <= set(status)
    request = next(r for r in status["requests"] if r["id"] == request_id)
    assert {"id", "agent", "subject", "status", "priority", "duplicates", "run", "sender", "created_at"} <= set(request)
    assert request["duplicates"] == 1
    assert request["priority"] == 3
    assert request["sender"] == "tester"
    assert request["status"] == "done"
    runs = {r["agent"]: r for r in status["runs"]}
    assert {"id", "agent", "request", "status", "exit_code", "pid", "started_at", "ended_at", "input_tokens", "output_tokens", "cost_usd"} <= set(runs["echo"])
    assert runs["failer"]["status"] == "failed"
    assert runs["failer"]["exit_code"] == 7
    agents = {a["name"]: a for a in status["agents"]}
    assert {"name", "kind", "status", "request", "run", "pid", "queued"} <= set(agents["echo"])
    logs = cli("logs", "echo", "--repo", str(repo))
    assert logs.stdout.splitlines() == ["hello from stdin", "second line"]
    failed_logs = cli("logs", runs["failer"]["id"], "--repo", str(repo))
    assert "stderr: broken" in failed_logs.stdout
    text = cli("status", "--repo", str(repo)).stdout
    assert "failer" in text and "failed" in text


def test_second_work_names_the_holder(repo: Path) -> None:
    write_config(repo, '[agents.a]\nkind = "command"\ncommand = ["true"]\n')
    first = start_work(repo)
    try:
        wait_until(lambda: (repo / ".aipass/state/orchestrator.lock").exists() and (repo / ".aipass/state/orchestrator.lock").read_text(), message="lock")
        second = cli("work", "--repo", str(repo))
        assert second.returncode == 1
        assert f"pid {first.pid}" in second.stderr
    finally:
        first.kill()
        first.wait()


def test_stop_through_running_orchestrator_and_without_one(repo: Path) -> None:
    write_config(repo, """
        [limits]
        stop_grace = "0.5s"

        [agents.sleeper]
        kind = "command"
        command = ["sh", "-c", "echo started; sleep 60"]
        isolation = "shared"
    """)
    cli("dispatch", "sleeper", "first nap", "--repo", str(repo))
    work = start_work(repo)
    try:
        wait_until(lambda: json.loads(cli("status", "--json", "--repo", str(repo)).stdout)["agents"][0]["pid"], timeout=20, message="a live run")
        stopped = cli("stop", "sleeper", "--repo", str(repo))
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stdout.startswith("stopped sleeper-")
        wait_until(lambda: json.loads(cli("status", "--json", "--repo", str(repo)).stdout)["runs"][0]["status"] == "stopped", message="stopped")
        cli("dispatch", "sleeper", "second nap", "--repo", str(repo))
        wait_until(lambda: len(json.loads(cli("status", "--json", "--repo", str(repo)).stdout)["runs"]) == 2, timeout=40, message="second run")
    finally:
        work.kill()
        work.wait()
    status = json.loads(cli("status", "--json", "--repo", str(repo)).stdout)
    pid = next(r["pid"] for r in status["runs"] if r["status"] == "running")
    assert psutil.pid_exists(pid), "killing the orchestrator must leave the run alive"
    stopped = cli("stop", "sleeper", "--repo", str(repo))
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, timeout=10)
    idle = cli("stop", "sleeper", "--repo", str(repo))
    assert idle.returncode == 1
    assert "'sleeper' has no live run to stop" in idle.stderr
    unknown = cli("stop", "nobody", "--repo", str(repo))
    assert unknown.returncode == 2
    assert "unknown agent or run 'nobody'" in unknown.stderr
    missing_request = cli("cancel", "r-nope", "--repo", str(repo))
    assert missing_request.returncode == 2
    assert missing_request.stderr.strip() == "aipass-tui: request 'r-nope' not found; `aipass-tui status` lists request ids"


def test_logs_follow_prints_until_the_run_ends(repo: Path) -> None:
    write_config(repo, """
        [agents.counter]
        kind = "command"
        command = ["sh", "-c", "for i in 1 2 3 4 5; do echo n$i; sleep 0.2; done"]
        isolation = "shared"
    """)
    cli("dispatch", "counter", "count", "--repo", str(repo))
    work = start_work(repo, "--until-idle")
    try:
        wait_until(lambda: any((repo / ".aipass/runs").glob("counter-*/events.jsonl")), message="a run folder")
        follow = cli("logs", "counter", "--follow", "--repo", str(repo), timeout=30)
    finally:
        work.wait(timeout=30)
    lines = follow.stdout.splitlines()
    assert lines[:5] == ["n1", "n2", "n3", "n4", "n5"]
    assert lines[-1].startswith("-- run counter-") and "succeeded" in lines[-1]
