"""The status word of an agent, coloured by a ``-status-<name>`` CSS class."""

from __future__ import annotations

from textual.widgets import Static

from aipass_tui.core.models import AgentStatus
from aipass_tui.ui.describe import STATUS_CLASSES, status_class


class StatusBadge(Static):
    """Shows ``RUNNING``, ``FAILED`` and so on; the word alone is readable without colour."""

    DEFAULT_CSS = """
    StatusBadge {
        width: auto;
        min-width: 9;
        padding: 0 1;
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    StatusBadge.-status-running { background: $success; color: $background; }
    StatusBadge.-status-retrying { background: $warning; color: $background; }
    StatusBadge.-status-stalled { background: $warning; color: $background; }
    StatusBadge.-status-failed { background: $error; color: $background; }
    StatusBadge.-status-queued { background: $primary; color: $background; }
    StatusBadge.-status-done { background: $success 30%; color: $foreground; }
    StatusBadge.-status-idle { background: $panel; color: $foreground; }
    """

    def __init__(self, status: AgentStatus = AgentStatus.IDLE, **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self._status: AgentStatus | None = None
        self.show_status(status)

    def show_status(self, status: AgentStatus) -> None:
        if status == self._status:
            return
        self._status = status
        self.remove_class(*STATUS_CLASSES)
        self.add_class(status_class(status))
        self.update(status.value.upper())
