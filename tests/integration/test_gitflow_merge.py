"""Merging pull requests: strategies, the user's uncommitted work, conflicts, review actions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aipass_tui.core.gitflow_git import git_dir
from aipass_tui.core.gitflow_review import MergeError, find_violations, glob_matches, merge_pull
from aipass_tui.core.handlers import HandlerError, run_handler
from aipass_tui.core.pulls import PullStore
from test_gitflow_support import (  # noqa: F401  (no_user_git_config is an autouse fixture)
    agent_work,
    commit,
    git,
    make_env,
    make_settings,
    no_user_git_config,
    write,
)


def merge(env, pull_id: str, **kwargs):
    return merge_pull(env.repo, env.paths, env.settings, pull_id, **kwargs)


def no_merge_leftovers(checkout: Path) -> None:
    private = git_dir(checkout)
    for name in ("MERGE_HEAD", "CHERRY_PICK_HEAD", "rebase-merge", "rebase-apply"):
        assert not (private / name).exists(), name


def test_merge_commit_strategy(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    old_main = git(env.repo, "rev-parse", "main")
    pull = agent_work(env, "alpha", "Add feature", {"feature.txt": "f\n"})

    result = merge(env, pull["id"])

    assert result["merged"]
    head = git(env.repo, "rev-parse", "main")
    assert head == result["merge_commit"]
    assert git(env.repo, "rev-parse", "main^1") == old_main
    assert git(env.repo, "rev-parse", "main^2") == pull["head"]
    assert git(env.repo, "log", "-1", "--format=%s", "main") == "Merge pull request #1 from aipass/alpha/add-feature"
    assert git(env.repo, "log", "-1", "--format=%cn", "main") == "aipass-tui"
    assert (env.repo / "feature.txt").read_text() == "f\n"
    assert git(env.repo, "status", "--porcelain") == ""
    stored = PullStore(env.paths).load(pull["id"])
    assert stored.status == "merged"
    assert stored.merge_commit == head


def test_squash_strategy(tmp_path: Path) -> None:
    env = make_env(tmp_path, merge_strategy="squash")
    old_main = git(env.repo, "rev-parse", "main")
    pull = agent_work(env, "alpha", "Squash me", {"a.txt": "a\n", "b.txt": "b\n"}, summary="Two files.")

    result = merge(env, pull["id"])

    assert result["merged"]
    assert git(env.repo, "rev-list", "--parents", "-1", "main").split() == [result["merge_commit"], old_main]
    assert git(env.repo, "log", "-1", "--format=%an|%s", "main") == "alpha|Squash me (#1)"
    assert (env.repo / "b.txt").read_text() == "b\n"


def test_rebase_strategy(tmp_path: Path) -> None:
    env = make_env(tmp_path, merge_strategy="rebase")
    pull = agent_work(env, "alpha", "Rebase me", {"a.txt": "a\n"})
    write(env.repo, "user.txt", "u\n")
    user_head = commit(env.repo, "user work")

    result = merge(env, pull["id"])

    assert result["merged"]
    assert git(env.repo, "rev-parse", "main^") == user_head
    assert git(env.repo, "log", "-1", "--format=%an|%s", "main") == "alpha|Rebase me"
    assert (env.repo / "a.txt").read_text() == "a\n"
    assert git(env.repo, "worktree", "list").count("aipass-rebase") == 0


def test_user_edit_in_same_file_rejects_merge(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Edit app", {"src/app.py": "print('agent')\n"})
    user_bytes = b"print('user work in progress')\r\n\xff"
    (env.repo / "src/app.py").write_bytes(user_bytes)
    main_before = git(env.repo, "rev-parse", "main")

    result = merge(env, pull["id"])

    assert not result["merged"]
    assert result["local_changes"] == ["src/app.py"]
    assert "src/app.py" in result["message"]
    assert (env.repo / "src/app.py").read_bytes() == user_bytes
    assert git(env.repo, "rev-parse", "main") == main_before
    assert PullStore(env.paths).load(pull["id"]).status == "approved"
    no_merge_leftovers(env.repo)


def test_user_staged_and_untracked_reject_merge(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Add files", {"src/util.py": "x = 2\n", "notes/todo.txt": "agent\n"})
    write(env.repo, "src/util.py", "x = 'staged'\n")
    git(env.repo, "add", "src/util.py")
    write(env.repo, "notes/todo.txt", "user's own untracked notes\n")

    result = merge(env, pull["id"])

    assert not result["merged"]
    assert sorted(result["local_changes"]) == ["notes/todo.txt", "src/util.py"]
    assert (env.repo / "notes/todo.txt").read_text() == "user's own untracked notes\n"
    assert git(env.repo, "diff", "--cached", "--name-only") == "src/util.py"


def test_user_edit_elsewhere_is_kept(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Edit app", {"src/app.py": "print('agent')\n"})
    write(env.repo, "README.md", "user edit, not committed\n")
    write(env.repo, "scratch.txt", "untracked\n")
    write(env.repo, "src/util.py", "x = 'staged'\n")
    git(env.repo, "add", "src/util.py")

    result = merge(env, pull["id"])

    assert result["merged"]
    assert (env.repo / "src/app.py").read_text() == "print('agent')\n"
    assert (env.repo / "README.md").read_text() == "user edit, not committed\n"
    assert (env.repo / "scratch.txt").read_text() == "untracked\n"
    assert git(env.repo, "diff", "--cached", "--name-only") == "src/util.py"


def test_conflict_aborts_cleanly(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha"])
    pull = agent_work(env, "alpha", "Edit readme", {"README.md": "agent readme\n", "other.txt": "o\n"})
    write(env.repo, "README.md", "user readme\n")
    main_before = commit(env.repo, "user edits readme")
    write(env.repo, "untracked.txt", "keep\n")

    result = merge(env, pull["id"])

    assert not result["merged"]
    assert result["reason"] == "conflict"
    assert result["conflicts"] == ["README.md"]
    assert "README.md" in result["message"]
    assert result["suggestion"]["agent"] == "alpha"
    assert result["suggestion"]["branch"] == pull["branch"]
    assert "README.md" in result["suggestion"]["body"]
    stored = PullStore(env.paths).load(pull["id"])
    assert stored.status == "conflict"
    assert stored.conflict_files == ["README.md"]
    assert git(env.repo, "rev-parse", "main") == main_before
    assert git(env.repo, "status", "--porcelain") == "?? untracked.txt"
    assert (env.repo / "README.md").read_text() == "user readme\n"
    no_merge_leftovers(env.repo)

    sent = run_handler(env.ctx(), "pr.rebase-request", {"pull_id": pull["id"]})

    inbox = json.loads((env.paths.inbox / f"{sent['request']['id']}.json").read_text())
    assert inbox["type"] == "request"
    assert inbox["agent"] == "alpha"
    assert inbox["branch"] == pull["branch"]
    assert inbox["sender"] == "review"
    assert "README.md" in inbox["body"]


def test_rebase_strategy_conflict(tmp_path: Path) -> None:
    env = make_env(tmp_path, merge_strategy="rebase")
    pull = agent_work(env, "alpha", "Edit readme", {"README.md": "agent\n"})
    write(env.repo, "README.md", "user\n")
    main_before = commit(env.repo, "user")

    result = merge(env, pull["id"])

    assert result["reason"] == "conflict"
    assert result["conflicts"] == ["README.md"]
    assert git(env.repo, "rev-parse", "main") == main_before
    assert git(env.repo, "worktree", "list").count("aipass-rebase") == 0
    no_merge_leftovers(env.repo)


def test_target_not_checked_out_uses_ref(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})
    git(env.repo, "switch", "-q", "-c", "elsewhere")
    write(env.repo, "f.txt", "user file on another branch\n")

    result = merge(env, pull["id"])

    assert result["merged"]
    assert git(env.repo, "rev-parse", "main") == result["merge_commit"]
    assert git(env.repo, "rev-parse", "--abbrev-ref", "HEAD") == "elsewhere"
    assert (env.repo / "f.txt").read_text() == "user file on another branch\n"


def test_merges_reviewed_head_not_later_commits(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "reviewed\n"})
    worktree = env.paths.worktrees / "alpha"
    write(worktree, "f.txt", "not reviewed\n")
    commit(worktree, "later")

    merge(env, pull["id"])

    assert (env.repo / "f.txt").read_text() == "reviewed\n"


def test_violations_need_permission(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})
    store = PullStore(env.paths)
    record = store.load(pull["id"])
    record.violations = ["f.txt"]
    store.save(record)

    with pytest.raises(MergeError, match="--allow-violations"):
        merge(env, pull["id"])
    assert merge(env, pull["id"], allow_violations=True)["merged"]


def test_merged_and_closed_cannot_merge(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    one = agent_work(env, "alpha", "One", {"1.txt": "1\n"})
    two = agent_work(env, "beta", "Two", {"2.txt": "2\n"})
    merge(env, one["id"])
    run_handler(env.ctx(), "pr.close", {"pull_id": two["id"]})

    with pytest.raises(HandlerError, match="already merged") as merged:
        run_handler(env.ctx(), "pr.merge", {"pull_id": one["id"]})
    with pytest.raises(HandlerError, match="is closed") as closed:
        run_handler(env.ctx(), "pr.merge", {"pull_id": two["id"]})
    assert merged.value.exit_code == 1
    assert closed.value.exit_code == 1
    assert git(env.repo, "rev-parse", two["branch"]) == two["head"]


def test_unknown_and_invalid_ids(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    with pytest.raises(HandlerError, match="pull request 42 not found") as missing:
        run_handler(env.ctx(), "pr.merge", {"pull_id": "42"})
    with pytest.raises(HandlerError, match="invalid pull request id 'abc'") as invalid:
        run_handler(env.ctx(), "pr.close", {"pull_id": "abc"})
    assert missing.value.exit_code == 2
    assert invalid.value.exit_code == 2


def test_merge_in_progress_in_main_checkout(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})
    git(env.repo, "switch", "-q", "-c", "side")
    write(env.repo, "README.md", "side\n")
    commit(env.repo, "side")
    git(env.repo, "switch", "-q", "main")
    write(env.repo, "README.md", "main\n")
    commit(env.repo, "main")
    git(env.repo, "merge", "side", check=False)

    result = merge(env, pull["id"])

    assert not result["merged"]
    assert "a merge is in progress" in result["message"]
    assert (git_dir(env.repo) / "MERGE_HEAD").exists()


def test_request_changes_sends_comments(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "one\ntwo\n"})
    ctx = env.ctx()
    run_handler(ctx, "pr.comment", {"pull_id": pull["id"], "body": "rename this", "path": "f.txt", "line": 2})

    result = run_handler(ctx, "pr.request-changes", {"pull_id": pull["id"], "message": "Also add tests."})

    request = json.loads((env.paths.inbox / f"{result['request']['id']}.json").read_text())
    assert request["branch"] == pull["branch"]
    assert "f.txt:2: rename this" in request["body"]
    assert "Also add tests." in request["body"]
    stored = PullStore(env.paths).load(pull["id"])
    assert stored.status == "changes_requested"
    assert all(c.sent for c in stored.comments)
    with pytest.raises(HandlerError, match="no unsent review comments") as empty:
        run_handler(ctx, "pr.request-changes", {"pull_id": pull["id"], "message": "  "})
    assert empty.value.exit_code == 2


def test_request_changes_for_removed_agent(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})
    env.settings = make_settings(["beta"])

    with pytest.raises(HandlerError, match="agent 'alpha' is not in the configuration"):
        run_handler(env.ctx(), "pr.request-changes", {"pull_id": pull["id"], "message": "fix"})
    assert PullStore(env.paths).load(pull["id"]).status == "open"


def test_comment_validation(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})

    with pytest.raises(HandlerError, match="'nope.txt' is not a file of pull request 1"):
        run_handler(env.ctx(), "pr.comment", {"pull_id": pull["id"], "body": "x", "path": "nope.txt"})
    with pytest.raises(HandlerError, match="invalid line 0"):
        run_handler(env.ctx(), "pr.comment", {"pull_id": pull["id"], "body": "x", "path": "f.txt", "line": 0})
    with pytest.raises(HandlerError, match="comment is empty"):
        run_handler(env.ctx(), "pr.comment", {"pull_id": pull["id"], "body": " "})


def test_viewed_mark_resets_when_file_changes(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "Feature", {"f.txt": "v1\n", "g.txt": "g\n"})
    run_handler(env.ctx(), "pr.viewed", {"pull_id": first["id"], "path": "f.txt"})
    run_handler(env.ctx(), "pr.viewed", {"pull_id": first["id"], "path": "g.txt"})
    assert PullStore(env.paths).load(first["id"]).is_viewed("f.txt")

    agent_work(env, "alpha", "Follow-up", {"f.txt": "v2\n"}, branch=first["branch"])

    stored = PullStore(env.paths).load(first["id"])
    assert not stored.is_viewed("f.txt")
    assert stored.is_viewed("g.txt")


def test_approve_then_merge(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    pull = agent_work(env, "alpha", "Feature", {"f.txt": "f\n"})

    approved = run_handler(env.ctx(), "pr.approve", {"pull_id": pull["id"]})
    merged = run_handler(env.ctx(), "pr.merge", {"pull_id": pull["id"]})

    assert approved["pull"]["status"] == "approved"
    assert merged["merged"]


@pytest.mark.parametrize(
    ("path", "glob", "expected"),
    [
        ("src/a.py", "src/**", True),
        ("src/deep/a.py", "src/**", True),
        ("srcx/a.py", "src/**", False),
        ("a.py", "*.py", True),
        ("pkg/a.py", "*.py", False),
        ("pkg/test_a.py", "**/test_*.py", True),
        ("test_a.py", "**/test_*.py", True),
        ("docs/x/y.md", "docs/", True),
        ("file1.txt", "file[0-9].txt", True),
        ("filea.txt", "file[!a].txt", False),
        ("a b/c.txt", "a b/*.txt", True),
        ("src/a.py", "./src/*.py", True),
    ],
)
def test_glob_matches(path: str, glob: str, expected: bool) -> None:
    assert glob_matches(path, glob) is expected


def test_find_violations_keeps_order() -> None:
    assert find_violations(["z.txt", "src/a.py", "b.txt"], ["src/**"]) == ["z.txt", "b.txt"]
    assert find_violations(["a"], []) == ["a"]


def test_non_utf8_names_through_review(tmp_path: Path) -> None:
    import os

    env = make_env(tmp_path)
    name = os.fsdecode(b"caf\xe9.txt")
    pull = agent_work(env, "alpha", "Odd name", {name: "agent\n"})
    write(env.repo, name, "user\n")

    result = merge(env, pull["id"])

    assert [f["path"] for f in pull["files"]] == ["caf\ufffd.txt"]
    assert result["local_changes"] == ["caf\ufffd.txt"]
    assert (env.repo / name).read_text() == "user\n"
