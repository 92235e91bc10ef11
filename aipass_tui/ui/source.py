"""Where the cockpit gets its data: the live orchestrator, or a recorded snapshot.

The app talks to a ``CockpitSource``. The orchestrator implements it. ``RecordedSource`` holds a
fixed snapshot with its events and run history, so that snapshot tests and previews render
the same screen every time; its commands raise ``ReadOnlySource``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from aipass_tui.config import Settings
from aipass_tui.core.models import Event, Request, RunRecord
from aipass_tui.core.store import Paths


class CockpitSource(Protocol):
    """The part of the orchestrator's API that the cockpit uses."""

    repo: Path
    paths: Paths
    settings: Settings

    def snapshot(self) -> Any: ...
    def recent_events(self, agent: str, *, from_disk: bool = True) -> list[Event]: ...
    def run_history(self, agent: str) -> list[RunRecord]: ...
    def cluster_nodes(self) -> list[dict[str, Any]]: ...
    def subscribe(self, callback: Callable[[list[Any]], None]) -> None: ...
    def unsubscribe(self, callback: Callable[[list[Any]], None]) -> None: ...
    def dispatch(self, agent: str, subject: str, body: str = "", *, priority: int = 0, sender: str = "user") -> Request: ...
    def cancel(self, request_id: str) -> Request: ...
    def set_priority(self, request_id: str, priority: int) -> Request: ...
    def retry(self, request_id: str) -> Request: ...
    def move(self, request_id: str, agent: str) -> Request: ...
    def stop(self, target: str) -> list[str]: ...
    def stop_all(self) -> list[str]: ...


class ReadOnlySource(RuntimeError):
    """A command was sent to a recorded snapshot, which cannot change."""


@dataclass
class RecordedSource:
    """A fixed snapshot with its events and run history; every command raises ReadOnlySource."""

    repo: Path
    settings: Settings
    recorded: Any
    events: dict[str, list[Event]] = field(default_factory=dict)
    history: dict[str, list[RunRecord]] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    """Cluster nodes in the form ``Orchestrator.cluster_nodes`` returns, empty for a local-only snapshot."""

    @property
    def paths(self) -> Paths:
        return Paths(self.repo)

    def snapshot(self) -> Any:
        return self.recorded

    def recent_events(self, agent: str, *, from_disk: bool = True) -> list[Event]:
        return list(self.events.get(agent, []))

    def run_history(self, agent: str) -> list[RunRecord]:
        return list(self.history.get(agent, []))

    def cluster_nodes(self) -> list[dict[str, Any]]:
        return [dict(node) for node in self.nodes]

    def subscribe(self, callback: Callable[[list[Any]], None]) -> None:
        """Accept a subscriber; a recorded snapshot never publishes notices."""

    def unsubscribe(self, callback: Callable[[list[Any]], None]) -> None:
        """Forget a subscriber; nothing to do, see ``subscribe``."""

    def _refuse(self, what: str) -> Any:
        raise ReadOnlySource(f"cannot {what}: this cockpit shows a recorded snapshot, not a running orchestrator")

    def dispatch(self, agent: str, subject: str, body: str = "", *, priority: int = 0, sender: str = "user") -> Request:
        return self._refuse(f"dispatch to {agent}")

    def cancel(self, request_id: str) -> Request:
        return self._refuse(f"cancel {request_id}")

    def set_priority(self, request_id: str, priority: int) -> Request:
        return self._refuse(f"change the priority of {request_id}")

    def retry(self, request_id: str) -> Request:
        return self._refuse(f"retry {request_id}")

    def move(self, request_id: str, agent: str) -> Request:
        return self._refuse(f"move {request_id}")

    def stop(self, target: str) -> list[str]:
        return self._refuse(f"stop {target}")

    def stop_all(self) -> list[str]:
        return self._refuse("stop all runs")
