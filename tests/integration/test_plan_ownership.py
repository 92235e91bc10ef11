"""A plan task's agent that changes files outside its globs is caught at review."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aipass_tui.config import load_settings
from aipass_tui.core.gitflow import GitWorkspace
from aipass_tui.core.handlers import HandlerContext, HandlerError, run_handler
from aipass_tui.core.orchestrator import Orchestrator
from aipass_tui.core.plans import PlanStatus, TaskStatus, allowed_globs, host_for
from aipass_tui.core.pulls import PullStore
from aipass_tui.core.store import Paths
from tests.conftest import git, wait_until, write_config

PLAN = '''\
title = "One file"
goal = "a.txt exists"

[[phases]]
name = "Write"
goal = "File exists"

[[phases.tasks]]
id = "a"
agent = "alpha"
title = "File a"
prompt = "Write a.txt and nothing else"
files = ["a.txt"]
review = "auto"
'''


def test_stray_file_blocks_automatic_merge(repo: Path, orchestrators: list) -> None:
    write_config(repo, '''
        [agents.alpha]
        kind = "command"
        command = ["sh", "-c", "echo alpha > a.txt; echo oops > stray.txt"]
    ''')
    paths = Paths(repo)
    paths.ensure()
    (paths.plans / "FPLAN-0001_one.toml").write_text(textwrap.dedent(PLAN))
    settings = load_settings(repo)
    workspace = GitWorkspace(repo, paths, settings, allowed_globs=allowed_globs(paths, settings))
    orchestrator = Orchestrator(repo, settings, role="test", workspace=workspace)
    orchestrators.append(orchestrator)
    host = host_for(orchestrator, paths, settings, start_thread=False)
    orchestrator.start_thread()
    host.start_thread()
    try:
        execution = host.start_plan("FPLAN-0001")
        wait_until(lambda: execution.status == PlanStatus.PAUSED, timeout=60, message="the plan to pause")
        task = execution.task_state("a")
        assert task.reason == (
            "pull request 1 changes files outside the task's globs (stray.txt): review it and merge with "
            "aipass-tui pr merge 1 --allow-violations, or retry the task"
        )
        assert PullStore(paths).load("1").violations == ["stray.txt"]
        head_before = git(repo, "rev-parse", "main")

        ctx = HandlerContext(paths, settings, orchestrator)
        with pytest.raises(HandlerError) as refused:
            run_handler(ctx, "pr.merge", {"pull_id": "1"})
        assert "outside its plan task's globs (stray.txt)" in str(refused.value)
        assert git(repo, "rev-parse", "main") == head_before

        run_handler(ctx, "pr.merge", {"pull_id": "1", "allow_violations": True})
        wait_until(lambda: execution.status == PlanStatus.COMPLETED, timeout=30, message="the plan to complete")
        assert execution.task_state("a").status == TaskStatus.MERGED
        assert git(repo, "show", "main:a.txt") == "alpha\n"
    finally:
        host.stop()
