"""Pull requests recorded from finished runs: commits, checks, files, follow-ups, violations."""

from __future__ import annotations

import json
import shlex
import sys
import threading
import time
from pathlib import Path

import pytest

from aipass_tui.core.gitflow import GitWorkspace
from aipass_tui.core.handlers import run_handler
from aipass_tui.core.pulls import PullStatus, PullStore
from aipass_tui.core.workspace import WorkspaceError
from test_gitflow_support import (  # noqa: F401  (no_user_git_config is an autouse fixture)
    agent_work,
    commit,
    git,
    make_env,
    make_request,
    make_run,
    no_user_git_config,
    write,
)

PY = sys.executable


def test_uncommitted_work_becomes_pull_request(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    pull = agent_work(env, "alpha", "Add greeting", {"src/app.py": "print('hello')\n", "docs/new.md": "new\n"}, summary="Added a greeting.")

    assert pull is not None
    assert pull["id"] == "1"
    assert pull["agent"] == "alpha"
    assert pull["branch"] == "aipass/alpha/add-greeting"
    assert pull["target"] == "main"
    assert pull["base"] == git(env.repo, "rev-parse", "main")
    assert pull["head"] == git(env.repo, "rev-parse", pull["branch"])
    assert pull["title"] == "Add greeting"
    assert pull["body"] == "Added a greeting."
    assert pull["status"] == "open"
    files = {f["path"]: f for f in pull["files"]}
    assert files["docs/new.md"]["status"] == "added"
    assert (files["src/app.py"]["additions"], files["src/app.py"]["deletions"]) == (1, 1)
    stored = json.loads((env.paths.pulls / "1.json").read_text())
    assert stored["schema_version"] == 1
    assert stored["head"] == pull["head"]
    author = git(env.repo, "log", "-1", "--format=%an <%ae>|%s|%b", pull["branch"])
    assert author == "alpha <alpha@aipass.local>|Add greeting|Added a greeting."


def test_agent_commits_are_kept(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    request = make_request("alpha", "Refactor")
    info = env.workspace.prepare("alpha", env.config("alpha"), request)
    write(info.cwd, "one.txt", "1\n")
    commit(info.cwd, "agent commit one")
    write(info.cwd, "two.txt", "2\n")
    commit(info.cwd, "agent commit two")

    pull = env.workspace.finish(make_run("alpha", request, info), request, env.config("alpha"))

    assert git(env.repo, "rev-list", "--count", f"{pull['base']}..{pull['head']}") == "2"
    assert sorted(f["path"] for f in pull["files"]) == ["one.txt", "two.txt"]


def test_run_without_changes_records_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    assert agent_work(env, "alpha", "Look around", {}) is None
    assert PullStore(env.paths).list() == []


def test_shared_agent_records_nothing(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    config = env.config("alpha").model_copy(update={"isolation": "shared"})
    request = make_request("alpha", "x")
    info = env.workspace.prepare("alpha", config, request)
    write(info.cwd, "shared.txt", "x\n")

    assert env.workspace.finish(make_run("alpha", request, info), request, config) is None


def test_checks_run_and_logs_kept(tmp_path: Path) -> None:
    checks = [
        f"{PY} -c \"print('lint ok')\"",
        f"{PY} -c \"import sys; print('2 tests failed'); sys.exit(3)\"",
        "no-such-checker --all",
        "unbalanced 'quote",
    ]
    env = make_env(tmp_path, checks=checks)

    pull = agent_work(env, "alpha", "Change", {"a.txt": "a\n"})

    results = pull["checks"]
    assert [c["status"] for c in results] == ["passed", "failed", "error", "error"]
    assert results[0]["output_tail"] == "lint ok\n"
    assert results[1]["exit_code"] == 3
    assert "2 tests failed" in (env.paths.pulls / results[1]["log"]).read_text()
    assert "not found" in results[2]["message"]
    assert "quoting" in results[3]["message"]


def test_check_timeout_stops_process_group(tmp_path: Path) -> None:
    script = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('started', flush=True); time.sleep(60)"
    env = make_env(tmp_path, checks=[f'{PY} -c "{script}"'], check_timeout=1)

    pull = agent_work(env, "alpha", "Change", {"a.txt": "a\n"})

    [check] = pull["checks"]
    assert check["status"] == "timed_out"
    assert "started" in check["output_tail"]
    assert check["duration"] < 30


def test_agent_checks_replace_global_checks(tmp_path: Path) -> None:
    env = make_env(tmp_path, checks=["false"])
    config = env.config("alpha").model_copy(update={"checks": [f"{PY} -c pass"]})
    request = make_request("alpha", "x")
    info = env.workspace.prepare("alpha", config, request)
    write(info.cwd, "a.txt", "a\n")

    pull = env.workspace.finish(make_run("alpha", request, info), request, config)

    assert [c["status"] for c in pull["checks"]] == ["passed"]


def test_files_left_by_checks_are_discarded(tmp_path: Path) -> None:
    env = make_env(tmp_path, checks=[f"{PY} -c \"open('report.txt', 'w').write('x')\""])

    pull = agent_work(env, "alpha", "Change", {"a.txt": "a\n"})

    assert "report.txt" in pull["message"]
    assert not (env.paths.worktrees / "alpha" / "report.txt").exists()
    assert git(env.paths.worktrees / "alpha", "status", "--porcelain") == ""
    assert [f["path"] for f in pull["files"]] == ["a.txt"]


def test_target_changes_never_look_like_deletions(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    request = make_request("alpha", "Agent change")
    info = env.workspace.prepare("alpha", env.config("alpha"), request)
    write(env.repo, "user.txt", "user work\n")
    commit(env.repo, "user commit on main")
    write(info.cwd, "agent.txt", "agent\n")

    pull = env.workspace.finish(make_run("alpha", request, info), request, env.config("alpha"))

    assert [f["path"] for f in pull["files"]] == ["agent.txt"]
    assert pull["base"] == info.base_commit


def test_follow_up_updates_same_pull_request(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "Feature", {"f.txt": "v1\n"})
    store = PullStore(env.paths)
    pull = store.load(first["id"])
    pull.status = PullStatus.CHANGES_REQUESTED
    store.save(pull)

    second = agent_work(env, "alpha", "Address review", {"f.txt": "v2\n"}, branch=first["branch"], summary="Fixed.")

    assert second["id"] == first["id"]
    assert second["status"] == "open"
    assert second["head"] != first["head"]
    assert second["base"] == first["base"]
    assert len(second["requests"]) == 2
    assert second["body"] == "Fixed."
    assert len(store.list()) == 1


def test_new_request_after_merge_gets_new_pull(tmp_path: Path) -> None:
    from aipass_tui.core.gitflow_review import merge_pull

    env = make_env(tmp_path)
    first = agent_work(env, "alpha", "One", {"one.txt": "1\n"})
    merge_pull(env.repo, env.paths, env.settings, first["id"])

    second = agent_work(env, "alpha", "Two", {"two.txt": "2\n"})

    assert second["id"] == "2"
    assert [f["path"] for f in second["files"]] == ["two.txt"]


def test_violations_from_allowed_globs(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    workspace = GitWorkspace(env.repo, env.paths, env.settings, allowed_globs=lambda request: ["src/**", "docs/*.md"] if request.plan_task else None)
    request = make_request("alpha", "Planned", plan_task="P-1/1")
    info = workspace.prepare("alpha", env.config("alpha"), request)
    write(info.cwd, "src/deep/mod.py", "x\n")
    write(info.cwd, "docs/guide.md", "g\n")
    write(info.cwd, "docs/sub/other.md", "o\n")
    write(info.cwd, "setup.cfg", "s\n")

    pull = workspace.finish(make_run("alpha", request, info), request, env.config("alpha"))

    assert sorted(pull["violations"]) == ["docs/sub/other.md", "setup.cfg"]


def test_missing_worktree_at_finish(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    request = make_request("alpha", "x")
    info = env.workspace.prepare("alpha", env.config("alpha"), request)
    git(env.repo, "worktree", "remove", "--force", str(info.cwd))

    with pytest.raises(WorkspaceError, match="is missing, so the changes of run"):
        env.workspace.finish(make_run("alpha", request, info), request, env.config("alpha"))


def test_stale_index_lock_at_finish(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    request = make_request("alpha", "x")
    info = env.workspace.prepare("alpha", env.config("alpha"), request)
    write(info.cwd, "a.txt", "a\n")
    lock = Path(git(info.cwd, "rev-parse", "--absolute-git-dir")) / "index.lock"
    lock.write_text("")

    with pytest.raises(WorkspaceError, match="index.lock exists"):
        env.workspace.finish(make_run("alpha", request, info), request, env.config("alpha"))
    assert (info.cwd / "a.txt").read_text() == "a\n"


def test_corrupt_pull_file_is_reported(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    agent_work(env, "alpha", "One", {"one.txt": "1\n"})
    (env.paths.pulls / "2.json").write_text("{not json")
    store = PullStore(env.paths)

    pulls = store.list()

    assert [p.id for p in pulls] == ["1"]
    assert "2.json" in store.problems[0]
    assert list(env.paths.pulls.glob("2.json.corrupt-*"))
    assert store.next_id() == "3"


def wait_for_file_check(started: Path, release: Path) -> str:
    script = (
        "import pathlib, time; "
        f"pathlib.Path({str(started)!r}).write_text('x'); "
        "deadline = time.time() + 20\n"
        f"while not pathlib.Path({str(release)!r}).exists() and time.time() < deadline: time.sleep(0.02)"
    )
    return f"{PY} -c {shlex.quote(script)}"


def finish_follow_up_during(env, tmp_path: Path, action) -> dict:
    """Finish a follow-up run whose check waits while ``action`` runs; return the recorded pull."""
    first = agent_work(env, "alpha", "Feature", {"f.txt": "v1\n"})
    started, release = tmp_path / "started", tmp_path / "release"
    config = env.config("alpha").model_copy(update={"checks": [wait_for_file_check(started, release)]})
    request = make_request("alpha", "Follow-up", branch=first["branch"])
    info = env.workspace.prepare("alpha", config, request)
    write(info.cwd, "f.txt", "v2\n")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(env.workspace.finish(make_run("alpha", request, info), request, config)))
    thread.start()
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    action(first)
    release.write_text("go")
    thread.join(timeout=30)
    return result


def test_comment_during_checks_is_kept(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    pull = finish_follow_up_during(env, tmp_path, lambda first: run_handler(env.ctx(), "pr.comment", {"pull_id": first["id"], "body": "late remark"}))

    assert pull["id"] == "1"
    assert [c["body"] for c in pull["comments"]] == ["late remark"]
    assert [c.body for c in PullStore(env.paths).load("1").comments] == ["late remark"]


def test_close_during_checks_records_new_pull(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    pull = finish_follow_up_during(env, tmp_path, lambda first: run_handler(env.ctx(), "pr.close", {"pull_id": first["id"]}))

    assert pull["id"] == "2"
    assert pull["status"] == "open"
    assert PullStore(env.paths).load("1").status == "closed"
