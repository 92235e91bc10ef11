"""Watcher against real file events in temp folders: debouncing, editor files, atomic saves, own writes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aipass_tui.core.store import write_json
from aipass_tui.core.watch import FileChange, Watcher

DEADLINE = 5.0


class Recorder:
    """Collects FileChanges from the Watcher's thread."""

    def __init__(self) -> None:
        self.changes: list[FileChange] = []
        self.cond = threading.Condition()

    def __call__(self, change: FileChange) -> None:
        with self.cond:
            self.changes.append(change)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[FileChange]], bool], timeout: float = DEADLINE) -> list[FileChange]:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.changes), timeout):
                raise AssertionError(f"no matching change within {timeout} s; got {self.changes}")
            return list(self.changes)

    def wait_path(self, path: Path) -> FileChange:
        self.wait(lambda changes: any(change.path == path for change in changes))
        return next(change for change in self.changes if change.path == path)

    def for_path(self, path: Path) -> list[FileChange]:
        with self.cond:
            return [change for change in self.changes if change.path == path]

    def barrier(self, folder: Path) -> None:
        """Write a marker file and wait for its change: every earlier event has been delivered by then."""
        marker = folder / f"marker-{time.monotonic_ns()}"
        marker.write_text("x")
        self.wait_path(marker)


@pytest.fixture
def watcher():
    instance = Watcher(debounce=0.1)
    yield instance
    instance.stop()


def test_one_save_one_change(tmp_path, watcher):
    recorder = Recorder()
    watcher.watch(tmp_path, recorder)
    target = tmp_path / "notes.txt"
    with open(target, "w") as handle:
        for _ in range(20):
            handle.write("line\n")
            handle.flush()
    os.utime(target)
    change = recorder.wait_path(target)
    recorder.barrier(tmp_path)
    assert change.kind == "created"
    assert len(recorder.for_path(target)) == 1


def test_modify_existing_one_change(tmp_path, watcher):
    target = tmp_path / "notes.txt"
    target.write_text("old\n")
    recorder = Recorder()
    watcher.watch(tmp_path, recorder)
    with open(target, "w") as handle:
        handle.write("new\n")
    with open(target, "a") as handle:
        handle.write("more\n")
    change = recorder.wait_path(target)
    recorder.barrier(tmp_path)
    assert change.kind == "modified"
    assert len(recorder.for_path(target)) == 1


def test_vim_style_save_ignores_swap_files(tmp_path, watcher):
    target = tmp_path / "main.py"
    target.write_text("print(1)\n")
    recorder = Recorder()
    watcher.watch(tmp_path, recorder)
    swap = tmp_path / ".main.py.swp"
    swap.write_bytes(b"\0" * 4096)
    probe = tmp_path / "4913"
    probe.write_text("")
    probe.unlink()
    backup = tmp_path / "main.py~"
    os.rename(target, backup)
    target.write_text("print(2)\n")
    backup.unlink()
    swap.unlink()
    for name in (".#main.py", "#main.py#", ".main.py.swo"):
        (tmp_path / name).write_text("editor state")
    change = recorder.wait_path(target)
    recorder.barrier(tmp_path)
    assert change.kind == "modified"
    assert len(recorder.for_path(target)) == 1
    names = {change.path.name for change in recorder.changes}
    assert names == {"main.py"} | {name for name in names if name.startswith("marker-")}


def test_atomic_save_is_change_of_target(tmp_path, watcher):
    target = tmp_path / "config.toml"
    target.write_text("a = 1\n")
    recorder = Recorder()
    watcher.watch(tmp_path, recorder)
    temp = tmp_path / "tmpk3j2_config"
    temp.write_text("a = 2\n")
    os.replace(temp, target)
    change = recorder.wait_path(target)
    recorder.barrier(tmp_path)
    assert change.kind == "modified"
    assert change.src_path == temp
    assert recorder.for_path(temp) == []
    assert len(recorder.for_path(target)) == 1


def test_write_json_seen_as_one_change(tmp_path, watcher):
    recorder = Recorder()
    watcher.watch(tmp_path, recorder, patterns=["*.json"])
    target = tmp_path / "state.json"
    write_json(target, {"n": 1})
    change = recorder.wait_path(target)
    marker = tmp_path / "z.json"
    write_json(marker, {})
    recorder.wait_path(marker)
    assert change.kind == "modified"
    assert len(recorder.for_path(target)) == 1
    assert all(change.path.suffix == ".json" for change in recorder.changes)


def test_own_writes_suppressed(tmp_path):
    watcher = Watcher(debounce=0.05)
    try:
        recorder = Recorder()
        watcher.watch(tmp_path, recorder)
        target = tmp_path / "orchestrator.json"
        watcher.suppress(target, seconds=0.5)
        write_json(target, {"mine": True})
        recorder.barrier(tmp_path)
        assert recorder.for_path(target) == []
        time.sleep(0.6)
        script = f"from aipass_tui.core.store import write_json; write_json(__import__('pathlib').Path({str(target)!r}), {{'theirs': 1}})"
        subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
        change = recorder.wait_path(target)
        assert change.kind == "modified"
    finally:
        watcher.stop()


def test_watcher_write_json_not_reported(tmp_path, watcher):
    recorder = Recorder()
    watcher.watch(tmp_path, recorder, patterns=["*.json"])
    target = tmp_path / "automation.json"
    watcher.write_json(target, {"rules": {}})
    marker = tmp_path / "other.json"
    write_json(marker, {})
    recorder.wait_path(marker)
    assert recorder.for_path(target) == []
    assert target.exists()


def test_deleted_and_moved_away(tmp_path, watcher):
    deleted = tmp_path / "deleted.txt"
    moved = tmp_path / "moved.txt"
    deleted.write_text("x")
    moved.write_text("x")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    recorder = Recorder()
    watcher.watch(tmp_path, recorder)
    deleted.unlink()
    os.rename(moved, tmp_path / "renamed.txt")
    assert recorder.wait_path(deleted).kind == "deleted"
    change = recorder.wait_path(moved)
    assert change.kind == "moved"
    assert change.dest_path == tmp_path / "renamed.txt"
    arrived = recorder.wait_path(tmp_path / "renamed.txt")
    assert arrived.kind == "modified"
    assert arrived.src_path == moved


def test_temp_file_created_and_removed_reports_nothing(tmp_path, watcher):
    recorder = Recorder()
    watcher.watch(tmp_path, recorder)
    brief = tmp_path / "scratch.txt"
    brief.write_text("x")
    brief.unlink()
    recorder.barrier(tmp_path)
    assert recorder.for_path(brief) == []


def test_many_files_each_reported(tmp_path, watcher):
    recorder = Recorder()
    watcher.watch(tmp_path, recorder, patterns=["*.json"])
    paths = [tmp_path / f"request-{i:03d}.json" for i in range(150)]
    for path in paths:
        write_json(path, {"i": path.stem})
    recorder.wait(lambda changes: {change.path for change in changes} >= set(paths))
    marker = tmp_path / "zz-marker.json"
    write_json(marker, {})
    recorder.wait_path(marker)
    for path in paths:
        assert len(recorder.for_path(path)) == 1


def test_patterns_filter(tmp_path, watcher):
    recorder = Recorder()
    watcher.watch(tmp_path, recorder, patterns=["*.toml"])
    (tmp_path / "ignored.txt").write_text("x")
    plan = tmp_path / "FPLAN-0001_x.toml"
    plan.write_text("title = 'x'\n")
    recorder.wait_path(plan)
    marker = tmp_path / "marker.toml"
    marker.write_text("")
    recorder.wait_path(marker)
    assert {change.path.name for change in recorder.changes} == {plan.name, marker.name}


def test_missing_folder_watched_once_created(tmp_path, watcher):
    recorder = Recorder()
    inbox = tmp_path / "a" / "b" / "inbox"
    watcher.watch(inbox, recorder, patterns=["*.json"])
    assert watcher.watched() == [(tmp_path, False, "native")]
    inbox.mkdir(parents=True)
    request = inbox / "r1.json"
    request.write_text("{}")
    recorder.wait_path(request)
    assert [entry[0] for entry in watcher.watched()] == [inbox]
    assert all(change.path.parent == inbox for change in recorder.changes)


def test_folder_deleted_and_recreated(tmp_path, watcher):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    recorder = Recorder()
    watcher.watch(inbox, recorder)
    first = inbox / "one"
    first.write_text("1")
    recorder.wait_path(first)
    first.unlink()
    inbox.rmdir()

    def watching_parent() -> bool:
        return watcher.watched() == [(tmp_path, False, "native")]

    deadline = time.monotonic() + DEADLINE
    while not watching_parent() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert watching_parent()
    inbox.mkdir()
    second = inbox / "two"
    second.write_text("2")
    assert recorder.wait_path(second).kind == "created"


def test_files_in_new_subfolder_reported(tmp_path, watcher):
    (tmp_path / ".git").mkdir()
    recorder = Recorder()
    watcher.watch(tmp_path, recorder, recursive=True)
    assert (tmp_path / ".git", True, "native") not in watcher.watched()
    fresh = tmp_path / "pkg" / "sub"
    fresh.mkdir(parents=True)
    module = fresh / "mod.py"
    module.write_text("x = 1\n")
    recorder.wait_path(module)
    (tmp_path / ".git" / "index").write_text("ignored")
    recorder.barrier(tmp_path)
    assert recorder.for_path(tmp_path / ".git" / "index") == []


def test_recursive_watch_skips_excluded_dirs(tmp_path, watcher):
    (tmp_path / "src" / "__pycache__").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    recorder = Recorder()
    watcher.watch(tmp_path, recorder, recursive=True)
    assert watcher.watched() == [
        (tmp_path, False, "native"),
        (tmp_path / "docs", True, "native"),
        (tmp_path / "src", False, "native"),
    ]
    (tmp_path / "src" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    source = tmp_path / "src" / "x.py"
    source.write_text("")
    recorder.wait_path(source)
    recorder.barrier(tmp_path)
    assert recorder.for_path(tmp_path / "src" / "__pycache__" / "x.pyc") == []


def test_unwatch_stops_callbacks(tmp_path, watcher):
    recorder = Recorder()
    other = Recorder()
    subscription = watcher.watch(tmp_path, recorder)
    watcher.watch(tmp_path, other)
    watcher.unwatch(subscription)
    late = tmp_path / "late.txt"
    late.write_text("x")
    other.wait_path(late)
    other.barrier(tmp_path)
    assert recorder.changes == []


def test_callback_error_does_not_stop_delivery(tmp_path, watcher):
    recorder = Recorder()

    def broken(change: FileChange) -> None:
        raise RuntimeError("handler bug")

    watcher.watch(tmp_path, broken)
    watcher.watch(tmp_path, recorder)
    first = tmp_path / "a"
    first.write_text("1")
    recorder.wait_path(first)
    second = tmp_path / "b"
    second.write_text("2")
    recorder.wait_path(second)


def test_stop_ends_threads(tmp_path):
    watcher = Watcher()
    watcher.watch(tmp_path, Recorder())
    names = {thread.name for thread in threading.enumerate()}
    assert "aipass-watch-debounce" in names
    watcher.stop()
    deadline = time.monotonic() + DEADLINE
    while any(t.name == "aipass-watch-debounce" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(thread.name == "aipass-watch-debounce" for thread in threading.enumerate())
