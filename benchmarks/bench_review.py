"""Measure the review screens on a pull request of 2,000 files and 100,000 changed lines.

The repository comes from ``bench_diff.py``'s generator (``git fast-import``): 2,000 files with
every line replaced, plus added files of 1,000, 10,000 and 20,000 lines. A pull request record
of it is stored, and the real cockpit opens it headless (Textual's ``run_test``). Printed:

- record read: ``PullStore.load`` of the 2,003-file record (the list screen reads every record);
- file list shown: from pushing the pull request screen to its file list holding every file;
- file open: from moving the file list's cursor to the diff view showing that file
  (one ``git diff`` of the path on a worker, parsing, then the view), for random files;
- page scroll: one page down plus drawing every visible row with empty caches, near the top
  and in the middle of the 20,000-line file and of the 1,000-line file, which must cost the same.

Usage: python benchmarks/bench_review.py [--files N] [--lines N] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from bench_diff import build  # noqa: E402

from aipass_tui.config import AgentConfig, Settings  # noqa: E402
from aipass_tui.core import clock  # noqa: E402
from aipass_tui.core.diff import list_files  # noqa: E402
from aipass_tui.core.models import AgentState  # noqa: E402
from aipass_tui.core.orchestrator import Snapshot  # noqa: E402
from aipass_tui.core.pulls import PullFile, PullRequest, PullStore  # noqa: E402
from aipass_tui.core.store import Paths  # noqa: E402
from aipass_tui.ui.app import create_app  # noqa: E402
from aipass_tui.ui.screens.pull import PullScreen  # noqa: E402
from aipass_tui.ui.source import RecordedSource  # noqa: E402

BIG_FILES = [1_000, 10_000, 20_000]
SIZE = (160, 50)


def record_pull(repo: Path, base: str, head: str) -> PullRequest:
    """Store pull request 1 from ``base`` to ``head`` as the git flow records one."""
    files = [PullFile.model_validate(entry.to_dict()) for entry in list_files(repo, base, head)]
    now = clock.now()
    pull = PullRequest(
        id="1", agent="bench", request="r-bench", branch="main", target="main", base=base, head=head,
        title="Generated change", files=files, created_at=now, updated_at=now,
    )
    paths = Paths(repo)
    paths.ensure()
    PullStore(paths).save(pull)
    return pull


def ms(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms ({len(samples)} runs)"


async def wait_until(predicate, timeout: float = 30.0) -> None:
    """Let the app's loop run until ``predicate`` is true (without forcing a repaint per poll)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the screen did not reach the expected state within {timeout:.0f} s")
        await asyncio.sleep(0.0005)


async def measure(repo: Path, pull: PullRequest, repeat: int) -> None:
    settings = Settings(agents={"bench": AgentConfig(kind="command", command=["true"])})
    source = RecordedSource(repo, settings, Snapshot(agents={"bench": AgentState(name="bench", kind="command")}, requests=[], runs={}))
    app = create_app(repo, settings, source, frozen=True, low_bandwidth=False)
    rng = random.Random(2)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        list_shown: list[float] = []
        painted: list[float] = []
        for _ in range(repeat):
            started = time.perf_counter()
            screen = PullScreen(pull)
            await app.push_screen(screen)
            await wait_until(lambda: screen.is_mounted and screen.file_list.row_count == len(pull.files))
            list_shown.append(time.perf_counter() - started)
            await pilot.pause(0)
            painted.append(time.perf_counter() - started)
            await wait_until(lambda: screen.document is not None)
            if len(list_shown) < repeat:
                await app.pop_screen()
        print(f"file list shown ({len(pull.files)} files): {ms(list_shown)}; with the screen drawn: {ms(painted)}")

        generated = [i for i, entry in enumerate(pull.files) if not entry.path.startswith("big/")]
        opened: list[float] = []
        drawn: list[float] = []
        for index in rng.sample(generated, repeat * 3):
            path = pull.files[index].path
            started = time.perf_counter()
            screen.file_list.move_cursor(index)
            await wait_until(lambda: screen.document is not None and screen.document.path == path)
            opened.append(time.perf_counter() - started)
            await pilot.pause(0)
            drawn.append(time.perf_counter() - started)
        lines = pull.files[generated[0]].additions + pull.files[generated[0]].deletions
        print(f"file open (a {lines}-line patch in the diff view): {ms(opened)}; with the screen drawn: {ms(drawn)}")

        for size in BIG_FILES:
            path = f"big/{size}.txt"
            index = screen.file_list.index_of(path)
            assert index is not None
            started = time.perf_counter()
            screen.file_list.move_cursor(index)
            await wait_until(lambda: screen.document is not None and screen.document.path == path)
            print(f"{size:>6}-line file: opened in {(time.perf_counter() - started) * 1000:.1f} ms", end="; ")
            await pilot.pause(0)
            view = screen.diff_view
            height = view.scrollable_content_region.height
            results = []
            for label, start in (("top", 0), ("middle", view.row_count // 2)):
                view.move_cursor(start, top=True)
                samples = []
                for _ in range(repeat * 5):
                    view.clear_cache()
                    begun = time.perf_counter()
                    view.action_page(1)
                    for y in range(height):
                        view.render_line(y)
                    samples.append(time.perf_counter() - begun)
                results.append(f"page scroll at the {label}: median {statistics.median(samples) * 1000:.2f} ms")
            print("; ".join(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="changed files (default 2000)")
    parser.add_argument("--lines", type=int, default=25, help="lines per file, each replaced: 2 x lines changed lines per file (default 25)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (default 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-review-") as folder:
        repo = Path(folder) / "repo"
        started = time.perf_counter()
        base, head = build(repo, args.files, args.lines, BIG_FILES)
        pull = record_pull(repo, base, head)
        changed = sum(f.additions + f.deletions for f in pull.files if not f.path.startswith("big/"))
        print(f"built {args.files} files, {changed} changed lines (+ {len(BIG_FILES)} big files) in {time.perf_counter() - started:.1f} s")

        samples = []
        for _ in range(args.repeat):
            begun = time.perf_counter()
            PullStore(Paths(repo)).load("1")
            samples.append(time.perf_counter() - begun)
        print(f"record read ({len(pull.files)} files): {ms(samples)}")
        asyncio.run(measure(repo, pull, args.repeat))

    git_version = subprocess.run(["git", "version"], capture_output=True, text=True).stdout.strip()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {git_version}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
