"""Measure the diff model on a pull request of 2,000 files and 100,000 changed lines.

Prints three numbers that the review screen depends on:
- file list: ``PullDiff.files`` (one ``git diff --raw --numstat`` call and its parsing);
- file open: ``load_patch`` of one file (``git diff`` of that path and unidiff parsing);
- row access: reading a screenful of 50 rows at random positions of patches of growing size,
  which must not grow with the size of the file.

Usage: python benchmarks/bench_diff.py [--files N] [--lines N] [--repeat N]
The repository is generated with ``git fast-import`` in a temporary folder and removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aipass_tui.core.diff import PullDiff


def fast_import_stream(files: int, lines: int, big_files: list[int]) -> bytes:
    """Return two commits: ``files`` files with every line replaced, plus files of ``big_files`` lines added."""
    parts: list[bytes] = []
    for mark, (message, word) in enumerate((("base", b"old"), ("head", b"new")), start=1):
        parts.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        parts.append(b"committer Bench <bench@example.invalid> 1700000000 +0000\n")
        parts.append(b"data %d\n%s\n" % (len(message), message.encode()))
        if mark == 2:
            parts.append(b"from :1\n")
        for index in range(files):
            content = b"".join(b"%s line %d of file %d\n" % (word, n, index) for n in range(lines))
            parts.append(b"M 100644 inline pkg%02d/file %04d.txt\ndata %d\n%s\n" % (index % 40, index, len(content), content))
        if mark == 2:
            for size in big_files:
                content = b"".join(b"added line %d of a big file\n" % n for n in range(size))
                parts.append(b"M 100644 inline big/%d.txt\ndata %d\n%s\n" % (size, len(content), content))
    return b"".join(parts)


def build(root: Path, files: int, lines: int, big_files: list[int]) -> tuple[str, str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=fast_import_stream(files, lines, big_files), check=True, env=env)
    revs = subprocess.run(["git", "rev-parse", "main~1", "main"], cwd=root, capture_output=True, check=True, text=True).stdout.split()
    return revs[0], revs[1]


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def fmt(samples: list[float]) -> str:
    return f"median {statistics.median(samples) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms ({len(samples)} runs)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="changed files (default 2000)")
    parser.add_argument("--lines", type=int, default=25, help="lines per file, each replaced: 2 x lines changed lines per file (default 25)")
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (default 7)")
    args = parser.parse_args()
    big_files = [1_000, 10_000, 20_000]
    rng = random.Random(1)

    with tempfile.TemporaryDirectory(prefix="bench-diff-") as folder:
        repo = Path(folder) / "repo"
        started = time.perf_counter()
        base, head = build(repo, args.files, args.lines, big_files)
        print(f"built {args.files} files x {2 * args.lines} changed lines (+ {len(big_files)} big files) in {time.perf_counter() - started:.1f} s")

        def file_list() -> None:
            PullDiff(repo, base, head).files

        print(f"file list ({args.files + len(big_files)} files): {fmt(timed(file_list, args.repeat))}")
        diff = PullDiff(repo, base, head)
        generated = [f for f in diff.files if not f.path.startswith("big/")]
        changed = sum(f.changed_lines for f in generated)
        print(f"changed lines counted in the {len(generated)} generated files: {changed}")

        names = [f.path for f in rng.sample(generated, args.repeat)]
        print(f"file open (one {2 * args.lines}-line patch): {fmt([timed(lambda n=n: diff.load_patch(n), 1)[0] for n in names])}")

        for size in big_files:
            path = f"big/{size}.txt"
            opened = timed(lambda: diff.load_patch(path, full=True), 3)
            patch = diff.load_patch(path, full=True)

            def screenful() -> None:
                start = rng.randrange(0, len(patch.rows) - 50)
                for row in patch.row_range(start, start + 50):
                    row.text

            per_screen = timed(screenful, 200)
            print(
                f"{size:>6}-line file: open {statistics.median(opened) * 1000:.1f} ms; "
                f"50-row screen at a random position: median {statistics.median(per_screen) * 1e6:.1f} us"
            )
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {subprocess.run(['git', 'version'], capture_output=True, text=True).stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
