"""File globs of plan tasks: parsing, matching, and deciding whether two globs can overlap.

A glob is a path relative to the repository root, split on ``/`` into segments:

- ``**`` as a whole segment matches zero or more path components, and at the end of a glob one
  or more (``src/**`` matches every file below ``src`` but not a file named ``src``);
- ``*`` matches any run of characters inside one component (``**`` inside a longer segment is
  the same as ``*``), ``?`` matches one character, ``[abc]``, ``[a-z]`` and ``[!abc]`` (or
  ``[^abc]``) match one character of a class;
- a trailing ``/`` means everything below that folder (``src/`` is ``src/**``);
- every other character matches itself, case-sensitively, as git compares paths on Linux.

Two globs overlap when some path matches both. ``overlap_example`` decides that exactly, by
searching the product of the two patterns as automata. So it also finds overlaps that no file
in the repository shows yet (``src/**`` and ``src/a.py``), and it rejects pairs that only look
alike (``src/*.py`` and ``src/x/*`` never match the same path).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import lru_cache

# Characters tried first when a witness path is built, so examples read like real file names.
_NICE = "abcdefghijklmnopqrstuvwxyz0123456789_"


class GlobError(ValueError):
    """An invalid glob. The message names the problem and how to write the glob."""


@dataclass(frozen=True, slots=True)
class CharSet:
    """One character of a component: a set of inclusive ranges, or its complement when ``negated``."""

    negated: bool
    ranges: tuple[tuple[str, str], ...]

    def contains(self, char: str) -> bool:
        inside = any(lo <= char <= hi for lo, hi in self.ranges)
        return inside != self.negated


ANY_CHAR = CharSet(True, ())


class _Star:
    """Any run of characters inside one component."""

    def __repr__(self) -> str:
        return "STAR"


class _DoubleStar:
    """Zero or more whole path components."""

    def __repr__(self) -> str:
        return "DOUBLE_STAR"


STAR = _Star()
DOUBLE_STAR = _DoubleStar()

Token = CharSet | _Star
Segment = tuple[Token, ...] | _DoubleStar


@dataclass(frozen=True)
class Glob:
    """A parsed glob: its normalized text and its segments."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def has_wildcards(self) -> bool:
        return any(segment is DOUBLE_STAR or any(not _is_literal(t) for t in segment) for segment in self.segments)

    def matches(self, path: str) -> bool:
        """Tell whether a repository-relative path (``a/b.py``) matches this glob."""
        return _regex(self.segments).fullmatch(path.strip("/") + "/") is not None


def _is_literal(token: Token) -> bool:
    return isinstance(token, CharSet) and not token.negated and len(token.ranges) == 1 and token.ranges[0][0] == token.ranges[0][1]


def parse(text: str) -> Glob:
    """Parse and normalize a glob. Raise GlobError for an empty, absolute or escaping one."""
    if not isinstance(text, str) or not text.strip():
        raise GlobError("empty glob: write a path relative to the repository root, for example 'src/**'")
    if text != text.strip():
        raise GlobError(f"glob {text!r} starts or ends with spaces: remove them")
    if text.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", text):
        raise GlobError(
            f"glob {text!r} is absolute: write it relative to the repository root, "
            f"for example {_relative_hint(text)!r}"
        )
    parts = text.split("/")
    if ".." in parts:
        raise GlobError(f"glob {text!r} leaves the repository through '..': write the path from the repository root without '..'")
    trailing = text.endswith("/")
    parts = [part for part in parts if part not in ("", ".")]
    if trailing:
        parts.append("**")
    if not parts:
        raise GlobError(f"glob {text!r} names the repository root itself: write '**' to mean every file")
    segments: list[Segment] = [DOUBLE_STAR if part == "**" else _parse_component(part, text) for part in parts]
    if segments[-1] is DOUBLE_STAR:
        # A final "**" matches the files below a folder but not the folder's own path, as in
        # gitignore: "src/**" is "src/*/**", one component followed by zero or more.
        segments[-1:] = [(STAR,), DOUBLE_STAR]
    return Glob("/".join(parts), tuple(segments))


def _relative_hint(text: str) -> str:
    tail = re.sub(r"^([A-Za-z]:[\\/]|~[^/]*/?|/+)", "", text)
    return tail or "src/**"


def _parse_component(part: str, whole: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            if not tokens or tokens[-1] is not STAR:
                tokens.append(STAR)
            i += 1
        elif char == "?":
            tokens.append(ANY_CHAR)
            i += 1
        elif char == "[":
            charset, i = _parse_class(part, i, whole)
            tokens.append(charset)
        else:
            tokens.append(CharSet(False, ((char, char),)))
            i += 1
    return tuple(tokens)


def _parse_class(part: str, start: int, whole: str) -> tuple[CharSet, int]:
    i = start + 1
    negated = i < len(part) and part[i] in "!^"
    if negated:
        i += 1
    ranges: list[tuple[str, str]] = []
    first = True
    while i < len(part) and (part[i] != "]" or first):
        lo = part[i]
        if i + 2 < len(part) and part[i + 1] == "-" and part[i + 2] != "]":
            hi = part[i + 2]
            if hi < lo:
                raise GlobError(f"glob {whole!r} has the reversed range '{lo}-{hi}': write '{hi}-{lo}'")
            ranges.append((lo, hi))
            i += 3
        else:
            ranges.append((lo, lo))
            i += 1
        first = False
    if i >= len(part):
        raise GlobError(f"glob {whole!r} has a '[' without its closing ']': close the class, or write '[[]' for a literal '['")
    return CharSet(negated, tuple(ranges)), i + 1


@lru_cache(maxsize=4096)
def compile_glob(text: str) -> Glob:
    """Return the parsed glob, cached: validation and ownership checks match the same globs often."""
    return parse(text)


def matches(glob: str, path: str) -> bool:
    """Tell whether ``path`` (relative to the repository root) matches ``glob``."""
    return compile_glob(glob).matches(path)


def matches_any(globs: list[str], path: str) -> bool:
    """Tell whether ``path`` matches at least one of ``globs`` (invalid globs match nothing)."""
    for glob in globs:
        try:
            if compile_glob(glob).matches(path):
                return True
        except GlobError:
            continue
    return False


@lru_cache(maxsize=4096)
def _regex(segments: tuple[Segment, ...]) -> re.Pattern[str]:
    # Each segment consumes "component/", and the path is matched with a "/" appended, so a
    # "**" segment is simply zero or more "component/" groups.
    parts = []
    for segment in segments:
        if segment is DOUBLE_STAR:
            parts.append("(?:[^/]+/)*")
        else:
            parts.append("".join(_token_regex(token) for token in segment) + "/")
    return re.compile("".join(parts), re.DOTALL)


def _token_regex(token: Token) -> str:
    if token is STAR:
        return "[^/]*"
    assert isinstance(token, CharSet)
    if _is_literal(token):
        return re.escape(token.ranges[0][0])
    body = "".join(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}" for lo, hi in token.ranges)
    return f"[^{body}/]" if token.negated else f"(?!/)[{body}]"


def overlap_example(first: str, second: str) -> str | None:
    """Return a path that matches both globs, or None when no path can match both."""
    a = compile_glob(first).segments
    b = compile_glob(second).segments
    return _intersect_segments(a, b)


def _intersect_segments(a: tuple[Segment, ...], b: tuple[Segment, ...]) -> str | None:
    # Breadth-first search over (segment index in a, segment index in b, consumed a component),
    # where "**" may be skipped (zero components) or consume one component and stay.
    start = (0, 0, False)
    parents: dict[tuple[int, int, bool], tuple[tuple[int, int, bool], str | None] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        i, j, consumed = state
        if i == len(a) and j == len(b) and consumed:
            return _walk_back(parents, state)
        for target, component in _segment_moves(a, b, i, j, consumed):
            if target not in parents:
                parents[target] = (state, component)
                queue.append(target)
    return None


def _segment_moves(a: tuple[Segment, ...], b: tuple[Segment, ...], i: int, j: int, consumed: bool):
    seg_a = a[i] if i < len(a) else None
    seg_b = b[j] if j < len(b) else None
    if seg_a is DOUBLE_STAR:
        yield (i + 1, j, consumed), None
    if seg_b is DOUBLE_STAR:
        yield (i, j + 1, consumed), None
    if seg_a is None or seg_b is None:
        return
    next_i = i if seg_a is DOUBLE_STAR else i + 1
    next_j = j if seg_b is DOUBLE_STAR else j + 1
    pattern_a = (STAR,) if seg_a is DOUBLE_STAR else seg_a
    pattern_b = (STAR,) if seg_b is DOUBLE_STAR else seg_b
    component = _intersect_component(pattern_a, pattern_b)  # type: ignore[arg-type]
    if component is not None:
        yield (next_i, next_j, True), component


def _walk_back(parents: dict, state: tuple) -> str:
    components: list[str] = []
    while parents[state] is not None:
        state, component = parents[state]
        if component is not None:
            components.append(component)
    return "/".join(reversed(components))


@lru_cache(maxsize=8192)
def _intersect_component(a: tuple[Token, ...], b: tuple[Token, ...]) -> str | None:
    """Return a non-empty component matched by both token patterns, or None."""
    # First ask for a common string in which every "*" matches at least one character: such a
    # string also matches the original patterns, and reads better ("a.py" rather than ".py").
    return _search_component(_one_or_more(a), _one_or_more(b)) or _search_component(a, b)


def _one_or_more(tokens: tuple[Token, ...]) -> tuple[Token, ...]:
    out: list[Token] = []
    for token in tokens:
        if token is STAR:
            out.append(ANY_CHAR)
        out.append(token)
    return tuple(out)


def _search_component(a: tuple[Token, ...], b: tuple[Token, ...]) -> str | None:
    start = (0, 0, False)
    parents: dict[tuple[int, int, bool], tuple[tuple[int, int, bool], str | None] | None] = {start: None}
    queue = deque([start])
    while queue:
        state = queue.popleft()
        i, j, consumed = state
        if i == len(a) and j == len(b) and consumed:
            chars: list[str] = []
            while parents[state] is not None:
                state, char = parents[state]
                if char is not None:
                    chars.append(char)
            return "".join(reversed(chars))
        for target, char in _char_moves(a, b, i, j, consumed):
            if target not in parents:
                parents[target] = (state, char)
                queue.append(target)
    return None


def _char_moves(a: tuple[Token, ...], b: tuple[Token, ...], i: int, j: int, consumed: bool):
    tok_a = a[i] if i < len(a) else None
    tok_b = b[j] if j < len(b) else None
    if tok_a is STAR:
        yield (i + 1, j, consumed), None
    if tok_b is STAR:
        yield (i, j + 1, consumed), None
    if tok_a is None or tok_b is None:
        return
    set_a, next_i = (ANY_CHAR, i) if tok_a is STAR else (tok_a, i + 1)
    set_b, next_j = (ANY_CHAR, j) if tok_b is STAR else (tok_b, j + 1)
    char = common_char(set_a, set_b)  # type: ignore[arg-type]
    if char is not None:
        yield (next_i, next_j, True), char


def common_char(a: CharSet, b: CharSet) -> str | None:
    """Return a character (never ``/``) in both sets, preferring letters and digits, or None."""
    for char in _NICE:
        if a.contains(char) and b.contains(char):
            return char
    # The smallest common character, if any, sits on a boundary of one of the sets: the start
    # of a range, the character after a range, or the character after "/".
    candidates = {"\x01", "0"}
    for charset in (a, b):
        for lo, hi in charset.ranges:
            candidates.add(lo)
            if ord(hi) < 0x10FFFF:
                candidates.add(chr(ord(hi) + 1))
    for char in sorted(candidates):
        if char != "/" and a.contains(char) and b.contains(char):
            return char
    return None
