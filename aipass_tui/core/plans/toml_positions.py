"""Where each key and value of a TOML document starts, so problems can name a line and column.

``tomllib`` returns plain data without positions, so this module scans the text once more.
It follows the TOML 1.0 grammar for tables, arrays of tables, dotted keys, strings (basic,
literal and their multi-line forms), arrays and inline tables. It is lenient: on text that
``tomllib`` rejects it still maps what it can and never raises.

Locations are tuples of keys and list indexes, the same shape as pydantic's error ``loc``:
``("phases", 1, "tasks", 0, "agent")``.
"""

from __future__ import annotations

import bisect
import tomllib
from dataclasses import dataclass, field

Loc = tuple[str | int, ...]
_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True, order=True)
class Position:
    """A 1-based line and column (columns count characters, a tab counts as one)."""

    line: int
    column: int


@dataclass
class PositionMap:
    """Positions of the keys and values of one document."""

    keys: dict[Loc, Position] = field(default_factory=dict)
    values: dict[Loc, Position] = field(default_factory=dict)
    ends: dict[Loc, Position] = field(default_factory=dict)
    """End of each value: the position just after its last character."""
    duplicates: list[tuple[Loc, Position]] = field(default_factory=list)
    end: Position = Position(1, 1)

    def key(self, loc: Loc) -> Position:
        """Return where the key at ``loc`` starts, or its closest enclosing table or key."""
        return _closest(self.keys, loc, self.end)

    def value(self, loc: Loc) -> Position:
        """Return where the value at ``loc`` starts, or its closest enclosing value."""
        return _closest(self.values, loc, self.end)

    def has(self, loc: Loc) -> bool:
        return tuple(loc) in self.values

    def span(self, loc: Loc) -> tuple[Position, Position] | None:
        """Return where the value at exactly ``loc`` starts and ends, or None when it was not seen."""
        loc = tuple(loc)
        start, end = self.values.get(loc), self.ends.get(loc)
        if start is None or end is None:
            return None
        return start, end


def _closest(table: dict[Loc, Position], loc: Loc, default: Position) -> Position:
    loc = tuple(loc)
    while loc:
        found = table.get(loc)
        if found is not None:
            return found
        loc = loc[:-1]
    return table.get((), Position(1, 1))


def scan(text: str) -> PositionMap:
    """Map every key, table and array element of ``text`` to its position."""
    return _Scanner(text).run()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line_starts = [0] + [n + 1 for n, char in enumerate(text) if char == "\n"]
        self.map = PositionMap()
        self.table: Loc = ()
        self.array_counts: dict[Loc, int] = {}
        self.headers: set[Loc] = set()

    def pos(self, index: int | None = None) -> Position:
        index = self.i if index is None else index
        line = bisect.bisect_right(self.line_starts, index) - 1
        return Position(line + 1, index - self.line_starts[line] + 1)

    def peek(self, offset: int = 0) -> str:
        index = self.i + offset
        return self.text[index] if index < len(self.text) else ""

    def run(self) -> PositionMap:
        self.map.keys[()] = self.map.values[()] = Position(1, 1)
        while self.i < len(self.text):
            start = self.i
            self.skip_blank(newlines=True)
            if self.i >= len(self.text):
                break
            char = self.peek()
            if char == "[":
                self.header()
            elif char in _BARE or char in "\"'":
                self.key_value(self.table, inline=False)
            else:
                self.skip_line()
            if self.i == start:
                self.i += 1
        self.map.end = self.pos(len(self.text.rstrip()) if self.text.strip() else 0)
        return self.map

    def skip_blank(self, newlines: bool) -> None:
        while self.i < len(self.text):
            char = self.peek()
            if char in " \t\r" or (newlines and char == "\n"):
                self.i += 1
            elif char == "#":
                self.skip_line(keep_newline=not newlines)
            else:
                break

    def skip_line(self, keep_newline: bool = False) -> None:
        end = self.text.find("\n", self.i)
        if end < 0:
            self.i = len(self.text)
        else:
            self.i = end if keep_newline else end + 1

    def header(self) -> None:
        at = self.pos()
        array = self.peek(1) == "["
        self.i += 2 if array else 1
        self.skip_blank(newlines=False)
        keys = self.dotted_key()
        self.skip_blank(newlines=False)
        self.i += 2 if array else 1
        if not keys:
            self.skip_line()
            return
        self.table = self.resolve(keys, array)
        if not array and self.table in self.headers:
            self.map.duplicates.append((self.table, at))
        self.headers.add(self.table)
        self.map.keys.setdefault(self.table, at)
        self.map.values.setdefault(self.table, at)
        if array:
            self.map.keys.setdefault(self.table[:-1], at)
            self.map.values.setdefault(self.table[:-1], at)

    def resolve(self, keys: list[str], array: bool) -> Loc:
        """Turn a header's keys into a location, inserting the index of each array of tables."""
        loc: Loc = ()
        for n, key in enumerate(keys):
            loc = loc + (key,)
            last = n == len(keys) - 1
            if array and last:
                count = self.array_counts.get(loc, 0)
                self.array_counts[loc] = count + 1
                loc = loc + (count,)
            elif loc in self.array_counts:
                loc = loc + (self.array_counts[loc] - 1,)
        return loc

    def dotted_key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            key = self.simple_key()
            if key is None:
                return keys
            keys.append(key)
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return keys
            self.i += 1

    def simple_key(self) -> str | None:
        char = self.peek()
        if char in "\"'":
            start = self.i
            self.string()
            raw = self.text[start : self.i]
            try:
                return str(tomllib.loads(f"k = {raw}")["k"])
            except tomllib.TOMLDecodeError:
                return raw.strip("\"'")
        start = self.i
        while self.peek() and self.peek() in _BARE:
            self.i += 1
        return self.text[start : self.i] if self.i > start else None

    def key_value(self, prefix: Loc, inline: bool) -> None:
        key_at = self.pos()
        keys = self.dotted_key()
        self.skip_blank(newlines=False)
        if not keys or self.peek() != "=":
            if not inline:
                self.skip_line()
            return
        self.i += 1
        self.skip_blank(newlines=False)
        loc = prefix
        for key in keys[:-1]:
            loc = loc + (key,)
            self.map.keys.setdefault(loc, key_at)
            self.map.values.setdefault(loc, key_at)
        loc = loc + (keys[-1],)
        if loc in self.map.values:
            self.map.duplicates.append((loc, key_at))
        self.map.keys[loc] = key_at
        self.value(loc)
        if not inline:
            self.skip_blank(newlines=False)
            if self.peek() == "\n":
                self.i += 1

    def value(self, loc: Loc) -> None:
        self.map.values.setdefault(loc, self.pos())
        self.map.keys.setdefault(loc, self.pos())
        char = self.peek()
        if char in "\"'":
            self.string()
        elif char == "[":
            self.array(loc)
        elif char == "{":
            self.inline_table(loc)
        else:
            while self.peek() and self.peek() not in ",]}#\n":
                self.i += 1
        self.map.ends.setdefault(loc, self.pos())

    def array(self, loc: Loc) -> None:
        self.i += 1
        index = 0
        while self.i < len(self.text):
            self.skip_blank(newlines=True)
            char = self.peek()
            if char == "]":
                self.i += 1
                return
            if char == ",":
                self.i += 1
                continue
            if not char:
                return
            start = self.i
            self.value(loc + (index,))
            index += 1
            if self.i == start:
                self.i += 1

    def inline_table(self, loc: Loc) -> None:
        self.i += 1
        while self.i < len(self.text):
            self.skip_blank(newlines=True)
            char = self.peek()
            if char == "}":
                self.i += 1
                return
            if char == ",":
                self.i += 1
                continue
            if not char:
                return
            start = self.i
            self.key_value(loc, inline=True)
            if self.i == start:
                self.i += 1

    def string(self) -> None:
        quote = self.peek()
        if self.text.startswith(quote * 3, self.i):
            self.i += 3
            self.multiline_string(quote)
            return
        self.i += 1
        while self.i < len(self.text):
            char = self.peek()
            if char == "\\" and quote == '"':
                self.i += 2
            elif char == quote:
                self.i += 1
                return
            elif char == "\n":
                return
            else:
                self.i += 1

    def multiline_string(self, quote: str) -> None:
        while self.i < len(self.text):
            char = self.peek()
            if char == "\\" and quote == '"':
                self.i += 2
            elif self.text.startswith(quote * 3, self.i):
                # A closing delimiter may be preceded by one or two quotes that belong to the content.
                run = 3
                while run < 5 and self.peek(run) == quote:
                    run += 1
                self.i += run
                return
            else:
                self.i += 1
