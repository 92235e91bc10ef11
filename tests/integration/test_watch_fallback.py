"""When inotify cannot add a watch, the Watcher polls instead and reports it once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from aipass_tui.core.watch import FileChange, Watcher, WatchLimitObserver

DEADLINE = 5.0

pytestmark = pytest.mark.skipif(WatchLimitObserver is None, reason="inotify is only available on Linux")


def test_watch_limit_falls_back_to_polling(tmp_path):
    messages: list[str] = []
    changes: list[FileChange] = []
    arrived = threading.Event()

    def record(change: FileChange) -> None:
        changes.append(change)
        arrived.set()

    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for folder in (first, second, third):
        folder.mkdir()
    watcher = Watcher(
        poll_interval=0.1,
        observer_factory=lambda: WatchLimitObserver(max_watches=1),
        on_fallback=messages.append,
    )
    try:
        watcher.watch(first, record)
        assert watcher.watched() == [(first, False, "native")]
        assert messages == []
        watcher.watch(second, record)
        watcher.watch(third, record)
        assert watcher.watched() == [(first, False, "native"), (second, False, "polling"), (third, False, "polling")]
        assert watcher.polling
        assert len(messages) == 1
        assert str(second) in messages[0]
        assert "watch limit" in messages[0]
        assert "fs.inotify.max_user_watches" in messages[0]
        assert watcher.fallback_message == messages[0]

        dropped = second / "request.json"
        dropped.write_text("{}")
        assert arrived.wait(DEADLINE)
        assert changes[0].path == dropped
        assert changes[0].kind == "created"
    finally:
        watcher.stop()


def test_watch_limit_zero_polls_everything(tmp_path):
    messages: list[str] = []
    watcher = Watcher(poll_interval=0.1, observer_factory=lambda: WatchLimitObserver(max_watches=0), on_fallback=messages.append)
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            watcher.watch(tmp_path / name, lambda change: None)
        assert [backend for _, _, backend in watcher.watched()] == ["polling", "polling"]
        assert len(messages) == 1
    finally:
        watcher.stop()


# The child fills its file-descriptor table, so the kernel itself refuses inotify_init with
# EMFILE. The fallback callback then frees the descriptors so that polling can read folders.
KERNEL_EMFILE_SCRIPT = textwrap.dedent(
    """
    import os, resource, sys, threading
    from pathlib import Path
    from aipass_tui.core.watch import Watcher

    folder = Path(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    filler = []
    try:
        while True:
            filler.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    messages = []

    def fallback(message):
        messages.append(message)
        for fd in filler:
            os.close(fd)
        filler.clear()

    arrived = threading.Event()
    watcher = Watcher(poll_interval=0.1, on_fallback=fallback)
    watcher.watch(folder, lambda change: arrived.set())
    (folder / "dropped.json").write_text("{}")
    ok = arrived.wait(5)
    backends = [backend for _, _, backend in watcher.watched()]
    watcher.stop()
    print(len(messages), backends, ok)
    print(messages[0] if messages else "")
    """
)


def test_kernel_refusal_falls_back(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", KERNEL_EMFILE_SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    summary, message = result.stdout.splitlines()[:2]
    assert summary == "1 ['polling'] True"
    assert str(tmp_path) in message
    assert "open-file limit" in message
