"""The top line of the main screen: repository, agent counts, queue, CPU and the hold state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from aipass_tui.core.models import AgentStatus
from aipass_tui.ui.model import CockpitModel

COUNT_ORDER = [status.value for status in AgentStatus]


class StatusBar(Horizontal):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; }
    StatusBar > Label { padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    StatusBar > .bar-title { text-style: bold; background: $primary; color: $background; }
    StatusBar > .bar-counts { width: 1fr; }
    StatusBar > .bar-hold { display: none; background: $warning; color: $background; text-style: bold; }
    StatusBar.-holding > .bar-hold { display: block; }
    """

    def __init__(self, title: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._bar_title = title
        self._shown: tuple[str, str] = ("", "")

    def compose(self) -> ComposeResult:
        yield Label(self._bar_title, classes="bar-title", markup=False)
        yield Label("", classes="bar-counts", markup=False)
        yield Label("HOLDING NEW STARTS", classes="bar-hold")
        yield Label("", classes="bar-cpu", markup=False)

    def show(self, model: CockpitModel, cpu_summary: str) -> None:
        counts = model.status_counts()
        parts = [f"{counts[status]} {status}" for status in COUNT_ORDER if counts.get(status)]
        agents = len(model.agents)
        text = f"{agents} agent{'s' if agents != 1 else ''}"
        if parts:
            text += ": " + ", ".join(parts)
        text += f" │ queue {model.queued_count()}"
        self.set_class(bool(model.holding), "-holding")
        if (text, cpu_summary) == self._shown:
            return
        previous_cpu = self._shown[1]
        self._shown = (text, cpu_summary)
        # The counts label takes the free width, so new text never needs a layout pass. The CPU
        # label is as wide as its text, so only a change of length needs one (a layout pass
        # redraws the whole screen).
        self.query_one(".bar-counts", Label).update(text, layout=False)
        if cpu_summary != previous_cpu:
            self.query_one(".bar-cpu", Label).update(cpu_summary, layout=len(cpu_summary) != len(previous_cpu))
