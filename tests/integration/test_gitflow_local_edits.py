"""Merges stopped by the user's own uncommitted edits, and the rebase requests that follow: files named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aipass_tui.core.gitflow_local import name_files
from aipass_tui.core.gitflow_review import merge_pull
from aipass_tui.core.handlers import HandlerError, run_handler
from aipass_tui.core.pulls import PullStore
from test_gitflow_support import (  # noqa: F401  (no_user_git_config is an autouse fixture)
    agent_work,
    commit,
    git,
    make_env,
    no_user_git_config,
    write,
)

SEVEN = ["src/app.py", "a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "f.txt"]
CONFIG = '[agents.alpha]\nkind = "command"\ncommand = ["true"]\n'


def merge(env, pull_id: str):
    return merge_pull(env.repo, env.paths, env.settings, pull_id)


def inbox(env) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(env.paths.inbox.glob("*.json"))]


def user_edits(env, names: list[str]) -> dict[str, bytes]:
    """Write an uncommitted edit of each file in the main checkout and return the bytes written."""
    written = {}
    for name in names:
        data = f"user work on {name}, not committed\n".encode()
        write(env.repo, name, data)
        written[name] = data
    return written


@pytest.mark.parametrize(
    ("names", "text"),
    [
        (["a"], "a"),
        (["a", "b", "c", "d", "e"], "a, b, c, d, e"),
        (["a", "b", "c", "d", "e", "f"], "a, b, c, d, e and 1 more"),
        ([str(n) for n in range(40)], "0, 1, 2, 3, 4 and 35 more"),
    ],
)
def test_name_files(names: list[str], text: str) -> None:
    assert name_files(names) == text


def test_merge_names_first_five_files(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    pull = agent_work(env, "alpha", "Edit many", {name: f"agent {name}\n" for name in SEVEN})
    written = user_edits(env, SEVEN)
    main_before = git(env.repo, "rev-parse", "main")

    result = merge(env, pull["id"])

    assert not result["merged"]
    assert result["reason"] == "rejected"
    assert result["message"] == (
        f"the merge would change files you have modified or created in {env.repo}: "
        "commit or stash your edits to src/app.py, a.txt, b.txt, c.txt, d.txt and 2 more, then merge again"
    )
    assert sorted(result["local_changes"]) == sorted(SEVEN)
    stored = PullStore(env.paths).load(pull["id"])
    assert stored.message == result["message"]
    assert stored.status == "approved"
    assert git(env.repo, "rev-parse", "main") == main_before
    for name, data in written.items():
        assert (env.repo / name).read_bytes() == data


def test_ignored_file_in_the_way(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    pull = agent_work(env, "alpha", "Add notes", {"notes/todo.txt": "agent notes\n", "src/app.py": "print('agent')\n"})
    # An ignore rule only the user's checkout has: the agent's branch still adds the file.
    write(env.repo, "notes/.gitignore", "*\n")
    write(env.repo, "notes/todo.txt", "my private notes\n")
    write(env.repo, "src/app.py", "print('mine')\n")

    result = merge(env, pull["id"])

    assert not result["merged"]
    assert result["message"].endswith(
        ": commit or stash your edits to src/app.py and move away notes/todo.txt (git ignores them), then merge again"
    )
    assert (env.repo / "notes/todo.txt").read_text() == "my private notes\n"


def test_rebase_request_names_local_edits(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    pull = agent_work(env, "alpha", "Edit many", {name: f"agent {name}\n" for name in SEVEN})
    written = user_edits(env, SEVEN)
    merge(env, pull["id"])

    with pytest.raises(HandlerError) as caught:
        run_handler(env.ctx(), "pr.rebase-request", {"pull_id": pull["id"]})

    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        f"pull request 1 is stopped by your own uncommitted edits in {env.repo}, not by a conflict, and a rebase by alpha "
        "cannot take in edits that are not committed: "
        "commit or stash your edits to src/app.py, a.txt, b.txt, c.txt, d.txt and 2 more, then merge again"
    )
    assert inbox(env) == []
    assert PullStore(env.paths).load(pull["id"]).status == "approved"
    for name, data in written.items():
        assert (env.repo / name).read_bytes() == data


def test_rebase_after_commit_names_conflicts(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    pull = agent_work(env, "alpha", "Edit app", {"src/app.py": "print('agent')\n", "src/util.py": "x = 'agent'\n"})
    user_edits(env, ["src/app.py", "src/util.py"])
    merge(env, pull["id"])
    commit(env.repo, "user work")

    sent = run_handler(env.ctx(), "pr.rebase-request", {"pull_id": pull["id"]})

    assert sent["message"] == "rebase requested from alpha to resolve the conflicts in src/app.py, src/util.py"
    [request] = inbox(env)
    assert request["subject"] == "Rebase pull request #1 onto main and resolve conflicts"
    assert "Conflicting files:\n- src/app.py\n- src/util.py\n" in request["body"]
    stored = PullStore(env.paths).load(pull["id"])
    assert stored.status == "changes_requested"
    assert stored.message == sent["message"]


def test_rebase_names_files_on_both_sides(tmp_path: Path) -> None:
    lines = "".join(f"line {n}\n" for n in range(1, 21))
    env = make_env(tmp_path, agents=["alpha"], files={"README.md": "readme\n", "long.txt": lines})
    pull = agent_work(env, "alpha", "Edit top", {"long.txt": lines.replace("line 1\n", "agent line 1\n"), "new.txt": "n\n"})
    write(env.repo, "long.txt", lines.replace("line 20\n", "user line 20\n"))
    rejected = merge(env, pull["id"])
    assert rejected["local_changes"] == ["long.txt"]
    commit(env.repo, "user edits the end")

    sent = run_handler(env.ctx(), "pr.rebase-request", {"pull_id": pull["id"]})

    assert sent["message"] == "rebase onto main requested from alpha (files changed on both sides: long.txt)"
    [request] = inbox(env)
    assert request["subject"] == "Rebase pull request #1 onto main"
    assert "is behind main. Files changed on both main and the branch since it started:\n- long.txt\n" in request["body"]


def test_conflict_message_names_five(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    pull = agent_work(env, "alpha", "Edit many", {name: f"agent {name}\n" for name in SEVEN})
    user_edits(env, SEVEN)
    commit(env.repo, "user work")

    result = merge(env, pull["id"])

    assert result["reason"] == "conflict"
    assert sorted(result["conflicts"]) == sorted(SEVEN)
    assert result["message"].startswith("merging into main conflicts in: ")
    assert result["message"].endswith(" and 2 more; send the agent a request to rebase and resolve")
    for name in SEVEN:
        assert f"- {name}\n" in result["suggestion"]["body"] + "\n"


def test_cli_merge_and_rebase_name_files(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    (env.paths.root / "config.toml").write_text(CONFIG, encoding="utf-8")
    pull = agent_work(env, "alpha", "Edit many", {name: f"agent {name}\n" for name in SEVEN})
    user_edits(env, SEVEN)

    def pr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aipass_tui", "pr", *args, "--repo", str(env.repo)],
            capture_output=True, text=True, timeout=120,
        )

    merged = pr("merge", pull["id"])
    rebase = pr("rebase-request", pull["id"])

    advice = "commit or stash your edits to src/app.py, a.txt, b.txt, c.txt, d.txt and 2 more, then merge again"
    assert merged.returncode == 1
    assert merged.stderr.startswith("aipass-tui: pull request #1 was not merged: the merge would change files")
    assert advice in merged.stderr
    assert rebase.returncode == 1
    assert advice in rebase.stderr
    assert inbox(env) == []
