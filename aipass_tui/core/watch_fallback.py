"""The polling fallback: its message, and an observer that runs out of inotify watches on purpose."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEventHandler
from watchdog.observers.api import ObservedWatch

FALLBACK_ERRNOS = {errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
"""Errors of adding an inotify watch that mean inotify cannot be used there, so polling takes over."""


def fallback_message(path: Path | None, exc: OSError | None, interval: float) -> str:
    """Describe a fallback to polling: which path, the cause, and how to allow more inotify watches."""
    where = f"{path}" if path is not None else "files"
    if exc is None:
        reason = "this platform has no native file event API that watchdog can use"
        fix = ""
    elif exc.errno == errno.ENOSPC:
        reason = "the inotify watch limit was reached (fs.inotify.max_user_watches)"
        fix = (
            " To allow more watches, run 'sudo sysctl fs.inotify.max_user_watches=524288' and add that "
            "setting to /etc/sysctl.conf to keep it after a reboot."
        )
    elif exc.errno in (errno.EMFILE, errno.ENFILE):
        reason = "the inotify instance limit or the open-file limit was reached"
        fix = (
            " Raise 'fs.inotify.max_user_instances' with sysctl or the open-file limit with 'ulimit -n'; "
            "if watches run out too, raise fs.inotify.max_user_watches the same way."
        )
    else:
        reason = f"inotify is not supported there ({exc.strerror or exc})"
        fix = " Watches on a local filesystem use inotify; fs.inotify.max_user_watches limits how many."
    return (
        f"Watching {where} fell back to polling every {interval:g} s because {reason}. "
        f"File changes are noticed later and cost more CPU.{fix}"
    )


try:
    from watchdog.observers.inotify import InotifyObserver
except Exception:  # noqa: BLE001 - watchdog raises UnsupportedLibcError or ImportError off Linux
    InotifyObserver = None  # type: ignore[assignment,misc]


if InotifyObserver is not None:

    class WatchLimitObserver(InotifyObserver):  # type: ignore[misc,valid-type]
        """An inotify observer limited to ``max_watches`` folders, like a low fs.inotify.max_user_watches.

        Past the limit, ``schedule`` raises the same ``OSError(ENOSPC, ...)`` that watchdog
        raises when the kernel refuses a watch, which makes the polling fallback reachable in
        tests and demonstrations.
        """

        def __init__(self, max_watches: int = 0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.max_watches = max_watches
            self._used: dict[ObservedWatch, int] = {}

        def schedule(self, event_handler: FileSystemEventHandler, path: str | Path, *, recursive: bool = False, **kwargs: Any) -> ObservedWatch:
            needed = 1
            if recursive:
                needed += sum(len(dirnames) for _, dirnames, _ in os.walk(path))
            if sum(self._used.values()) + needed > self.max_watches:
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
            observed = super().schedule(event_handler, path, recursive=recursive, **kwargs)
            self._used[observed] = needed
            return observed

        def unschedule(self, watch: ObservedWatch) -> None:
            self._used.pop(watch, None)
            super().unschedule(watch)
