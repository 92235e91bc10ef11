"""A diff of 2,000 files and 100,000 changed lines: counts are exact and any file opens."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aipass_tui.core.diff import PullDiff

FILES = 2000
LINES = 25  # each file has every line replaced: 25 added + 25 removed, 100,000 changed lines in all


@pytest.fixture(autouse=True)
def no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def fast_import_stream(files: int, lines: int) -> bytes:
    """Return a ``git fast-import`` stream of two commits: base files, then every line replaced."""
    parts: list[bytes] = []
    for mark, (message, word) in enumerate((("base", b"old"), ("head", b"new")), start=1):
        parts.append(b"commit refs/heads/main\nmark :%d\n" % mark)
        parts.append(b"committer Test <test@example.invalid> 1700000000 +0000\n")
        parts.append(b"data %d\n%s\n" % (len(message), message.encode()))
        if mark == 2:
            parts.append(b"from :1\n")
        for index in range(files):
            content = b"".join(b"%s line %d of file %d\n" % (word, n, index) for n in range(lines))
            parts.append(b"M 100644 inline pkg%02d/file %04d.txt\ndata %d\n%s\n" % (index % 40, index, len(content), content))
    return b"".join(parts)


def build_large_repo(root: Path, files: int = FILES, lines: int = LINES) -> tuple[str, str]:
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=fast_import_stream(files, lines), check=True)
    base = subprocess.run(["git", "rev-parse", "main~1"], cwd=root, capture_output=True, check=True).stdout.decode().strip()
    head = subprocess.run(["git", "rev-parse", "main"], cwd=root, capture_output=True, check=True).stdout.decode().strip()
    return base, head


def test_large_diff_counts(tmp_path: Path) -> None:
    base, head = build_large_repo(tmp_path / "big")
    diff = PullDiff(tmp_path / "big", base, head)

    files = diff.files

    assert len(files) == FILES
    assert sum(f.additions for f in files) == FILES * LINES
    assert sum(f.deletions for f in files) == FILES * LINES
    assert all(f.status == "modified" for f in files)
    assert len({f.path for f in files}) == FILES


def test_large_diff_opens_one_file(tmp_path: Path) -> None:
    base, head = build_large_repo(tmp_path / "big")
    diff = PullDiff(tmp_path / "big", base, head)

    patch = diff.load_patch("pkg17/file 1017.txt")

    assert len(patch.hunks) == 1
    assert len(patch.rows) == 1 + 2 * LINES
    assert patch.rows[1].text == "old line 0 of file 1017"
    assert patch.rows[-1].text == f"new line {LINES - 1} of file 1017"
    assert patch.rows[-1].new_no == LINES
