"""The demo end to end: a real demo repository, the real orchestrator and the scripted demo agent.

Every demo pull request merges, and a rebase request makes the scripted agent rebase its branch,
keeping both sides of its own notes file when they conflict.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from aipass_tui.config import load_settings
from aipass_tui.core.gitflow_review import rebase_suggestion
from aipass_tui.core.handlers import call
from aipass_tui.core.orchestrator import Orchestrator
from aipass_tui.core.pulls import PullRequest, PullStatus, PullStore
from aipass_tui.core.store import Paths
from aipass_tui.demo import REQUESTS, create_demo_repo
from aipass_tui.demo_agents import scripted_agent

SCRIPT = Path(scripted_agent.__file__)
DEADLINE = 120.0


def wait_until(predicate: Callable[[], object], message: str, timeout: float = DEADLINE) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {message}")


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def commit_on_main(repo: Path, name: str, text: str) -> None:
    """Commit a file in the demo repository's own checkout of main, as a user would."""
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    git(repo, "add", "--", name)
    git(repo, "-c", "user.name=demo user", "-c", "user.email=user@aipass.local", "commit", "-q", "-m", f"Edit {name}")


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orchestrators: list) -> SimpleNamespace:
    """A demo repository whose orchestrator has turned every queued demo request into a pull request."""
    monkeypatch.setenv("DEMO_AGENT_PACE", "0")
    repo = create_demo_repo(tmp_path / "demo")
    settings = load_settings(repo)
    paths = Paths(repo)
    orchestrator = Orchestrator(repo, settings, role="demo test")
    orchestrator.start_thread()
    orchestrators.append(orchestrator)
    store = PullStore(paths)

    def all_open() -> list[PullRequest]:
        pulls = store.list()
        done = len(pulls) == len(REQUESTS) and all(pull.status == PullStatus.OPEN for pull in pulls)
        return pulls if done else []

    pulls = wait_until(all_open, f"{len(REQUESTS)} open demo pull requests")
    return SimpleNamespace(repo=repo, settings=settings, paths=paths, store=store, pulls=pulls)


def merge(demo: SimpleNamespace, pull_id: str) -> dict:
    return call(demo.paths, demo.settings, "pr.merge", {"pull_id": pull_id})


def pull_of(demo: SimpleNamespace, agent: str) -> PullRequest:
    return next(pull for pull in demo.pulls if pull.agent == agent)


def rebased(demo: SimpleNamespace, pull: PullRequest) -> PullRequest:
    """Send a rebase request for ``pull`` and wait until the agent's run updated it."""
    call(demo.paths, demo.settings, "pr.rebase-request", {"pull_id": pull.id})

    def updated() -> PullRequest | None:
        current = demo.store.load(pull.id)
        return current if current.status == PullStatus.OPEN and current.head != pull.head else None

    return wait_until(updated, f"pull request {pull.id} rebased by {pull.agent}")


def test_every_demo_pull_merges(demo: SimpleNamespace) -> None:
    notes = [file.path for pull in demo.pulls for file in pull.files]

    for pull in demo.pulls:
        result = merge(demo, pull.id)
        assert result["merged"], result.get("message")

    assert len(set(notes)) == len(REQUESTS)
    for name in notes:
        assert name.startswith("demo-notes/"), name
        assert (demo.repo / name).is_file(), name
    assert git(demo.repo, "status", "--porcelain") == ""


def test_rebase_request_rebases_branch(demo: SimpleNamespace) -> None:
    assert merge(demo, pull_of(demo, "planner").id)["merged"]
    tester = pull_of(demo, "tester")
    main_head = git(demo.repo, "rev-parse", "main")
    assert git(demo.repo, "merge-base", "main", tester.head) != main_head

    updated = rebased(demo, tester)

    assert git(demo.repo, "merge-base", "main", updated.head) == main_head
    assert [file.path for file in updated.files] == [file.path for file in tester.files]
    assert merge(demo, tester.id)["merged"]


def test_rebase_keeps_both_sides_of_notes(demo: SimpleNamespace) -> None:
    docs = pull_of(demo, "docs")
    [notes] = [file.path for file in docs.files]
    agent_line = git(demo.repo, "show", f"{docs.head}:{notes}")
    commit_on_main(demo.repo, notes, "- a line written on main\n")

    conflict = merge(demo, docs.id)
    assert not conflict["merged"]
    assert demo.store.load(docs.id).conflict_files == [notes]

    updated = rebased(demo, docs)

    merged_notes = git(demo.repo, "show", f"{updated.head}:{notes}")
    assert "- a line written on main" in merged_notes
    assert agent_line in merged_notes
    assert "<<<<<<<" not in merged_notes
    assert merge(demo, docs.id)["merged"]


def test_rebase_aborts_on_other_conflict(repo: Path) -> None:
    commit_on_main(repo, "shared.txt", "base\n")
    git(repo, "switch", "-q", "-c", "aipass/docs/shared")
    commit_on_main(repo, "shared.txt", "branch\n")
    branch_head = git(repo, "rev-parse", "HEAD")
    git(repo, "switch", "-q", "main")
    commit_on_main(repo, "shared.txt", "main\n")
    git(repo, "switch", "-q", "aipass/docs/shared")
    pull = SimpleNamespace(id="3", agent="docs", target="main", title="Share", branch="aipass/docs/shared")
    request = rebase_suggestion(pull, ["shared.txt"])
    prompt = f"{request['subject']}\n\n{request['body']}"

    result = subprocess.run([sys.executable, str(SCRIPT), "docs", prompt], cwd=repo, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert "Rebase aborted: conflicts in shared.txt" in result.stdout
    assert git(repo, "rev-parse", "HEAD") == branch_head
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("conflict", [True, False])
def test_rebase_target_from_request(conflict: bool) -> None:
    pull = SimpleNamespace(id="12", agent="coder", target="release/1.x", title="Fix", branch="aipass/coder/fix")
    request = rebase_suggestion(pull, ["a.txt"], conflict=conflict)

    assert scripted_agent.rebase_target(f"{request['subject']}\n\n{request['body']}") == "release/1.x"


def test_rebase_target_other_prompt() -> None:
    assert scripted_agent.rebase_target("Handle division by zero in divide()") is None
    assert scripted_agent.rebase_target("") is None
