"""The CPU meter: total CPU against the usable CPUs, per-core bars, memory, a 60 s sparkline.

It shows one ``MetricsSnapshot`` at a time (sampled off the UI thread by the metrics sampler)
and a "holding new starts" banner while admission control holds the queue. When agents run on
a Ray cluster, a cluster section below lists each node with its CPU, memory and running agents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static

from aipass_tui.ui.text import format_bytes

if TYPE_CHECKING:
    from aipass_tui.core.metrics import MetricsSnapshot

BLOCKS = " ▁▂▃▄▅▆▇█"
FULL_BAR_CORES = 8
"""Up to this many cores get one bar each; more get one block character each."""


def bar(percent: float, width: int) -> str:
    """Return a bar of ``width`` cells filled to ``percent`` (0–100), with eighth-cell steps."""
    width = max(1, width)
    eighths = round(max(0.0, min(100.0, percent)) / 100 * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (BLOCKS[part] if part and full < width else "")
    return text.ljust(width, "·")


def node_line(node: Mapping[str, Any]) -> str:
    """Return one line for a cluster node: address, alive or dead, CPU %, memory and agents.

    CPU and memory use come from the latest sample of a run on the node; a node without one
    shows "–" for the CPU and for used memory, with Ray's memory resource as the total.
    """
    address = node.get("address") or node.get("node_id") or "?"
    state = "alive" if node.get("alive") else "dead"
    cpu_percent = node.get("cpu_percent")
    cpu = f"{cpu_percent:.0f}%" if cpu_percent is not None else "–"
    total = node.get("memory_total") or node.get("memory") or None
    memory = f"{format_bytes(node.get('memory_used'))}/{format_bytes(int(total) if total else None)}"
    agents = int(node.get("agents") or 0)
    return f"{address} {state} cpu {cpu} mem {memory} {agents} agent{'s' if agents != 1 else ''}"


def core_blocks(per_core: Sequence[float]) -> str:
    """Return one block character per core, its height showing the core's use."""
    return "".join(BLOCKS[min(8, max(0, round(value / 100 * 8)))] if value > 0 else "·" for value in per_core)


class CpuMeter(Vertical):
    """CPU, per-core use, memory and the last 60 seconds of total CPU."""

    DEFAULT_CSS = """
    CpuMeter { height: auto; padding: 0 1; }
    CpuMeter > .meter-title { text-style: bold; width: 1fr; }
    CpuMeter > .meter-line { height: auto; width: 1fr; }
    CpuMeter > Sparkline { height: 2; margin: 0 0 0 0; }
    CpuMeter > .meter-hold {
        display: none;
        height: auto;
        background: $warning;
        color: $background;
        text-style: bold;
        padding: 0 1;
    }
    CpuMeter.-holding > .meter-hold { display: block; }
    CpuMeter > .meter-cluster-title, CpuMeter > .meter-cluster { display: none; }
    CpuMeter.-cluster > .meter-cluster-title { display: block; text-style: bold; width: 1fr; }
    CpuMeter.-cluster > .meter-cluster { display: block; height: auto; width: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._metrics: MetricsSnapshot | None = None
        self._holding: str | None = None
        self._heights: dict[str, int] = {}
        self._cluster_nodes: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        yield Label("CPU", classes="meter-title")
        yield Static("waiting for the first sample…", classes="meter-line meter-cpu", markup=False)
        yield Static("", classes="meter-line meter-cores", markup=False)
        yield Static("", classes="meter-line meter-mem", markup=False)
        yield Sparkline([], summary_function=max, classes="meter-history")
        yield Static("", classes="meter-hold", markup=False)
        yield Label("Cluster", classes="meter-cluster-title")
        yield Static("", classes="meter-cluster", markup=False)

    def on_mount(self) -> None:
        self._render_metrics()
        self._render_hold()
        self._render_cluster()

    def on_resize(self) -> None:
        self._render_metrics()

    def show(self, metrics: MetricsSnapshot | None, holding: str | None) -> None:
        """Show a new sample and hold state; unchanged values cost nothing."""
        if metrics is not self._metrics:
            self._metrics = metrics
            self._render_metrics()
        if holding != self._holding:
            self._holding = holding
            self._render_hold()

    def show_cluster(self, nodes: Sequence[Mapping[str, Any]]) -> None:
        """Show the Ray cluster's nodes, one line each. An empty list hides the section."""
        nodes = [dict(node) for node in nodes]
        if nodes != self._cluster_nodes:
            self._cluster_nodes = nodes
            self._render_cluster()

    def cluster_lines(self) -> list[str]:
        """Return the lines the cluster section shows, one per node."""
        return [node_line(node) for node in self._cluster_nodes]

    def _render_cluster(self) -> None:
        if not self.is_mounted:
            return
        self.set_class(bool(self._cluster_nodes), "-cluster")
        text = Text("\n".join(self.cluster_lines()), no_wrap=True, overflow="ellipsis")
        self._set(".meter-cluster", text)

    def _render_hold(self) -> None:
        if not self.is_mounted:
            return
        self.set_class(bool(self._holding), "-holding")
        self.query_one(".meter-hold", Static).update(f"HOLDING NEW STARTS: {self._holding}" if self._holding else "")

    def _render_metrics(self) -> None:
        metrics = self._metrics
        if not self.is_mounted or metrics is None:
            return
        width = max(10, self.content_size.width or 30)
        usable = metrics.usable_cpus
        cpus = f"{usable:g} usable CPU{'s' if usable != 1 else ''}"
        cpu_line = Text(f"{metrics.cpu_percent:5.1f}% of {cpus}\n", no_wrap=True)
        cpu_line.append(bar(metrics.cpu_percent, width))
        self._set(".meter-cpu", cpu_line)
        self._set(".meter-cores", self._cores_text(metrics.per_core, width))
        mem_percent = metrics.mem_used / metrics.mem_total * 100 if metrics.mem_total else 0.0
        mem = Text(f"mem {format_bytes(metrics.mem_used)} of {format_bytes(metrics.mem_total)}\n", no_wrap=True)
        mem.append(bar(mem_percent, width))
        self._set(".meter-mem", mem)
        self.query_one(Sparkline).data = list(metrics.history) or [0.0]

    def _set(self, selector: str, text: Text) -> None:
        """Show ``text`` in a line of the meter, with a layout pass only when its height changed."""
        height = text.plain.count("\n") + 1
        layout = self._heights.get(selector) != height
        self._heights[selector] = height
        self.query_one(selector, Static).update(text, layout=layout)

    @staticmethod
    def _cores_text(per_core: Sequence[float], width: int) -> Text:
        if not per_core:
            return Text("")
        if len(per_core) > FULL_BAR_CORES:
            return Text(f"cores {core_blocks(per_core)}", no_wrap=True, overflow="fold")
        label_width = len(str(len(per_core) - 1))
        bar_width = max(4, width - label_width - 6)
        lines = [f"{index:>{label_width}} {bar(value, bar_width)} {value:3.0f}%" for index, value in enumerate(per_core)]
        return Text("\n".join(lines), no_wrap=True)

    def summary(self) -> str:
        """Return one line for the status bar when the meter itself is hidden."""
        metrics = self._metrics
        if metrics is None:
            return ""
        return f"cpu {metrics.cpu_percent:.0f}% of {metrics.usable_cpus:g}"
