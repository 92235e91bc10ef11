"""Worktrees and branches on real repositories: creation, reuse, parallel agents, broken states."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pytest

from aipass_tui.core.gitflow import GitWorkspace, slugify
from aipass_tui.core.gitflow_review import merge_pull
from aipass_tui.core.workspace import WorkspaceError
from test_gitflow_support import (  # noqa: F401  (no_user_git_config is an autouse fixture)
    agent_work,
    commit,
    git,
    make_env,
    make_request,
    make_settings,
    no_user_git_config,
    write,
)


def test_shared_isolation_uses_repo(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    config = env.config("alpha").model_copy(update={"isolation": "shared"})

    info = env.workspace.prepare("alpha", config, make_request("alpha", "Fix it"))

    assert info.cwd == env.repo
    assert info.branch is None
    assert not env.paths.worktrees.exists() or not any(env.paths.worktrees.iterdir())


def test_worktree_created_on_agent_branch(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    main_head = git(env.repo, "rev-parse", "main")

    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Add the Login page!"))

    assert info.cwd == env.paths.worktrees / "alpha"
    assert info.branch == "aipass/alpha/add-the-login-page"
    assert info.base_commit == main_head
    assert git(info.cwd, "rev-parse", "--abbrev-ref", "HEAD") == info.branch
    listed = git(env.repo, "worktree", "list", "--porcelain")
    assert f"worktree {info.cwd}" in listed
    assert git(env.repo, "status", "--porcelain") == ""


def test_slug_of_unusual_subjects() -> None:
    assert slugify("Fix   the bug: résumé.txt") == "fix-the-bug-resume-txt"
    assert slugify("日本語") == "work"
    assert slugify("x" * 100) == "x" * 40


def test_branch_name_gets_suffix_when_taken(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    git(env.repo, "branch", "aipass/alpha/same-subject")

    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Same subject"))

    assert info.branch == "aipass/alpha/same-subject-2"


def test_two_agents_in_parallel(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    results: dict[str, object] = {}
    errors: list[BaseException] = []

    def work(agent: str, name: str) -> None:
        try:
            results[agent] = agent_work(env, agent, f"Change {name}", {name: f"changed by {agent}\n"})
        except BaseException as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=("alpha", "src/app.py")), threading.Thread(target=work, args=("beta", "src/util.py"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    alpha, beta = results["alpha"], results["beta"]
    assert [f["path"] for f in alpha["files"]] == ["src/app.py"]
    assert [f["path"] for f in beta["files"]] == ["src/util.py"]
    assert alpha["id"] != beta["id"]
    assert merge_pull(env.repo, env.paths, env.settings, alpha["id"])["merged"]
    assert merge_pull(env.repo, env.paths, env.settings, beta["id"])["merged"]
    assert (env.repo / "src/app.py").read_text() == "changed by alpha\n"
    assert (env.repo / "src/util.py").read_text() == "changed by beta\n"


def test_worktree_reused_after_merge(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "First change", {"a.txt": "a\n"})
    merge_pull(env.repo, env.paths, env.settings, first["id"])
    main_head = git(env.repo, "rev-parse", "main")

    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Second change"))

    assert info.cwd == env.paths.worktrees / "alpha"
    assert info.branch == "aipass/alpha/second-change"
    assert info.base_commit == main_head
    assert git(info.cwd, "rev-parse", "HEAD") == main_head
    assert (info.cwd / "a.txt").read_text() == "a\n"
    assert git(env.repo, "branch", "--list", "aipass/alpha/first-change") == ""


def test_unmerged_branch_kept_for_next_request(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "First change", {"a.txt": "a\n"})

    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Second change"))

    assert info.base_commit == git(env.repo, "rev-parse", "main")
    assert not (info.cwd / "a.txt").exists()
    assert git(env.repo, "rev-parse", first["branch"]) == first["head"]


def test_follow_up_reuses_named_branch(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "First change", {"a.txt": "a\n"})
    env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Other work"))

    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Address review", branch=first["branch"]))

    assert info.branch == first["branch"]
    assert git(info.cwd, "rev-parse", "HEAD") == first["head"]
    assert info.base_commit == first["base"]


def test_follow_up_with_missing_branch(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    with pytest.raises(WorkspaceError, match="branch 'aipass/alpha/gone' named by request .* does not exist"):
        env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "x", branch="aipass/alpha/gone"))


def test_worktree_deleted_by_hand(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "First change", {"a.txt": "a\n"})
    shutil.rmtree(env.paths.worktrees / "alpha")

    with caplog.at_level(logging.WARNING, logger="aipass_tui.core.gitflow"):
        info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Next"))

    assert "deleted by hand" in caplog.text
    assert (info.cwd / ".git").exists()
    assert git(info.cwd, "rev-parse", "--abbrev-ref", "HEAD") == "aipass/alpha/next"
    assert git(env.repo, "rev-parse", first["branch"]) == first["head"]


def test_plain_folder_in_worktree_place(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    write(env.paths.worktrees / "alpha", "notes.txt", "mine\n")

    with pytest.raises(WorkspaceError, match="exists but is not a git worktree"):
        env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "x"))
    assert (env.paths.worktrees / "alpha" / "notes.txt").read_text() == "mine\n"


def test_detached_head_at_start(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    git(env.repo, "switch", "--detach", "-q", "HEAD")
    workspace = GitWorkspace(env.repo, env.paths, env.settings)

    with pytest.raises(WorkspaceError, match="HEAD was detached.*git.target_branch"):
        workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "x"))


def test_detached_head_with_configured_target(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    git(env.repo, "switch", "--detach", "-q", "HEAD")
    settings = make_settings(["alpha"], target_branch="main")
    workspace = GitWorkspace(env.repo, env.paths, settings)

    info = workspace.prepare("alpha", settings.agents["alpha"], make_request("alpha", "x"))

    assert info.base_commit == git(env.repo, "rev-parse", "main")


def test_missing_target_branch(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    settings = make_settings(["alpha"], target_branch="develop")
    workspace = GitWorkspace(env.repo, env.paths, settings)

    with pytest.raises(WorkspaceError, match="target branch 'develop' does not exist"):
        workspace.prepare("alpha", settings.agents["alpha"], make_request("alpha", "x"))


def test_rebase_in_progress_in_main_checkout(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    git(env.repo, "switch", "-q", "-c", "side", "HEAD")
    write(env.repo, "README.md", "side\n")
    commit(env.repo, "side")
    git(env.repo, "switch", "-q", "main")
    write(env.repo, "README.md", "main\n")
    commit(env.repo, "main")
    git(env.repo, "rebase", "side", check=False)
    workspace = GitWorkspace(env.repo, env.paths, env.settings)

    with pytest.raises(WorkspaceError, match="rebase of main is in progress .*git rebase --abort"):
        env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "x"))
    with pytest.raises(WorkspaceError, match="rebase of main was in progress"):
        workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "x"))


def test_rebase_in_progress_in_worktree(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "First", {"README.md": "agent\n"})
    write(env.repo, "README.md", "user\n")
    commit(env.repo, "user change")
    worktree = env.paths.worktrees / "alpha"
    git(worktree, "rebase", "main", check=False)

    with pytest.raises(WorkspaceError, match="a rebase is in progress in the worktree"):
        env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Next"))
    assert first["branch"] in git(worktree, "status")


def test_uncommitted_changes_block_branch_switch(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "First"))
    write(info.cwd, "draft.txt", "unfinished\n")

    with pytest.raises(WorkspaceError, match="uncommitted changes on aipass/alpha/first"):
        env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Second"))
    assert (info.cwd / "draft.txt").read_text() == "unfinished\n"


def test_detached_worktree_with_lost_commits(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    info = env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "First"))
    git(info.cwd, "switch", "-q", "--detach")
    write(info.cwd, "orphan.txt", "x\n")
    commit(info.cwd, "orphan commit")

    with pytest.raises(WorkspaceError, match="detached HEAD with commits on no branch"):
        env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Second"))


def test_prune_removed_agents(tmp_path: Path) -> None:
    env = make_env(tmp_path, agents=["alpha", "beta", "gamma"])
    for agent in ("alpha", "beta", "gamma"):
        env.workspace.prepare(agent, env.config(agent), make_request(agent, "Work"))
    write(env.paths.worktrees / "gamma", "wip.txt", "keep me\n")

    result = env.workspace.prune_removed(["alpha"])

    assert result["removed"] == ["beta"]
    assert "uncommitted changes" in result["kept"]["gamma"]
    assert not (env.paths.worktrees / "beta").exists()
    assert (env.paths.worktrees / "gamma" / "wip.txt").read_text() == "keep me\n"
    assert git(env.repo, "branch", "--list", "aipass/beta/work") != ""


def test_aipass_folder_excluded_from_main_checkout(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    env.workspace.prepare("alpha", env.config("alpha"), make_request("alpha", "Work"))

    git(env.repo, "add", "-A")

    assert git(env.repo, "diff", "--cached", "--name-only") == ""
    exclude = Path(git(env.repo, "rev-parse", "--git-common-dir"))
    assert "/.aipass/" in ((env.repo / exclude) / "info" / "exclude").read_text()
