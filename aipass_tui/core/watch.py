"""File watching and automation: the names the orchestrator and the cockpit use.

- ``Watcher`` (``watch_observer``): one watchdog observer, debounced per-path changes, own writes
  suppressed, polling fallback when inotify cannot be used (``watch_fallback``). The changes it
  reports and the file names it ignores are in ``watch_events``.
- ``RepoWatches`` (``watch_handlers``): the built-in inbox, plans, state and ownership watches.
- ``AutomationEngine`` (``watch_rules``): ``[[automation]]`` rules with file and schedule triggers.
- Glob matching and watch planning live in ``watch_paths``.
"""

from aipass_tui.core.watch_command import CommandResult
from aipass_tui.core.watch_handlers import RepoWatches, WatchError, is_agent_cli_file
from aipass_tui.core.watch_events import FileChange, is_ignored_name, merge_changes
from aipass_tui.core.watch_fallback import fallback_message
from aipass_tui.core.watch_observer import Subscription, Watcher
from aipass_tui.core.watch_paths import DEFAULT_EXCLUDED_DIRS, GlobError, GlobSet, plan_globs
from aipass_tui.core.watch_rules import (
    Actions,
    AutomationEngine,
    AutomationError,
    AutomationEvent,
    RuleStatus,
)

try:
    from aipass_tui.core.watch_fallback import WatchLimitObserver
except ImportError:  # not on Linux: no inotify observer to limit
    WatchLimitObserver = None  # type: ignore[assignment,misc]

__all__ = [
    "Actions",
    "AutomationEngine",
    "AutomationError",
    "AutomationEvent",
    "CommandResult",
    "DEFAULT_EXCLUDED_DIRS",
    "FileChange",
    "GlobError",
    "GlobSet",
    "RepoWatches",
    "RuleStatus",
    "Subscription",
    "WatchError",
    "WatchLimitObserver",
    "Watcher",
    "fallback_message",
    "is_agent_cli_file",
    "is_ignored_name",
    "merge_changes",
    "plan_globs",
]
