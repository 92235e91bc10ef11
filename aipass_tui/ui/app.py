"""The cockpit application: wiring between the orchestrator and the screens.

The orchestrator runs on its own thread and hands each tick's notices to ``_receive``, which
only appends them to a deque. A UI timer (``settings.ui.flush_hz``) drains the deque into the
model and refreshes what changed. A second timer fetches a full snapshot once a second on a
worker thread, for metrics, elapsed times and anything a notice did not carry. No widget is
touched from another thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import textual.screen
from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.message import Message
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen

from aipass_tui.config import Settings
from aipass_tui.core.notices import Notice, PullChanged, UserNotice
from aipass_tui.core.store import StateError
from aipass_tui.ui import bindings
from aipass_tui.ui.model import Changes, CockpitModel
from aipass_tui.ui.source import CockpitSource, ReadOnlySource

log = logging.getLogger(__name__)

LOW_BANDWIDTH_FLUSH_HZ = 2.0
LOW_BANDWIDTH_FPS = 10
SNAPSHOT_SECONDS = 1.0
CLUSTER_SECONDS = 5.0
"""How often the cockpit asks the Ray cluster for its nodes, when an agent runs there."""
SEVERITY = {"info": "information", "warning": "warning", "error": "error"}
REPLACED_SYSTEM_COMMANDS = frozenset({"Quit", "Keys"})
T = TypeVar("T")


class SnapshotFetched(Message):
    """A snapshot of the orchestrator, fetched on a worker thread."""

    def __init__(self, snapshot: Any) -> None:
        super().__init__()
        self.snapshot = snapshot


class ClusterFetched(Message):
    """The Ray cluster's nodes, fetched on a worker thread. ``nodes`` is None when the fetch failed."""

    def __init__(self, nodes: list[dict[str, Any]] | None) -> None:
        super().__init__()
        self.nodes = nodes


class AipassApp(App[str]):
    """The cockpit. ``source`` is the orchestrator (or a recorded snapshot)."""

    TITLE = "aipass-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = bindings.bindings(bindings.APP)

    def __init__(
        self,
        source: CockpitSource,
        settings: Settings,
        *,
        owns_source: bool = False,
        start_source: bool = False,
        frozen: bool = False,
        low_bandwidth: bool = False,
    ) -> None:
        super().__init__()
        self.source = source
        self.settings = settings
        self.model = CockpitModel(settings.ui.scrollback)
        self.frozen = frozen
        self.low_bandwidth = low_bandwidth
        self.flush_hz = min(settings.ui.flush_hz, LOW_BANDWIDTH_FLUSH_HZ) if low_bandwidth else settings.ui.flush_hz
        self.quit_choice: str | None = None
        self._owns_source = owns_source
        self._start_source = start_source
        self._source_closed = False
        self._inbox: deque[list[Notice]] = deque()
        self._fetching = False
        self._fetching_cluster = False
        self._hangup_installed = False
        self._hub: Any = None
        self._starting: asyncio.Task[None] | None = None
        if frozen:
            self.animation_level = "none"

    # Start and stop ------------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._apply_theme()
        self._apply_keymap()
        if self._start_source and not getattr(self.source, "started", False):
            try:
                await asyncio.to_thread(self.source.start, defer_housekeeping=True)  # type: ignore[attr-defined]
            except Exception as exc:  # LockHeld, StateError: the cockpit cannot run on this repository
                log.error("cockpit could not start the orchestrator: %s", exc)
                self._source_closed = True
                self.exit(return_code=1, message=str(exc))
                return
        self._load()
        from aipass_tui.ui.screens.main import MainScreen

        await self.push_screen(MainScreen())
        if self._start_source:
            # The tick thread and file watching compete with the first frame for the interpreter,
            # so they start once it is on screen.
            self.call_after_refresh(self._begin_ticking)
        if self.uses_cluster:
            self._fetch_cluster()
        if self.frozen:
            return
        if self.uses_cluster:
            self.set_interval(CLUSTER_SECONDS, self._fetch_cluster, name="cluster")
        self.source.subscribe(self._receive)
        self.set_interval(1 / self.flush_hz, self._flush_notices, name="flush")
        self.set_interval(SNAPSHOT_SECONDS, self._fetch_snapshot, name="snapshot")
        self._install_hangup()

    def _begin_ticking(self) -> None:
        if self._source_closed or self._starting is not None:
            return
        self._starting = asyncio.create_task(self._start_ticking())

    async def _start_ticking(self) -> None:
        """Start the orchestrator's tick thread, then file watching and automation."""
        await asyncio.to_thread(self.source.start_thread)  # type: ignore[attr-defined]
        self._hub = await asyncio.to_thread(_attach_automation, self.source)

    def _load(self) -> None:
        from aipass_tui.ui.widgets.agent_grid import MAX_PANES

        self.model.apply_snapshot(self.source.snapshot())
        # Only panes show output lines (cards and the fleet table show the last one, which the
        # agent's state has), and reading every agent's newest run from disk would slow the start
        # of a large fleet.
        from_disk = len(self.model.agents) <= MAX_PANES
        for name in self.model.agents:
            self.model.load_events(name, self.source.recent_events(name, from_disk=from_disk))

    def _apply_theme(self) -> None:
        theme = self.settings.ui.theme
        if theme in self.available_themes:
            self.theme = theme
        else:
            self.notify(
                f"unknown theme {theme!r} in [ui] theme; available: {', '.join(sorted(self.available_themes))}",
                title="Settings", severity="warning",
            )

    def _apply_keymap(self) -> None:
        keys = dict(self.settings.ui.keys)
        for problem in bindings.check_keymap(keys):
            self.notify(problem, title="Settings", severity="warning", timeout=10)
        known = bindings.binding_ids()
        self.set_keymap({binding_id: key for binding_id, key in keys.items() if binding_id in known and key.strip()})

    def _install_hangup(self) -> None:
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.hang_up)
            self._hangup_installed = True
        except (NotImplementedError, RuntimeError, ValueError):
            log.warning("SIGHUP handler not installed; a dropped connection ends the cockpit without closing cleanly")

    def hang_up(self) -> None:
        """Leave the agents running and exit, as when the terminal connection drops."""
        log.info("terminal hung up; leaving agents running")
        self.quit_choice = "leave"
        self.exit("leave")

    async def on_unmount(self) -> None:
        if self._hangup_installed:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._hangup_installed = False
        self.source.unsubscribe(self._receive)
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._hub is not None:
            await asyncio.to_thread(self._hub.close)
            self._hub = None
        if self._owns_source and not self._source_closed:
            self._source_closed = True
            await asyncio.to_thread(self.source.close, stop_runs=self.quit_choice == "stop")  # type: ignore[attr-defined]

    @property
    def closed(self) -> bool:
        """Tell whether the app has closed the orchestrator it owns."""
        return self._source_closed

    # Notices and snapshots -------------------------------------------------------------------

    def _receive(self, notices: list[Notice]) -> None:
        """Store one tick's notices (called on the orchestrator thread: nothing else here)."""
        self._inbox.append(notices)

    def _flush_notices(self) -> None:
        if not self._inbox:
            self._deliver(Changes())
            return
        changes = Changes()
        while self._inbox:
            batch = self._inbox.popleft()
            changes.merge(self.model.apply_notices(batch))
            self._forward_pulls([notice.pull for notice in batch if isinstance(notice, PullChanged)])
        for notice in changes.user_notices:
            self._show_notice(notice)
        self._deliver(changes)

    def _forward_pulls(self, records: list[dict[str, Any]]) -> None:
        """Hand changed pull request records to every open screen that shows pull requests."""
        if not records:
            return
        for screen in list(self.screen_stack):
            receive = getattr(screen, "pulls_changed", None)
            if receive is not None:
                receive(records)

    def _fetch_snapshot(self) -> None:
        if not self._fetching:
            self._fetching = True
            self._snapshot_worker()

    @work(thread=True, exclusive=True, group="snapshot", exit_on_error=False)
    def _snapshot_worker(self) -> None:
        try:
            snapshot = self.source.snapshot()
        except Exception:
            log.exception("reading the orchestrator snapshot failed")
            snapshot = None
        self.post_message(SnapshotFetched(snapshot))

    def on_snapshot_fetched(self, message: SnapshotFetched) -> None:
        self._fetching = False
        if message.snapshot is None:
            return
        changes = self.model.apply_snapshot(message.snapshot)
        self._deliver(changes, tick=True)

    @property
    def uses_cluster(self) -> bool:
        """Tell whether any configured agent runs on the Ray cluster (``runner = "ray"``)."""
        return any(agent.runner == "ray" for agent in self.settings.agents.values())

    def _fetch_cluster(self) -> None:
        if not self._fetching_cluster:
            self._fetching_cluster = True
            self._cluster_worker()

    @work(thread=True, exclusive=True, group="cluster", exit_on_error=False)
    def _cluster_worker(self) -> None:
        nodes: list[dict[str, Any]] | None
        try:
            nodes = self.source.cluster_nodes()
        except Exception:
            log.exception("reading the Ray cluster's nodes failed")
            nodes = None
        self.post_message(ClusterFetched(nodes))

    def on_cluster_fetched(self, message: ClusterFetched) -> None:
        from aipass_tui.ui.widgets.cpu_meter import CpuMeter

        self._fetching_cluster = False
        if message.nodes is None or not self.model.apply_cluster(message.nodes):
            return
        for screen in self.screen_stack:
            for meter in screen.query(CpuMeter):
                meter.show_cluster(self.model.cluster_nodes)

    def _deliver(self, changes: Changes, tick: bool = False) -> None:
        try:
            screen = self.base_screen()
            if not screen.is_mounted:
                return  # pushed but not composed yet: it draws from the model when mounted
            if changes.roster or tick:
                live = getattr(screen, "live_agents", None)
                self.model.set_live(live() if live else [])
            if (changes or tick or self._has_output()) and hasattr(screen, "apply_changes"):
                screen.apply_changes(changes, tick=tick)  # type: ignore[attr-defined]
        except (NoMatches, ScreenStackError):
            # While the app shuts down, its widgets are removed one by one. A timer tick that
            # fires in between finds them gone, so there is nothing left to update.
            if self.is_running:
                raise

    def _has_output(self) -> bool:
        return any(view.pending or view.reset for view in self.model.agents.values() if view.live)

    def base_screen(self) -> Screen[Any]:
        """Return the top screen that is not a dialog (what the user sees behind any dialog)."""
        for screen in reversed(self.screen_stack):
            if not isinstance(screen, ModalScreen):
                return screen
        return self.screen

    def _show_notice(self, notice: UserNotice) -> None:
        message = notice.message
        if notice.level == "error" and notice.agent:
            message += f"\nOpen {notice.agent} (Enter) to read its transcript; r retries the request."
        self.notify(message, title=notice.title, severity=SEVERITY.get(notice.level, "information"),  # type: ignore[arg-type]
                    timeout=10 if notice.level == "error" else 5)

    # Commands --------------------------------------------------------------------------------

    def run_command(self, title: str, command: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Call an orchestrator command; a rejected command becomes a notification saying why."""
        try:
            return command(*args, **kwargs)
        except (ValueError, KeyError, ReadOnlySource, StateError) as exc:
            reason = str(exc).strip("'\"")
            log.warning("%s failed: %s", title, reason)
            self.notify(reason, title=f"{title} failed", severity="error", timeout=8)
            return None

    def open_dispatch(self, agent: str | None = None) -> None:
        from aipass_tui.ui.screens.dispatch import DispatchScreen

        self.push_screen(DispatchScreen(list(self.model.agents), agent), self._dispatched)

    def _dispatched(self, request: Any) -> None:
        if request is not None:
            coalesced = f" (coalesced: {request.duplicates} duplicate{'s' if request.duplicates != 1 else ''})" if request.duplicates else ""
            self.notify(f"{request.subject!r} queued for {request.agent} as {request.id}{coalesced}", title="Request queued")

    def confirm_stop(self, agent: str) -> None:
        from aipass_tui.ui.screens.confirm import ConfirmScreen

        view = self.model.agents.get(agent)
        run = view.state.run if view is not None else None
        if view is None or run is None or view.state.status.value not in ("running", "retrying", "stalled"):
            self.notify(f"{agent} has no running run to stop", title="Stop run", severity="warning")
            return

        def stop(confirmed: bool | None) -> None:
            if confirmed:
                stopped = self.run_command("Stop run", self.source.stop, agent)
                if stopped is not None:
                    self.notify(f"stopping {', '.join(stopped) or 'nothing (the run already ended)'}", title=f"Stop {agent}")

        self.push_screen(
            ConfirmScreen(
                f"Stop {agent}'s run?",
                f"Run {run} ({view.state.subject or 'no subject'}) and its whole process tree get SIGTERM, "
                f"then SIGKILL after {self.settings.limits.stop_grace:g} s. The request is marked failed; r retries it.",
                "Stop run",
            ),
            stop,
        )

    def retry_agent(self, agent: str) -> None:
        request = self.model.last_retryable(agent)
        if request is None:
            self.notify(f"{agent} has no failed or cancelled request to retry", title="Retry", severity="warning")
            return
        self.retry_request(request.id)

    def retry_request(self, request_id: str) -> None:
        new = self.run_command("Retry", self.source.retry, request_id)
        if new is not None:
            self.notify(f"{new.subject!r} queued again for {new.agent} as {new.id}", title="Retry")

    def show_zoom(self, agent: str) -> None:
        from aipass_tui.ui.screens.zoom import ZoomScreen

        if agent in self.model.agents:
            self.push_screen(ZoomScreen(agent))

    def action_show_queue(self) -> None:
        from aipass_tui.ui.screens.queue import QueueScreen

        if not isinstance(self.base_screen(), QueueScreen):
            self.push_screen(QueueScreen())

    def action_show_review(self) -> None:
        from aipass_tui.ui.screens.review import ReviewScreen

        if not isinstance(self.base_screen(), ReviewScreen):
            self.push_screen(ReviewScreen())

    def action_show_plans(self) -> None:
        from aipass_tui.ui.screens.plan_picker import open_plan_picker

        open_plan_picker(self)

    def action_show_automation(self) -> None:
        from aipass_tui.core.automation import automation_of
        from aipass_tui.ui.screens.automation import AutomationScreen

        hub = automation_of(self.source)
        if hub is None:
            self.notify("automation is not running in this cockpit", title="Automation", severity="warning")
            return
        if not isinstance(self.screen, AutomationScreen):
            self.push_screen(AutomationScreen(hub))

    def action_help(self) -> None:
        from aipass_tui.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(dict(self.settings.ui.keys)))

    def action_request_quit(self) -> None:
        from aipass_tui.ui.screens.confirm import QuitScreen

        if isinstance(self.screen, QuitScreen):
            return
        running = sum(1 for view in self.model.agents.values() if view.state.run and view.state.status.value in ("running", "retrying", "stalled"))
        if not running:
            # Nothing to leave running or to stop, so there is nothing to ask.
            self.quit_with("leave")
            return
        self.push_screen(QuitScreen(running), self.quit_with)

    def quit_with(self, choice: str | None) -> None:
        """Quit leaving the agents running (``"leave"``) or stopping them (``"stop"``); None stays."""
        if choice not in ("leave", "stop"):
            return
        self.quit_choice = choice
        if choice == "stop" and not self._owns_source:
            self.run_command("Stop all runs", self.source.stop_all)
        if choice == "stop" and self._owns_source:
            self.notify("stopping every run, then quitting…", title="Quit")
        self.exit(choice)

    # Command palette -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        # Textual's own Quit exits at once, without asking whether to leave the agents running,
        # and its Keys panel duplicates F1; the cockpit's Quit and Keys replace both.
        for command in super().get_system_commands(screen):
            if command.title not in REPLACED_SYSTEM_COMMANDS:
                yield command
        scope = getattr(screen, "BINDING_SCOPE", None) or _scope_of(screen)
        for action in bindings.ACTIONS:
            if not action.palette or action.scope not in (scope, bindings.APP):
                continue
            target = self if action.scope == bindings.APP or action.action.startswith("app.") else screen
            name = action.action.removeprefix("app.")
            yield SystemCommand(action.description, action.help, _runner(target, name))


def _scope_of(screen: Screen[Any]) -> str:
    from aipass_tui.ui.screens.main import MainScreen
    from aipass_tui.ui.screens.queue import QueueScreen
    from aipass_tui.ui.screens.zoom import ZoomScreen

    if isinstance(screen, MainScreen):
        return bindings.MAIN
    if isinstance(screen, ZoomScreen):
        return bindings.ZOOM
    if isinstance(screen, QueueScreen):
        return bindings.QUEUE
    return bindings.APP


def _runner(target: Any, action: str) -> Callable[[], Any]:
    async def run() -> None:
        await target.run_action(action)

    return run


def resolve_low_bandwidth(flag: bool | None, settings: Settings) -> bool:
    """Decide low-bandwidth mode: the flag, else the setting, else on when SSH_CONNECTION is set."""
    if flag is not None:
        return flag
    if settings.ui.low_bandwidth is not None:
        return settings.ui.low_bandwidth
    return bool(os.environ.get("SSH_CONNECTION"))


def create_app(
    repo: Path,
    settings: Settings,
    orchestrator: CockpitSource | None = None,
    *,
    frozen: bool = False,
    low_bandwidth: bool | None = None,
) -> AipassApp:
    """Build the cockpit for ``repo``.

    Without ``orchestrator`` the app creates one and owns it: it starts it when mounted and
    closes it on exit. A given orchestrator (or ``RecordedSource``) belongs to the caller.
    ``frozen`` renders once from the source without timers, for snapshots and screenshots.
    """
    owns = orchestrator is None
    if orchestrator is None:
        from aipass_tui.core.orchestrator import Orchestrator

        orchestrator = Orchestrator(repo, settings, role="cockpit")  # type: ignore[assignment]
    return AipassApp(
        orchestrator,  # type: ignore[arg-type]
        settings,
        owns_source=owns,
        start_source=owns,
        frozen=frozen,
        low_bandwidth=resolve_low_bandwidth(low_bandwidth, settings),
    )


def run_cockpit(repo: Path, settings: Settings, *, low_bandwidth: bool | None = None) -> int:
    """Open the cockpit on ``repo`` and return the exit code.

    The orchestrator takes the repository's lock and loads its state here, before the first
    frame, so a rejected start reaches the caller as an exception (``store.LockHeld`` when another
    orchestrator has the lock). Its tick thread, the rest of its start and file watching begin
    once the first frame is on screen. Quitting leaves the agents running unless the user chose
    to stop them.
    """
    from aipass_tui.core.orchestrator import Orchestrator

    low = resolve_low_bandwidth(low_bandwidth, settings)
    if low:
        # NOTE: Textual reads TEXTUAL_FPS once, at import. Screens take their update period
        # from the module constant below (checked in Textual 8.2.8), so it is lowered here.
        textual.screen.UPDATE_PERIOD = 1 / LOW_BANDWIDTH_FPS  # type: ignore[misc]
    orchestrator = Orchestrator(repo, settings, role="cockpit")
    orchestrator.paths.ensure()
    handler = _log_to_file(orchestrator.paths.logs / "cockpit.log")
    app: AipassApp | None = None
    started = False
    try:
        orchestrator.start(defer_housekeeping=True)
        started = True
        app = AipassApp(orchestrator, settings, owns_source=True, start_source=True, low_bandwidth=low)  # type: ignore[arg-type]
        app.run()
        log.info("cockpit closed (%s)", app.quit_choice or "exit")
    finally:
        if started and (app is None or not app.closed):
            orchestrator.close()
        if handler is not None:
            logging.getLogger("aipass_tui").removeHandler(handler)
            handler.close()
    return app.return_code or 0


def _attach_automation(orchestrator: Any) -> Any:
    """Start file watching and automation rules for the cockpit; report a failure and go on."""
    from aipass_tui.core.automation import attach_automation

    try:
        return attach_automation(orchestrator)
    except OSError as exc:
        log.warning("file watching and automation are off: %s", exc)
        orchestrator.notify("warning", "Automation is off", f"file watching could not start: {exc}")
        return None


def _log_to_file(path: Path) -> logging.Handler | None:
    """Log to ``path`` unless a handler of the root logger already writes there (the CLI's)."""
    target = str(path.resolve())
    for existing in logging.getLogger().handlers:
        if isinstance(existing, logging.FileHandler) and existing.baseFilename == target:
            return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("aipass_tui")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
