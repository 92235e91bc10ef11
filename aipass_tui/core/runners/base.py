"""The runner interface: start, re-attach, read, watch for exit and stop one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class RunHandle:
    """A live run as the runner tracks it; ``extra`` holds runner-specific data."""

    run_id: str
    run_dir: Path
    pid: int | None = None
    create_time: float | None = None
    node: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Runner(Protocol):
    name: str

    def start(self, run_id: str, run_dir: Path, argv: list[str], cwd: Path, env: dict[str, str]) -> RunHandle:
        """Start the run detached from this process; raise OSError naming the program on failure."""
        ...

    def adopt(self, run_id: str, run_dir: Path, pid: int | None, create_time: float | None) -> RunHandle | None:
        """Re-attach to a run started by an earlier orchestrator; None when its process is gone."""
        ...

    def read(self, handle: RunHandle, stream: str, limit: int) -> bytes:
        """Return up to ``limit`` new bytes of ``stream`` (``"stdout"`` or ``"stderr"``)."""
        ...

    def seek(self, handle: RunHandle, stream: str, offset: int) -> None:
        """Continue reading ``stream`` from ``offset`` (used when re-attaching)."""
        ...

    def exited(self, handles: list[RunHandle]) -> list[RunHandle]:
        """Return the handles whose process has ended, without blocking."""
        ...

    def exit_code(self, handle: RunHandle) -> int | None:
        """Return the recorded exit status of an ended run, or None when none was recorded."""
        ...

    def terminate(self, handle: RunHandle) -> None:
        """Ask the run's whole process tree to end (SIGTERM to its process group)."""
        ...

    def kill(self, handle: RunHandle) -> None:
        """End the run's whole process tree now, including descendants that left its group."""
        ...

    def alive(self, handle: RunHandle) -> bool:
        ...

    def release(self, handle: RunHandle) -> None:
        """Close what the runner holds for this run (file handles), leaving the process alone."""
        ...
