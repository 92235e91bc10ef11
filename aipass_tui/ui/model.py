"""What the cockpit shows, kept apart from the widgets that show it.

The orchestrator thread hands notices to the app through a queue; the app's UI timer drains the
queue into a ``CockpitModel`` and then refreshes only the widgets that the returned ``Changes``
name. Output of every agent goes into a bounded deque here; only agents whose pane is on screen
(``live``) also collect ``pending`` lines for the next flush. This module imports no Textual.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from aipass_tui.core import notices as n
from aipass_tui.core.models import AgentState, Event, Request, RequestStatus, RunRecord
from aipass_tui.ui.text import event_lines

if TYPE_CHECKING:
    from aipass_tui.core.metrics import MetricsSnapshot


@dataclass
class AgentView:
    """One agent as the cockpit sees it: its state and its recent output lines."""

    state: AgentState
    lines: deque[str]
    pending: list[str] = field(default_factory=list)
    live: bool = False
    reset: bool = False
    """The pane must be cleared and refilled from ``lines`` (set when the pane became live)."""

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def last_line(self) -> str:
        for line in reversed(self.lines):
            if line.strip():
                return line.strip()
        return self.state.last_line or ""


@dataclass
class Changes:
    """What changed in one update of the model, so the UI refreshes only that."""

    agents: set[str] = field(default_factory=set)
    output: set[str] = field(default_factory=set)
    queue: bool = False
    holding: bool = False
    metrics: bool = False
    roster: bool = False
    """Agents were added or removed."""
    finished: list[RunRecord] = field(default_factory=list)
    user_notices: list[n.UserNotice] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.agents or self.output or self.queue or self.holding or self.metrics or self.roster
            or self.finished or self.user_notices
        )

    def merge(self, other: "Changes") -> None:
        self.agents |= other.agents
        self.output |= other.output
        self.queue = self.queue or other.queue
        self.holding = self.holding or other.holding
        self.metrics = self.metrics or other.metrics
        self.roster = self.roster or other.roster
        self.finished.extend(other.finished)
        self.user_notices.extend(other.user_notices)


class CockpitModel:
    """Agents, requests, runs, the hold state and metrics, updated from snapshots and notices."""

    def __init__(self, scrollback: int) -> None:
        self.scrollback = scrollback
        self.agents: dict[str, AgentView] = {}
        self.requests: dict[str, Request] = {}
        self.runs: dict[str, RunRecord] = {}
        self.holding: str | None = None
        self.metrics: MetricsSnapshot | None = None
        self.cluster_nodes: list[dict[str, Any]] = []
        """Ray cluster nodes as ``Orchestrator.cluster_nodes`` returns them, empty without a cluster."""

    # Loading ---------------------------------------------------------------------------------

    def apply_snapshot(self, snapshot: Any) -> Changes:
        """Bring the model in line with an orchestrator ``Snapshot``; return what changed."""
        changes = Changes()
        names = list(snapshot.agents)
        if names != list(self.agents):
            changes.roster = True
            previous = self.agents
            self.agents = {}
            for name in names:
                view = previous.get(name)
                if view is None:
                    view = AgentView(snapshot.agents[name], deque(maxlen=self.scrollback))
                self.agents[name] = view
        for name, state in snapshot.agents.items():
            view = self.agents[name]
            if view.state != state:
                view.state = state
                changes.agents.add(name)
        requests = {request.id: request for request in snapshot.requests}
        if requests != self.requests:
            self.requests = requests
            changes.queue = True
        self.runs = dict(snapshot.runs)
        if snapshot.holding != self.holding:
            self.holding = snapshot.holding
            changes.holding = True
        if snapshot.metrics is not None and snapshot.metrics != self.metrics:
            self.metrics = snapshot.metrics
            changes.metrics = True
        return changes

    def apply_cluster(self, nodes: list[dict[str, Any]]) -> bool:
        """Store the cluster's nodes; return whether they differ from the stored ones."""
        if nodes == self.cluster_nodes:
            return False
        self.cluster_nodes = nodes
        return True

    def load_events(self, agent: str, events: Iterable[Event]) -> None:
        """Fill an agent's scrollback from events (for example ``recent_events`` at start)."""
        view = self.agents.get(agent)
        if view is None:
            return
        view.lines.clear()
        for event in events:
            view.lines.extend(event_lines(event))
        view.reset = view.live

    # Notices -------------------------------------------------------------------------------------

    def apply_notices(self, batch: Iterable[n.Notice]) -> Changes:
        """Fold one batch of orchestrator notices into the model; return what changed."""
        changes = Changes()
        for notice in batch:
            if isinstance(notice, n.RunOutput):
                if self.add_events(notice.agent, notice.events):
                    changes.output.add(notice.agent)
            elif isinstance(notice, n.AgentChanged):
                view = self.agents.get(notice.state.name)
                if view is None:
                    changes.roster = True
                    view = AgentView(notice.state, deque(maxlen=self.scrollback))
                    self.agents[notice.state.name] = view
                view.state = notice.state
                changes.agents.add(notice.state.name)
            elif isinstance(notice, n.RequestChanged):
                self.requests[notice.request.id] = notice.request
                changes.queue = True
            elif isinstance(notice, n.RunStarted):
                self.runs[notice.run.id] = notice.run
            elif isinstance(notice, n.RunFinished):
                self.runs[notice.run.id] = notice.run
                changes.finished.append(notice.run)
            elif isinstance(notice, n.HoldChanged):
                if notice.reason != self.holding:
                    self.holding = notice.reason
                    changes.holding = True
            elif isinstance(notice, n.UserNotice):
                changes.user_notices.append(notice)
        return changes

    def add_events(self, agent: str, events: Iterable[Event]) -> bool:
        """Append formatted events to an agent's scrollback (and pending lines when live)."""
        view = self.agents.get(agent)
        if view is None:
            return False
        added: list[str] = []
        for event in events:
            added.extend(event_lines(event))
        if not added:
            return False
        view.lines.extend(added)
        if view.live and not view.reset:
            view.pending.extend(added)
            if len(view.pending) > self.scrollback:
                del view.pending[: len(view.pending) - self.scrollback]
        return True

    # Panes ---------------------------------------------------------------------------------------

    def set_live(self, names: Iterable[str]) -> None:
        """Mark exactly these agents as shown in a pane; newly shown ones are refilled."""
        wanted = set(names)
        for name, view in self.agents.items():
            live = name in wanted
            if live and not view.live:
                view.reset = True
            if not live:
                view.pending.clear()
                view.reset = False
            view.live = live

    def take_output(self, agent: str) -> tuple[bool, list[str]]:
        """Return ``(clear_first, lines)`` to write to an agent's pane, and forget them."""
        view = self.agents[agent]
        if view.reset:
            view.reset = False
            view.pending.clear()
            return True, list(view.lines)
        lines = view.pending
        view.pending = []
        return False, lines

    # Queries -------------------------------------------------------------------------------------

    def queued_count(self) -> int:
        return sum(1 for r in self.requests.values() if r.status in (RequestStatus.QUEUED, RequestStatus.HELD))

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for view in self.agents.values():
            counts[view.state.status.value] = counts.get(view.state.status.value, 0) + 1
        return counts

    def last_retryable(self, agent: str) -> Request | None:
        """Return the agent's newest failed or cancelled request, which ``retry`` accepts."""
        for request in reversed(list(self.requests.values())):
            if request.agent == agent and request.status in (RequestStatus.FAILED, RequestStatus.CANCELLED):
                return request
        return None

    def request_list(self) -> list[Request]:
        """Return requests in queue order: open ones by priority then age, then finished ones."""
        open_states = {RequestStatus.RUNNING: 0, RequestStatus.QUEUED: 1, RequestStatus.HELD: 1}
        return sorted(
            self.requests.values(),
            key=lambda r: (open_states.get(r.status, 2), -r.priority if r.status in open_states else 0,
                           r.created_at if r.status in open_states else -(r.updated_at or r.created_at)),
        )
