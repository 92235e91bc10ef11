"""Path globs and the smallest set of directories that a set of globs needs watched.

Globs are anchored at a base directory (usually the repository root) and follow
``.gitignore``. ``*`` and ``?`` match inside one path component, and ``[abc]`` and ``[!abc]``
match one character. ``**`` as a whole component matches any number of components (zero
included), and a trailing ``/`` means everything inside that directory. A glob also matches
every path below a directory it matches, so ``src/auth`` covers ``src/auth/login.py``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

DEFAULT_EXCLUDED_DIRS = frozenset(
    {".git", ".aipass", "__pycache__", "node_modules", ".venv", "venv", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
"""Directory names that a recursive watch never descends into (unless a glob names them literally)."""

_WILDCARD = re.compile(r"[*?\[]")


class GlobError(ValueError):
    """A glob is empty, absolute or leaves the directory it is relative to."""


def check_glob(pattern: str) -> str:
    """Return ``pattern`` normalised to forward slashes; raise GlobError when it is unusable."""
    text = pattern.strip().replace("\\", "/")
    if not text:
        raise GlobError("empty glob: give a path relative to the repository root, for example 'src/**/*.py'")
    if text.startswith("/") or re.match(r"^[A-Za-z]:/", text):
        raise GlobError(f"glob {pattern!r} is absolute: write it relative to the repository root")
    if ".." in text.split("/"):
        raise GlobError(f"glob {pattern!r} leaves the repository ('..'): write it relative to the repository root")
    return text


def _component_regex(component: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(component):
        char = component[i]
        if char == "*":
            while i + 1 < len(component) and component[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = component.find("]", i + 2 if component[i + 1 : i + 2] in ("!", "]") else i + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = component[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\").replace("/", "") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob into a regex that matches a relative POSIX path or any path below it."""
    text = check_glob(pattern)
    if text.endswith("/"):
        text += "**"
    parts = [part for part in text.split("/") if part not in ("", ".")]
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
        else:
            regex += _component_regex(part) + ("" if last else "/")
    return re.compile(f"(?:{regex})(?:/.*)?", re.DOTALL)


class GlobSet:
    """Several globs relative to ``base``; ``matches(path)`` takes absolute or relative paths."""

    def __init__(self, base: Path, patterns: Iterable[str]) -> None:
        self.base = base
        self.patterns = tuple(check_glob(pattern) for pattern in patterns)
        self._regexes = [glob_regex(pattern) for pattern in self.patterns]

    def relative(self, path: Path) -> str | None:
        """Return ``path`` relative to the base as a POSIX string, or None when it is outside."""
        try:
            rel = path.relative_to(self.base) if path.is_absolute() else path
        except ValueError:
            return None
        return PurePosixPath(*rel.parts).as_posix()

    def matches(self, path: Path) -> bool:
        rel = self.relative(path)
        if rel is None or rel == ".":
            return False
        return any(regex.fullmatch(rel) for regex in self._regexes)


@dataclass(frozen=True)
class WatchEntry:
    """One directory to watch; ``recursive`` includes its subdirectories."""

    path: Path
    recursive: bool


def static_prefix(pattern: str) -> tuple[tuple[str, ...], bool, bool]:
    """Split a glob into its literal leading parts, whether matching descends, and whether it is all literal.

    ``src/*.py`` gives (``("src",)``, False, False); ``src/**/*.py`` gives (``("src",)``, True,
    False); ``docs/index.md`` gives (``("docs", "index.md")``, False, True), where the last part
    may name a file or a directory.
    """
    text = check_glob(pattern)
    parts = [part for part in text.split("/") if part not in ("", ".")]
    literal: list[str] = []
    for index, part in enumerate(parts):
        if _WILDCARD.search(part):
            rest = parts[index:]
            return tuple(literal), len(rest) > 1 or "**" in part, False
        literal.append(part)
    return tuple(literal), text.endswith("/"), True


def plan_tree(
    root: Path, exclude_dirs: frozenset[str] = DEFAULT_EXCLUDED_DIRS, skip: Callable[[Path], bool] | None = None
) -> list[WatchEntry]:
    """Return the fewest watches that cover ``root`` and its subdirectories minus excluded ones.

    A directory whose subtree contains no excluded directory gets one recursive watch; a
    directory with an excluded directory somewhere below gets a non-recursive watch and the
    same treatment for each of its subdirectories. ``skip`` excludes more directories by path.
    Symbolic links are not followed.
    """
    return _plan_tree(root, exclude_dirs, skip)[1]


def _plan_tree(
    directory: Path, exclude_dirs: frozenset[str], skip: Callable[[Path], bool] | None
) -> tuple[bool, list[WatchEntry]]:
    """Plan one directory; the flag tells whether its subtree holds no excluded directory."""
    clean = True
    below: list[WatchEntry] = []
    for name, path in _subdirectories(directory):
        if name in exclude_dirs or (skip is not None and skip(path)):
            clean = False
            continue
        child_clean, child_entries = _plan_tree(path, exclude_dirs, skip)
        clean = clean and child_clean
        below.extend(child_entries)
    if clean:
        return True, [WatchEntry(directory, True)]
    return False, [WatchEntry(directory, False), *below]


def _subdirectories(directory: Path) -> list[tuple[str, Path]]:
    try:
        with os.scandir(directory) as scan:
            return [(entry.name, Path(entry.path)) for entry in scan if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def plan_globs(
    base: Path, patterns: Iterable[str], exclude_dirs: frozenset[str] = DEFAULT_EXCLUDED_DIRS
) -> list[WatchEntry]:
    """Return the directories to watch so that changes to files matching ``patterns`` are seen.

    Only the literal prefix of each glob is watched: ``docs/*.md`` watches ``docs`` alone,
    ``src/**/*.py`` watches the tree under ``src`` (without excluded directories such as
    ``.git``, unless the prefix names them). When the prefix does not exist yet, its nearest
    existing ancestor is watched non-recursively so that its creation is noticed.
    """
    entries: list[WatchEntry] = []
    for pattern in patterns:
        prefix, descend, literal = static_prefix(pattern)
        target = base.joinpath(*prefix)
        if literal and target.is_dir():
            entries.extend(plan_tree(target, exclude_dirs))
            continue
        if literal and not descend:
            target = target.parent
        if target.is_dir():
            entries.extend(plan_tree(target, exclude_dirs) if descend else [WatchEntry(target, False)])
            continue
        ancestor = target.parent
        while not ancestor.is_dir() and ancestor != base and ancestor.parent != ancestor:
            ancestor = ancestor.parent
        if ancestor.is_dir():
            entries.append(WatchEntry(ancestor, False))
    return merge_entries(entries)


def merge_entries(entries: Iterable[WatchEntry]) -> list[WatchEntry]:
    """Drop duplicates and watches already covered by a recursive watch of an ancestor."""
    by_path: dict[Path, bool] = {}
    for entry in entries:
        by_path[entry.path] = by_path.get(entry.path, False) or entry.recursive
    recursive_roots = [path for path, recursive in by_path.items() if recursive]
    merged: list[WatchEntry] = []
    for path, recursive in sorted(by_path.items()):
        covered = any(root != path and path.is_relative_to(root) for root in recursive_roots)
        if not covered:
            merged.append(WatchEntry(path, recursive))
    return merged
