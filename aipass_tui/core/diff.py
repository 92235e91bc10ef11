"""Parsed diffs between two commits: the file list, and each file's patch loaded on request.

The file list comes from one ``git diff --raw --numstat -z`` call, which reads only objects and
so costs the same whatever the size of the changed files. A file's patch is produced when the
viewer opens it (``git diff BASE HEAD -- PATH``) and its hunks are parsed by ``unidiff``. The
lines of a patch sit in one flat list so that a viewer can render rows ``i..j`` without touching
the others.

Names arrive NUL-separated from ``-z`` output, so spaces, tabs, quotes, backslashes and
non-ASCII bytes need no unquoting. Text is decoded as UTF-8 with ``surrogateescape``: every
line keeps its exact bytes (``DiffLine.data``) and shows U+FFFD for invalid bytes
(``DiffLine.text``).
"""

from __future__ import annotations

import io
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from aipass_tui.core.gitflow_git import PLAIN_OUTPUT, run_git

LARGE_FILE_LINES = 5_000
"""Changed lines above which ``load_patch`` returns a summary unless ``full=True``.

Opening a patch of this size takes about 20 ms on a 2-core machine (benchmarks/bench_diff.py), so
every file opens within the 50 ms budget and larger ones open in full on request.
"""

_STATUS = {"A": "added", "D": "deleted", "M": "modified", "R": "renamed", "C": "copied", "T": "type_changed", "U": "unmerged", "X": "unknown"}
_NULL_BLOB = "0" * 40
_DIFF_OPTIONS = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")


class DiffError(Exception):
    """A diff could not be produced or parsed; the message names the commits or the file."""


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def display(text: str) -> str:
    """Return ``text`` with bytes that were not valid UTF-8 shown as U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


@dataclass(frozen=True, slots=True)
class FileDiff:
    """One changed file between the base and head commits."""

    path: str
    """Path in the head commit (the old path for a deleted file)."""
    old_path: str | None
    """Path in the base commit for a renamed or copied file, else None."""
    status: str
    """``added``, ``modified``, ``deleted``, ``renamed``, ``copied`` or ``type_changed``."""
    binary: bool
    additions: int
    deletions: int
    old_mode: str | None = None
    new_mode: str | None = None
    old_blob: str | None = None
    new_blob: str | None = None
    similarity: int | None = None

    @property
    def mode_change(self) -> str | None:
        """``"100644 -> 100755"`` when both sides exist and their modes differ, else None."""
        if self.old_mode and self.new_mode and self.old_mode != self.new_mode:
            return f"{self.old_mode} -> {self.new_mode}"
        return None

    @property
    def blob(self) -> str | None:
        """Id of the file's content in the head commit (the base content for a deleted file)."""
        return self.old_blob if self.status == "deleted" else self.new_blob

    @property
    def changed_lines(self) -> int:
        return self.additions + self.deletions

    def to_dict(self) -> dict[str, object]:
        return {
            "path": display(self.path),
            "old_path": display(self.old_path) if self.old_path is not None else None,
            "status": self.status,
            "binary": self.binary,
            "additions": self.additions,
            "deletions": self.deletions,
            "old_mode": self.old_mode,
            "new_mode": self.new_mode,
            "mode_change": self.mode_change,
            "blob": self.blob,
            "similarity": self.similarity,
        }


def list_files(repo: Path, base: str, head: str) -> list[FileDiff]:
    """Return the files that differ between commits ``base`` and ``head``, in git's order."""
    args = (*PLAIN_OUTPUT, "diff", *_DIFF_OPTIONS, "--raw", "--numstat", "-z", "--no-abbrev", "-M", base, head, "--")
    proc = run_git(repo, *args, read_only=True, check=False)
    if proc.returncode != 0:
        raise DiffError(f"git diff {base} {head} failed in {repo}: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return parse_raw_numstat(proc.stdout)


def parse_raw_numstat(out: bytes) -> list[FileDiff]:
    """Parse the output of ``git diff --raw --numstat -z`` (raw records first, then numstat)."""
    tokens = out.split(b"\0")
    raw: list[tuple[str, str, str, str, str, int | None, str, str | None]] = []
    i = 0
    while i < len(tokens) and tokens[i].startswith(b":"):
        old_mode, new_mode, old_blob, new_blob, status = tokens[i][1:].decode().split(" ")
        letter, score = status[0], (int(status[1:]) if status[1:] else None)
        if letter in ("R", "C"):
            old, new = _decode(tokens[i + 1]), _decode(tokens[i + 2])
            i += 3
        else:
            old, new = None, _decode(tokens[i + 1])
            i += 2
        raw.append((old_mode, new_mode, old_blob, new_blob, letter, score, new, old))
    counts: list[tuple[int | None, int | None]] = []
    while i < len(tokens):
        token = tokens[i]
        if not token:
            i += 1
            continue
        added, deleted, rest = token.split(b"\t", 2)
        counts.append((None if added == b"-" else int(added), None if deleted == b"-" else int(deleted)))
        i += 3 if rest == b"" else 1
    if len(counts) != len(raw):
        raise DiffError(f"git listed {len(raw)} changed files but counted lines for {len(counts)}")
    files: list[FileDiff] = []
    for (old_mode, new_mode, old_blob, new_blob, letter, score, path, old_path), (added, deleted) in zip(raw, counts):
        binary = added is None or deleted is None
        files.append(
            FileDiff(
                path=path,
                old_path=old_path,
                status=_STATUS.get(letter, "unknown"),
                binary=binary,
                additions=added or 0,
                deletions=deleted or 0,
                old_mode=None if old_mode == "000000" else old_mode,
                new_mode=None if new_mode == "000000" else new_mode,
                old_blob=None if old_blob == _NULL_BLOB else old_blob,
                new_blob=None if new_blob == _NULL_BLOB else new_blob,
                similarity=score,
            )
        )
    return files


@dataclass(slots=True)
class DiffLine:
    """One row of a patch: a hunk header or a line of content."""

    kind: str
    """``hunk`` (header row), ``context``, ``added``, ``removed`` or ``no_newline`` (git's marker)."""
    old_no: int | None
    new_no: int | None
    raw: str
    """Line content without the trailing LF (a CR of a CRLF line stays), bytes kept by surrogateescape."""
    hunk: int = 0
    """Index of the hunk the row belongs to."""

    @property
    def text(self) -> str:
        """Content for display: invalid UTF-8 bytes shown as U+FFFD."""
        return display(self.raw)

    @property
    def data(self) -> bytes:
        """Exact bytes of the line as stored in git (without the trailing LF)."""
        return self.raw.encode("utf-8", "surrogateescape")


@dataclass(slots=True)
class HunkInfo:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    section: str
    row: int
    """Index in ``Patch.rows`` of this hunk's header row."""


_KINDS = {"+": "added", "-": "removed", " ": "context", "\\": "no_newline"}


class PatchRows(Sequence[DiffLine]):
    """The rows of a patch, built on access from unidiff's parsed lines.

    Indexing costs the same for any patch size, and parsing does no per-line work of its own
    beyond unidiff's, so that opening a large file stays fast.
    """

    __slots__ = ("_items", "_starts", "_headers")

    def __init__(self, items: list[Any] | None = None, starts: list[int] | None = None, headers: list[str] | None = None) -> None:
        self._items: list[Any] = items or []
        self._starts: list[int] = starts or []
        self._headers: list[str] = headers or []

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> DiffLine: ...

    @overload
    def __getitem__(self, index: slice) -> list[DiffLine]: ...

    def __getitem__(self, index: int | slice) -> DiffLine | list[DiffLine]:
        if isinstance(index, slice):
            return [self._row(i) for i in range(*index.indices(len(self._items)))]
        if index < 0:
            index += len(self._items)
        if not 0 <= index < len(self._items):
            raise IndexError(f"row {index} is outside the patch ({len(self._items)} rows)")
        return self._row(index)

    def _row(self, index: int) -> DiffLine:
        hunk = bisect_right(self._starts, index) - 1
        item = self._items[index]
        if item is None:
            return DiffLine("hunk", None, None, self._headers[hunk], hunk)
        value = item.value[:-1] if item.value.endswith("\n") else item.value
        return DiffLine(_KINDS[item.line_type], item.source_line_no, item.target_line_no, value, hunk)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (PatchRows, list, tuple)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"<PatchRows: {len(self)} rows, {len(self._starts)} hunks>"


@dataclass(slots=True)
class Patch:
    """The parsed patch of one file; ``rows[i]`` is row ``i`` of the rendered diff."""

    file: FileDiff
    rows: PatchRows = field(default_factory=PatchRows)
    hunks: list[HunkInfo] = field(default_factory=list)
    summary_only: bool = False
    """True when the file was too large to load without ``full=True``; ``rows`` is then empty."""

    def __len__(self) -> int:
        return len(self.rows)

    def row_range(self, start: int, stop: int) -> list[DiffLine]:
        """Return rows ``start..stop-1`` (clipped to the patch)."""
        return self.rows[max(start, 0) : max(stop, 0)]

    def hunk_at(self, row: int) -> int:
        """Return the index of the hunk that contains ``row`` (0 when there are no hunks)."""
        if not self.hunks:
            return 0
        return max(bisect_right([h.row for h in self.hunks], row) - 1, 0)


def parse_patch(file: FileDiff, data: bytes) -> Patch:
    """Parse one file's ``git diff`` output into rows; the header lines before the first hunk are dropped.

    Only the hunks go to ``unidiff``, behind a fixed header, because quoted or tab-terminated
    names on the ``---``/``+++`` lines are already known from the file list.
    """
    text = _decode(data)
    start = 0 if text.startswith("@@ ") else text.find("\n@@ ") + 1
    if start == 0 and not text.startswith("@@ "):
        return Patch(file)
    body = "--- a/file\n+++ b/file\n" + text[start:]
    try:
        parsed = PatchSet(io.StringIO(body, newline="\n"))
    except UnidiffParseError as exc:
        raise DiffError(f"could not parse the diff of {display(file.path)}: {exc}") from exc
    items: list[Any] = []
    starts: list[int] = []
    headers: list[str] = []
    hunks: list[HunkInfo] = []
    for hunk in parsed[0] if parsed else []:
        hunks.append(HunkInfo(hunk.source_start, hunk.source_length, hunk.target_start, hunk.target_length, hunk.section_header, len(items)))
        starts.append(len(items))
        header = f"@@ -{hunk.source_start},{hunk.source_length} +{hunk.target_start},{hunk.target_length} @@"
        headers.append(f"{header} {hunk.section_header}".rstrip())
        items.append(None)
        items.extend(hunk)
    return Patch(file, PatchRows(items, starts, headers), hunks)


def load_patch(repo: Path, base: str, head: str, file: FileDiff, *, full: bool = False, threshold: int = LARGE_FILE_LINES) -> Patch:
    """Produce and parse the patch of ``file`` between ``base`` and ``head``.

    A file with more than ``threshold`` changed lines returns a summary (``summary_only``) unless
    ``full`` is true; a binary file returns a patch without rows.
    """
    if file.binary:
        return Patch(file)
    if file.changed_lines > threshold and not full:
        return Patch(file, summary_only=True)
    paths = [file.path] if file.old_path is None else [file.old_path, file.path]
    args = (*PLAIN_OUTPUT, "--literal-pathspecs", "diff", *_DIFF_OPTIONS, "-M", base, head, "--", *paths)
    proc = run_git(repo, *args, read_only=True, check=False)
    if proc.returncode != 0:
        raise DiffError(f"git diff of {display(file.path)} failed in {repo}: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return parse_patch(file, proc.stdout)


class PullDiff:
    """The diff of one pull request: the file list read once, each patch loaded on request."""

    def __init__(self, repo: Path, base: str, head: str) -> None:
        self.repo = repo
        self.base = base
        self.head = head
        self._files: list[FileDiff] | None = None
        self._by_path: dict[str, FileDiff] = {}

    @property
    def files(self) -> list[FileDiff]:
        if self._files is None:
            self._files = list_files(self.repo, self.base, self.head)
            # Stored records hold display names (U+FFFD for bytes that are not UTF-8), so both forms are accepted.
            self._by_path = {display(f.path): f for f in self._files}
            self._by_path.update((f.path, f) for f in self._files)
        return self._files

    def file(self, path: str) -> FileDiff:
        """Return the entry of ``path`` (its real or display name); raise KeyError naming the path when it did not change."""
        self.files
        try:
            return self._by_path[path]
        except KeyError:
            raise KeyError(f"{display(path)} did not change between {self.base[:12]} and {self.head[:12]}") from None

    def load_patch(self, path: str, *, full: bool = False, threshold: int = LARGE_FILE_LINES) -> Patch:
        """Return the parsed patch of ``path`` (a summary for a very large file unless ``full``)."""
        return load_patch(self.repo, self.base, self.head, self.file(path), full=full, threshold=threshold)

    def patch_bytes(self) -> bytes:
        """Return the whole diff as git prints it (for ``pr show --patch``)."""
        args = (*PLAIN_OUTPUT, "diff", *_DIFF_OPTIONS, "-M", "--binary", self.base, self.head)
        return run_git(self.repo, *args, read_only=True).stdout
