"""``aipass-tui pr`` run as a real subprocess on real repositories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from aipass_tui.core.pulls import PullStore
from test_gitflow_support import (  # noqa: F401  (no_user_git_config is an autouse fixture)
    agent_work,
    commit,
    git,
    make_env,
    make_request,
    no_user_git_config,
    write,
)

CONFIG = """\
[agents.alpha]
kind = "command"
command = ["true"]

[agents.beta]
kind = "command"
command = ["true"]
"""


def pr(repo: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aipass_tui", "pr", *args, "--repo", str(repo)],
        capture_output=True,
        input=stdin.encode() if stdin is not None else None,
        timeout=120,
    )


def cli_env(tmp_path: Path):
    env = make_env(tmp_path)
    (env.paths.root / "config.toml").write_text(CONFIG, encoding="utf-8")
    return env


def test_list_json_fields(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    one = agent_work(env, "alpha", "First", {"src/app.py": "print(1)\n"})
    info = env.workspace.prepare("beta", env.config("beta"), make_request("beta", "Rename"))
    (info.cwd / "docs").mkdir()
    git(info.cwd, "mv", "README.md", "docs/READ ME.md")
    two = agent_work(env, "beta", "Rename", {}, branch=info.branch)

    proc = pr(env.repo, "list", "--json")

    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [r["id"] for r in records] == ["1", "2"]
    first = records[0]
    for key in ("id", "agent", "branch", "base", "head", "status", "files", "checks"):
        assert key in first
    assert first["head"] == one["head"]
    assert first["files"][0]["path"] == "src/app.py"
    assert first["files"][0]["status"] == "modified"
    assert first["files"][0]["old_path"] is None
    renamed = records[1]["files"][0]
    assert (renamed["path"], renamed["status"], renamed["old_path"]) == ("docs/READ ME.md", "renamed", "README.md")
    assert records[1]["head"] == two["head"]


def test_list_table_and_empty(tmp_path: Path) -> None:
    env = cli_env(tmp_path)

    empty = pr(env.repo, "list")
    agent_work(env, "alpha", "Make the table", {"a.txt": "a\nb\n"})
    table = pr(env.repo, "list")

    assert empty.stdout.decode().strip() == "no pull requests"
    lines = table.stdout.decode().splitlines()
    assert lines[0].split() == ["ID", "STATUS", "AGENT", "FILES", "+/-", "CHECKS", "AGE", "TITLE"]
    assert lines[1].split()[:6] == ["1", "open", "alpha", "1", "+2/-0", "none"]
    assert lines[1].endswith("Make the table")


def test_show_summary_and_patch(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    agent_work(env, "alpha", "Show me", {"dir with space/ünï.txt": "caf\xe9\n"}, summary="Summary text.")

    summary = pr(env.repo, "show", "#1")
    patch = pr(env.repo, "show", "1", "--patch")

    assert summary.returncode == 0, summary.stderr
    text = summary.stdout.decode()
    assert "pull request #1: Show me" in text
    assert "Summary text." in text
    assert "A dir with space/ünï.txt  +1 -0" in text
    assert patch.returncode == 0
    assert "+café".encode() in patch.stdout
    assert b"diff --git" in patch.stdout


def test_show_bad_and_unknown_id(tmp_path: Path) -> None:
    env = cli_env(tmp_path)

    bad = pr(env.repo, "show", "abc")
    missing = pr(env.repo, "show", "7")

    assert bad.returncode == 2
    assert b"invalid pull request id 'abc'" in bad.stderr
    assert missing.returncode == 2
    assert b"pull request 7 not found" in missing.stderr


def test_merge_and_close(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    one = agent_work(env, "alpha", "Merge me", {"a.txt": "a\n"})
    two = agent_work(env, "beta", "Close me", {"b.txt": "b\n"})

    merged = pr(env.repo, "merge", one["id"])
    closed = pr(env.repo, "close", two["id"])
    again = pr(env.repo, "merge", one["id"])
    missing = pr(env.repo, "merge", "99")

    assert merged.returncode == 0, merged.stderr
    assert b"merged pull request #1" in merged.stdout
    assert (env.repo / "a.txt").read_text() == "a\n"
    assert closed.returncode == 0, closed.stderr
    assert PullStore(env.paths).load(two["id"]).status == "closed"
    assert again.returncode == 1
    assert b"already merged" in again.stderr
    assert missing.returncode == 2


def test_merge_rejected_for_user_changes(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    pull = agent_work(env, "alpha", "Edit app", {"src/app.py": "print('agent')\n"})
    write(env.repo, "src/app.py", "print('user')\n")

    proc = pr(env.repo, "merge", pull["id"])

    assert proc.returncode == 1
    assert b"src/app.py" in proc.stderr
    assert (env.repo / "src/app.py").read_text() == "print('user')\n"


def test_merge_conflict_offers_rebase_request(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    pull = agent_work(env, "alpha", "Edit readme", {"README.md": "agent\n"})
    write(env.repo, "README.md", "user\n")
    commit(env.repo, "user edit")

    merged = pr(env.repo, "merge", pull["id"])
    rebase = pr(env.repo, "rebase-request", pull["id"])

    assert merged.returncode == 1
    assert b"conflicts in: README.md" in merged.stderr
    assert f"aipass-tui pr rebase-request {pull['id']}".encode() in merged.stderr
    assert rebase.returncode == 0, rebase.stderr
    assert b"asked alpha to rebase" in rebase.stdout


def test_request_changes_queues_request(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})

    sent = pr(env.repo, "request-changes", pull["id"], "-", stdin="Please add a test.\n")
    empty = pr(env.repo, "request-changes", pull["id"], "")

    assert sent.returncode == 0, sent.stderr
    assert b"sent the review of pull request #1 to alpha" in sent.stdout
    state = json.loads((env.paths.state / "orchestrator.json").read_text())
    [request] = [r for r in state["requests"].values() if r["sender"] == "review"]
    assert request["branch"] == pull["branch"]
    assert "Please add a test." in request["body"]
    assert empty.returncode == 2
    assert b"no unsent review comments" in empty.stderr


def test_status_shows_pulls_and_lock(tmp_path: Path) -> None:
    from aipass_tui.core.gitflow_lock import RepoLock

    env = cli_env(tmp_path)
    agent_work(env, "alpha", "Status me", {"a.txt": "a\n"})

    with RepoLock(env.repo, "test merge"):
        proc = subprocess.run([sys.executable, "-m", "aipass_tui", "status", "--json", "--repo", str(env.repo)], capture_output=True, timeout=60)

    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["repo_lock"]["holder"] == "test merge"
    [pull] = data["pulls"]
    assert (pull["id"], pull["status"], pull["files"], pull["checks"]) == ("1", "open", 1, "none")
