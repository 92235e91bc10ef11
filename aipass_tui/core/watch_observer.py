"""File watching on top of watchdog: debounced per-path changes, own writes ignored, polling fallback.

One save produces several file events (create, modify, close, a rename from a temp file, an
editor's swap files). ``Watcher`` turns them into one ``FileChange`` per path after a short
quiet period. It drops editor swap and backup files, our own temp files, and changes to paths
that ``suppress`` marked as our own writes. A rename onto a path counts as a modification of
that path. It watches only the directories that each subscription plans, and follows
directories that are created or deleted later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from aipass_tui.core import store
from aipass_tui.core.watch_events import ChangeCallback, FileChange, absolute, is_ignored_name, merge_changes
from aipass_tui.core.watch_fallback import FALLBACK_ERRNOS, fallback_message
from aipass_tui.core.watch_paths import DEFAULT_EXCLUDED_DIRS, GlobSet, WatchEntry, plan_globs, plan_tree
from aipass_tui.core.watch_timers import DeadlineScheduler

log = logging.getLogger(__name__)

_EVENT_TYPES: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]

class Subscription:
    """The watched folders and the callback of one ``Watcher.watch`` or ``watch_globs`` call."""

    def __init__(
        self,
        watcher: "Watcher",
        number: int,
        callback: ChangeCallback,
        accepts: Callable[[Path], bool],
        planner: Callable[[], list[WatchEntry]],
        debounce: float,
        exclude_dirs: frozenset[str],
        label: str,
        skip_dir: Callable[[Path], bool] | None = None,
    ) -> None:
        self.watcher = watcher
        self.number = number
        self.callback = callback
        self.accepts = accepts
        self.planner = planner
        self.debounce = debounce
        self.exclude_dirs = exclude_dirs
        self.skip_dir = skip_dir
        self.label = label
        self.entries: set[WatchEntry] = set()
        self.active = True

    def covers(self, entry: WatchEntry, path: Path) -> bool:
        """Tell whether a file event at ``path``, seen by the watch ``entry``, belongs to this subscription."""
        if is_ignored_name(path.name):
            return False
        try:
            relative = path.relative_to(entry.path)
        except ValueError:
            return False
        folders = relative.parts[:-1]
        if folders and not entry.recursive:
            return False
        if any(folder in self.exclude_dirs for folder in folders):
            return False
        if self.skip_dir is not None:
            folder = entry.path
            for name in folders:
                folder = folder / name
                if self.skip_dir(folder):
                    return False
        return self.accepts(path)

    def close(self) -> None:
        self.watcher.unwatch(self)

    def __repr__(self) -> str:
        return f"<Subscription {self.number} {self.label}>"


class _Dispatch(FileSystemEventHandler):
    """The watchdog handler of one watched directory; it forwards every event to the Watcher."""

    def __init__(self, watcher: "Watcher", entry: WatchEntry) -> None:
        self.watcher = watcher
        self.entry = entry

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self.watcher._on_event(self.entry, event)
        except Exception:
            log.exception("handling file event %r failed", event)


@dataclass
class _Watch:
    observed: ObservedWatch
    observer: BaseObserver
    backend: str
    subscribers: set[int]


class Watcher:
    """All file watching of one orchestrator, on one watchdog observer.

    Callbacks run on the Watcher's debounce thread, one at a time, so they must return quickly
    (hand work to a queue or another thread).

    ``observer_factory`` builds the observer (default: watchdog's native one, inotify on Linux).
    Inotify may be out of watches or instances, or unsupported. When the observer cannot add a
    watch for that reason, a ``PollingObserver`` watches that path and every later one. Then
    ``on_fallback`` is called once with a message that names the path, the cause and the fix.
    """

    def __init__(
        self,
        *,
        debounce: float = 0.1,
        max_delay: float = 2.0,
        poll_interval: float = 1.0,
        observer_factory: Callable[[], BaseObserver] | None = None,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        self.debounce = debounce
        self.max_delay = max_delay
        self.poll_interval = poll_interval
        self._observer_factory = observer_factory or Observer
        self.on_fallback = on_fallback
        self.fallback_message: str | None = None
        self._lock = threading.RLock()
        self._observer: BaseObserver | None = None
        self._polling: BaseObserver | None = None
        self._use_polling = False
        self._watches: dict[WatchEntry, _Watch] = {}
        self._subscriptions: dict[int, Subscription] = {}
        self._pending: dict[tuple[int, str], tuple[FileChange, float]] = {}
        self._suppressed: dict[str, float] = {}
        self._numbers = iter(range(1, 1 << 62))
        self._timers = DeadlineScheduler("aipass-watch-debounce")
        self._started = False

    # Lifecycle

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._timers.start()
            observer = self._observer_factory()
            if isinstance(observer, PollingObserver):
                self._use_polling = True
                self._report_fallback(None, None)
            observer.start()
            self._observer = observer

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            observers = [obs for obs in (self._observer, self._polling) if obs is not None]
            self._observer = self._polling = None
            self._watches.clear()
            for subscription in self._subscriptions.values():
                subscription.active = False
                subscription.entries.clear()
            self._subscriptions.clear()
            self._pending.clear()
        self._timers.stop()
        for observer in observers:
            observer.stop()
        for observer in observers:
            observer.join(timeout=5)

    def __enter__(self) -> "Watcher":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def polling(self) -> bool:
        """True once any path is watched by polling instead of inotify."""
        return self._use_polling

    def watched(self) -> list[tuple[Path, bool, str]]:
        """Return every watched directory as (path, recursive, backend), backend "native" or "polling"."""
        with self._lock:
            return sorted((entry.path, entry.recursive, watch.backend) for entry, watch in self._watches.items())

    # Subscriptions

    def watch(
        self,
        path: Path,
        callback: ChangeCallback,
        *,
        recursive: bool = False,
        patterns: Iterable[str] | None = None,
        debounce: float | None = None,
        exclude_dirs: frozenset[str] = DEFAULT_EXCLUDED_DIRS,
        ignore: Callable[[Path], bool] | None = None,
        skip_dir: Callable[[Path], bool] | None = None,
    ) -> Subscription:
        """Call ``callback`` with each debounced change of a file in the folder ``path``.

        ``patterns`` are globs relative to ``path`` (for example ``"*.json"`` or
        ``"**/*.json"``); without them every file counts. A recursive watch skips folders named
        in ``exclude_dirs`` and folders for which ``skip_dir`` returns True, and ``ignore``
        drops more files. A folder that does not exist yet is watched from its nearest existing
        ancestor until it appears.
        """
        root = absolute(path)
        globs = GlobSet(root, patterns) if patterns else None

        def accepts(file: Path) -> bool:
            if not file.is_relative_to(root) or (ignore is not None and ignore(file)):
                return False
            return globs is None or globs.matches(file)

        def planner() -> list[WatchEntry]:
            if root.is_dir():
                return plan_tree(root, exclude_dirs, skip_dir) if recursive else [WatchEntry(root, False)]
            ancestor = root.parent
            while not ancestor.is_dir() and ancestor.parent != ancestor:
                ancestor = ancestor.parent
            return [WatchEntry(ancestor, False)]

        return self._subscribe(callback, accepts, planner, debounce, exclude_dirs, str(root), skip_dir)

    def watch_globs(
        self,
        base: Path,
        globs: Iterable[str],
        callback: ChangeCallback,
        *,
        debounce: float | None = None,
        exclude_dirs: frozenset[str] = DEFAULT_EXCLUDED_DIRS,
    ) -> Subscription:
        """Call ``callback`` with each debounced change of a file matching ``globs`` (relative to ``base``).

        Only the literal prefixes of the globs are watched (see ``watch_paths.plan_globs``).
        Raises ``GlobError`` for a glob that is empty, absolute or leaves ``base``.
        """
        root = absolute(base)
        matcher = GlobSet(root, globs)

        def planner() -> list[WatchEntry]:
            return plan_globs(root, matcher.patterns, exclude_dirs)

        return self._subscribe(callback, matcher.matches, planner, debounce, exclude_dirs, ", ".join(matcher.patterns))

    def unwatch(self, subscription: Subscription) -> None:
        with self._lock:
            if not subscription.active:
                return
            subscription.active = False
            self._subscriptions.pop(subscription.number, None)
            for entry in list(subscription.entries):
                self._detach(subscription, entry)
            for key in [key for key in self._pending if key[0] == subscription.number]:
                del self._pending[key]
                self._timers.cancel(("change", key))
            self._timers.cancel(("replan", subscription.number))

    def _subscribe(
        self,
        callback: ChangeCallback,
        accepts: Callable[[Path], bool],
        planner: Callable[[], list[WatchEntry]],
        debounce: float | None,
        exclude_dirs: frozenset[str],
        label: str,
        skip_dir: Callable[[Path], bool] | None = None,
    ) -> Subscription:
        self.start()
        with self._lock:
            number = next(self._numbers)
            delay = self.debounce if debounce is None else debounce
            subscription = Subscription(self, number, callback, accepts, planner, delay, exclude_dirs, label, skip_dir)
            self._subscriptions[number] = subscription
            self._replan(subscription, report_existing=False)
        return subscription

    # Own writes

    def suppress(self, path: Path, seconds: float = 2.0) -> None:
        """Treat changes of ``path`` in the next ``seconds`` as our own writes: they are not reported.

        Call it just before writing. A change that another process makes to the same path in
        that window is dropped too, so keep the window short.
        """
        key = str(absolute(path))
        with self._lock:
            self._suppressed[key] = max(self._suppressed.get(key, 0.0), time.monotonic() + seconds)

    def write_json(self, path: Path, data: Any) -> None:
        """Write a state file with ``store.write_json`` without reporting the change to subscribers."""
        self.suppress(path)
        store.write_json(path, data)

    def _is_suppressed(self, path: Path) -> bool:
        key = str(path)
        deadline = self._suppressed.get(key)
        if deadline is None:
            return False
        if deadline < time.monotonic():
            del self._suppressed[key]
            return False
        return True

    # Planning and scheduling

    def _replan(self, subscription: Subscription, report_existing: bool) -> None:
        """Bring the subscription's watches in line with its planner, and report files in new folders.

        A folder created between planning and the watch taking effect would go unseen, so the
        plan is computed again after each change until it is stable (at most three rounds).
        """
        added_all: set[WatchEntry] = set()
        for _ in range(3):
            with self._lock:
                if not subscription.active or not self._started:
                    return
                planned = set(subscription.planner())
                if planned == subscription.entries:
                    break
                for entry in subscription.entries - planned:
                    self._detach(subscription, entry)
                    added_all.discard(entry)
                for entry in sorted(planned - subscription.entries, key=lambda item: str(item.path)):
                    if self._attach(subscription, entry):
                        added_all.add(entry)
        if report_existing:
            for entry in added_all:
                self._report_existing(subscription, entry)

    def _report_existing(self, subscription: Subscription, entry: WatchEntry) -> None:
        """Report files already inside a folder that appeared after the subscription started."""
        for folder, dirnames, filenames in os.walk(entry.path):
            dirnames[:] = [name for name in dirnames if entry.recursive and name not in subscription.exclude_dirs]
            for name in filenames:
                file = Path(folder, name)
                if subscription.covers(entry, file):
                    self._queue(subscription, FileChange(file, "created"))

    def _attach(self, subscription: Subscription, entry: WatchEntry) -> bool:
        watch = self._watches.get(entry)
        if watch is None:
            watch = self._schedule(entry)
            if watch is None:
                return False
            self._watches[entry] = watch
        watch.subscribers.add(subscription.number)
        subscription.entries.add(entry)
        return True

    def _detach(self, subscription: Subscription, entry: WatchEntry) -> None:
        subscription.entries.discard(entry)
        watch = self._watches.get(entry)
        if watch is None:
            return
        watch.subscribers.discard(subscription.number)
        if not watch.subscribers:
            del self._watches[entry]
            try:
                watch.observer.unschedule(watch.observed)
            except (KeyError, OSError) as exc:
                log.debug("unscheduling %s: %s", entry.path, exc)

    def _schedule(self, entry: WatchEntry) -> _Watch | None:
        handler = _Dispatch(self, entry)
        if not self._use_polling and self._observer is not None:
            try:
                observed = self._observer.schedule(
                    handler, str(entry.path), recursive=entry.recursive, event_filter=_EVENT_TYPES
                )
                return _Watch(observed, self._observer, "native", set())
            except OSError as exc:
                if exc.errno not in FALLBACK_ERRNOS:
                    log.warning("could not watch %s: %s", entry.path, exc)
                    return None
                self._use_polling = True
                self._report_fallback(entry.path, exc)
        if self._polling is None:
            self._polling = PollingObserver(timeout=self.poll_interval)
            self._polling.start()
        try:
            observed = self._polling.schedule(handler, str(entry.path), recursive=entry.recursive, event_filter=_EVENT_TYPES)
        except OSError as exc:
            log.warning("could not watch %s by polling: %s", entry.path, exc)
            return None
        return _Watch(observed, self._polling, "polling", set())

    def _report_fallback(self, path: Path | None, exc: OSError | None) -> None:
        message = fallback_message(path, exc, self.poll_interval)
        if self.fallback_message is not None:
            return
        self.fallback_message = message
        log.warning("%s", message)
        if self.on_fallback is not None:
            try:
                self.on_fallback(message)
            except Exception:
                log.exception("the file-watch fallback callback failed")

    # Events

    def _on_event(self, entry: WatchEntry, event: FileSystemEvent) -> None:
        src = Path(os.fsdecode(event.src_path))
        dest = Path(os.fsdecode(event.dest_path)) if getattr(event, "dest_path", None) else None
        with self._lock:
            watch = self._watches.get(entry)
            if watch is None:
                return
            subscriptions = [self._subscriptions[n] for n in watch.subscribers if n in self._subscriptions]
        if event.is_directory:
            if event.event_type in ("created", "deleted", "moved"):
                for subscription in subscriptions:
                    if not entry.recursive or src == entry.path:
                        self._timers.call_later(
                            ("replan", subscription.number), 0.05, lambda s=subscription: self._replan(s, True)
                        )
            return
        changes: list[FileChange] = []
        if event.event_type == "moved" and dest is not None:
            changes.append(FileChange(src, "moved", dest_path=dest))
            changes.append(FileChange(dest, "modified", src_path=src))
        elif event.event_type in ("created", "modified", "deleted"):
            changes.append(FileChange(src, event.event_type))  # type: ignore[arg-type]
        for change in changes:
            for subscription in subscriptions:
                if subscription.covers(entry, change.path):
                    self._queue(subscription, change)

    def _queue(self, subscription: Subscription, change: FileChange) -> None:
        key = (subscription.number, str(change.path))
        now = time.monotonic()
        with self._lock:
            if not subscription.active or self._is_suppressed(change.path):
                return
            previous = self._pending.get(key)
            merged = merge_changes(previous[0] if previous else None, change)
            first = previous[1] if previous else now
            if merged is None:
                del self._pending[key]
                self._timers.cancel(("change", key))
                return
            self._pending[key] = (merged, first)
        deadline = min(now + subscription.debounce, first + max(self.max_delay, subscription.debounce))
        self._timers.call_at(("change", key), deadline, lambda: self._deliver(key))

    def _deliver(self, key: tuple[int, str]) -> None:
        with self._lock:
            pending = self._pending.pop(key, None)
            subscription = self._subscriptions.get(key[0])
        if pending is None or subscription is None or not subscription.active:
            return
        try:
            subscription.callback(pending[0])
        except Exception:
            log.exception("file change callback of %r failed for %s", subscription, pending[0].path)
