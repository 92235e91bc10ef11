"""The built-in watches on a real repository: inbox, plans, state and ownership."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from aipass_tui.core.store import Paths, write_json
from aipass_tui.core.watch import FileChange, GlobError, RepoWatches, Watcher, WatchError

DEADLINE = 5.0


class Calls:
    """Collects callback arguments from the Watcher's threads."""

    def __init__(self) -> None:
        self.items: list[object] = []
        self.cond = threading.Condition()

    def add(self, *args: object) -> None:
        with self.cond:
            self.items.append(args[0] if len(args) == 1 else args)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[object]], bool], timeout: float = DEADLINE) -> list[object]:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.items), timeout):
                raise AssertionError(f"condition not met within {timeout} s; calls: {self.items}")
            return list(self.items)

    def wait_for_item(self, item: object) -> None:
        self.wait(lambda items: item in items)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30).stdout


def write_elsewhere(path: Path, data: object) -> None:
    """Write a JSON file atomically from another process, as a headless command would."""
    script = "import json, sys, pathlib; from aipass_tui.core.store import write_json; write_json(pathlib.Path(sys.argv[1]), json.loads(sys.argv[2]))"
    import json

    subprocess.run([sys.executable, "-c", script, str(path), json.dumps(data)], check=True, timeout=30)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "user.name", "Test")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text("print('app')\n")
    (root / "README.md").write_text("# repo\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    Paths(root).ensure()
    return root


@pytest.fixture
def watches(repo: Path):
    watcher = Watcher(debounce=0.05)
    handlers = RepoWatches(watcher, Paths(repo))
    yield handlers
    handlers.close()
    watcher.stop()


def test_inbox_wakes_on_dropped_file(repo, watches):
    calls = Calls()
    watches.watch_inbox(calls.add)
    request = Paths(repo).inbox / "r-1.json"
    write_elsewhere(request, {"type": "request", "agent": "a"})
    calls.wait_for_item(request)


def test_inbox_many_files_each_woken(repo, watches):
    calls = Calls()
    watches.watch_inbox(calls.add)
    inbox = Paths(repo).inbox
    script = (
        "import sys, pathlib\nfrom aipass_tui.core.store import write_json\n"
        "for i in range(200):\n    write_json(pathlib.Path(sys.argv[1]) / f'r-{i:03d}.json', {'i': i})\n"
    )
    subprocess.run([sys.executable, "-c", script, str(inbox)], check=True, timeout=60)
    expected = {inbox / f"r-{i:03d}.json" for i in range(200)}
    calls.wait(lambda items: set(items) >= expected)
    assert len([item for item in calls.items if item in expected]) == 200


def test_inbox_ignores_other_files_and_deletes(repo, watches):
    calls = Calls()
    watches.watch_inbox(calls.add)
    inbox = Paths(repo).inbox
    (inbox / "notes.txt").write_text("x")
    request = inbox / "r-2.json"
    request.write_text("{}")
    calls.wait_for_item(request)
    request.unlink()
    last = inbox / "r-3.json"
    last.write_text("{}")
    calls.wait_for_item(last)
    assert calls.items == [request, last]


def test_plan_change_from_other_process(repo, watches):
    calls = Calls()
    watches.watch_plans(calls.add)
    plan = Paths(repo).plans / "FPLAN-0001_login.toml"
    subprocess.run([sys.executable, "-c", f"open({str(plan)!r}, 'w').write('title = \"Login\"\\n')"], check=True, timeout=30)
    items = calls.wait(lambda items: any(isinstance(i, FileChange) and i.path == plan for i in items))
    assert items[0].kind == "created"


def test_plan_own_save_suppressed(repo, watches):
    calls = Calls()
    watches.watch_plans(calls.add)
    plans = Paths(repo).plans
    own = plans / "FPLAN-0002_own.toml"
    watches.watcher.suppress(own)
    own.write_text("title = 'mine'\n")
    marker = plans / "FPLAN-0003_marker.toml"
    marker.write_text("title = 'marker'\n")
    calls.wait(lambda items: any(i.path == marker for i in items))
    assert [i.path for i in calls.items] == [marker]


def test_state_change_reported_and_own_suppressed(repo, watches):
    calls = Calls()
    watches.watch_state(calls.add)
    paths = Paths(repo)
    agent_state = paths.agent_state("claude-a")
    watches.watcher.write_json(paths.orchestrator, {"queue": []})
    watches.watcher.write_json(agent_state, {"status": "idle"})
    write_json(paths.replies / "c-1.json", {"ok": True})
    pull = paths.pulls / "p-1.json"
    write_elsewhere(pull, {"status": "open"})
    calls.wait(lambda items: any(i.path == pull for i in items))
    foreign = paths.agent_state("codex-b")
    write_elsewhere(foreign, {"status": "running"})
    calls.wait(lambda items: any(i.path == foreign for i in items))
    reported = {i.path for i in calls.items}
    assert reported == {pull, foreign}


@pytest.fixture
def worktree(repo: Path) -> Path:
    path = Paths(repo).worktrees / "claude-a"
    path.parent.mkdir(parents=True, exist_ok=True)
    git(repo, "worktree", "add", "-q", "-b", "aipass/claude-a/login", str(path))
    (path / "build").mkdir()
    (path / "node_modules" / "left-pad").mkdir(parents=True)
    return path


def test_ownership_reports_outside_globs(worktree, watches):
    calls = Calls()
    watches.watch_ownership("claude-a", worktree, ["src/**", "tests/test_login.py"], calls.add)
    (worktree / "src" / "login.py").write_text("def login(): ...\n")
    (worktree / "src" / "app.py").write_text("print('changed')\n")
    (worktree / "build" / "out.bin").write_bytes(b"\0")
    (worktree / "node_modules" / "left-pad" / "index.js").write_text("x")
    (worktree / "debug.log").write_text("ignored by .gitignore")
    (worktree / ".aider.chat.history.md").write_text("aider's own file")
    (worktree / ".aider.tags.cache.v4").mkdir()
    (worktree / ".aider.tags.cache.v4" / "cache.db").write_text("x")
    (worktree / "tests").mkdir()
    (worktree / "tests" / "test_login.py").write_text("def test(): ...\n")
    (worktree / "README.md").write_text("# changed outside the task\n")
    (worktree / "docs").mkdir()
    (worktree / "docs" / "guide.md").write_text("new file in a new folder\n")
    expected = [("claude-a", Path("README.md")), ("claude-a", Path("docs/guide.md"))]
    calls.wait(lambda items: all(item in items for item in expected))
    # A second change of a reported file is not reported again; a marker proves delivery went on.
    (worktree / "README.md").write_text("# changed again\n")
    (worktree / "marker.txt").write_text("x")
    calls.wait_for_item(("claude-a", Path("marker.txt")))
    assert sorted(calls.items) == sorted(expected + [("claude-a", Path("marker.txt"))])


def test_ownership_watch_plan_skips_ignored_dirs(worktree, watches):
    watches.watch_ownership("claude-a", worktree, ["src/**"], lambda agent, path: None)
    watched = {path for path, _, _ in watches.watcher.watched()}
    assert worktree / "build" not in watched
    assert worktree / "node_modules" not in watched
    assert worktree / "src" in watched
    assert all(not path.is_relative_to(worktree / "node_modules") for path in watched)


def test_unwatch_ownership_stops_alerts(worktree, watches):
    calls = Calls()
    watches.watch_ownership("claude-a", worktree, ["src/**"], calls.add)
    (worktree / "first.txt").write_text("x")
    calls.wait_for_item(("claude-a", Path("first.txt")))
    watches.unwatch_ownership("claude-a")
    assert watches.ownership_agents() == []
    assert not any(path.is_relative_to(worktree) for path, _, _ in watches.watcher.watched())
    # Another agent's watch on the same folder proves that the next change was delivered.
    witness = Calls()
    watches.watch_ownership("witness", worktree, [], witness.add)
    (worktree / "second.txt").write_text("x")
    witness.wait_for_item(("witness", Path("second.txt")))
    assert calls.items == [("claude-a", Path("first.txt"))]


def test_ownership_shared_repository(repo, watches):
    # An agent with isolation = "shared" works in the repository, next to .aipass/.
    calls = Calls()
    watches.watch_ownership("shared", repo, ["src/**"], calls.add)
    run_dir = Paths(repo).run_dir("r-1")
    run_dir.mkdir(parents=True)
    (run_dir / "stdout").write_text("transcript line\n")
    (repo / "src" / "app.py").write_text("print('mine')\n")
    (repo / "README.md").write_text("# not mine\n")
    calls.wait_for_item(("shared", Path("README.md")))
    (repo / "marker.txt").write_text("x")
    calls.wait_for_item(("shared", Path("marker.txt")))
    assert calls.items == [("shared", Path("README.md")), ("shared", Path("marker.txt"))]


def test_ownership_bad_input(repo, watches, tmp_path):
    with pytest.raises(WatchError, match="does not exist"):
        watches.watch_ownership("ghost", tmp_path / "missing", ["src/**"], lambda agent, path: None)
    with pytest.raises(GlobError, match="leaves the repository"):
        watches.watch_ownership("claude-a", repo, ["../elsewhere/**"], lambda agent, path: None)
    assert watches.ownership_agents() == []
