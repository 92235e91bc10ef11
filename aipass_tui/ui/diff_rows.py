"""What the diff view shows, kept apart from the widget: documents, split rows, highlighted text.

A ``DiffDocument`` is one file of a pull request: its parsed patch, or a few message lines. The
message lines stand in for a binary file, a rename without changes or a file too large to load
at once. ``SplitRows`` pairs removed and added lines for the side-by-side layout.
``highlight`` turns one row into Rich text with syntax colours, and ``clean`` makes any content
safe to draw: tabs expanded, control and invisible format characters shown as visible marks.
This module imports Rich and Pygments but not Textual.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePosixPath

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.token import Number
from pygments.util import ClassNotFound
from rich.cells import cell_len
from rich.style import Style
from rich.syntax import ANSI_DARK, ANSISyntaxTheme, Syntax, SyntaxTheme, TokenType
from rich.text import Text

from aipass_tui.core.diff import LARGE_FILE_LINES, DiffLine, Patch, display

TAB_SIZE = 4
MAX_DISPLAY_CHARS = 2000
"""Characters of one line that are drawn; the rest is replaced by a count."""
MAX_HIGHLIGHT_CHARS = 1000
"""Lines longer than this are drawn without syntax colours (tokenising them is slow)."""

LETTERS = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R", "copied": "C", "type_changed": "T"}

# Characters that would move the cursor, change the measured width or hide text: C0 and C1
# controls, DEL, and invisible format characters (bidirectional overrides, zero-width spaces).
_SPECIAL = re.compile(
    "[\t\x00-\x1f\x7f-\x9f\u00ad\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb]"
)


@lru_cache(maxsize=1024)
def lexer_for(path: str) -> Lexer | None:
    """Return the Pygments lexer for a file name, or None for plain text and unknown types.

    The first lookup loads Pygments' lexer table (about 0.1 s), so call it off the UI thread.
    """
    name = PurePosixPath(path).name
    try:
        lexer = get_lexer_for_filename(name, stripnl=False, ensurenl=False, stripall=False)
    except ClassNotFound:
        return None
    return None if isinstance(lexer, TextLexer) else lexer


STANDARD_SYNTAX_COLORS = {
    "bright_blue": "#ff55ff",
    "bright_magenta": "#ff55ff",
    "bright_red": "#ff5555",
    "red": "#ff5555",
}
"""Colours of Rich's ``ansi_dark`` syntax theme replaced on terminals with 16 colours.

There keywords are bright blue (colour 12), and Textual's ANSI theme (8.2.8) turns bright magenta
(word operators such as ``in``), bright red (variables, constants) and red (errors) into dark
magenta (colour 5). Both colours are hard to read on black in many terminal palettes. The hex values are
the VGA bright magenta and red, which convert to colours 13 and 9.
"""
STANDARD_NUMBER_STYLE = Style(color="#ffff55")
"""Numbers, bright blue like keywords in ``ansi_dark``, take the VGA bright yellow (colour 11) to stay apart."""


def standard_syntax_styles() -> dict[TokenType, Style]:
    """Return Rich's ``ansi_dark`` token styles with the colours that are hard to read on black replaced."""
    styles: dict[TokenType, Style] = {}
    for token, style in ANSI_DARK.items():
        name = style.color.name if style.color is not None else None
        if name in STANDARD_SYNTAX_COLORS:
            style = style + Style(color=STANDARD_SYNTAX_COLORS[name])
        styles[token] = style
    styles[Number] = STANDARD_NUMBER_STYLE
    return styles


def syntax_theme(dark: bool, standard_colors: bool = False) -> SyntaxTheme:
    """Return the syntax theme of diff content: Rich's ANSI theme for a dark or light background.

    With ``standard_colors`` on a dark background, the colours that are hard to read on black are
    replaced (see ``standard_syntax_styles``). The light theme is returned unchanged.
    """
    if not dark:
        return Syntax.get_theme("ansi_light")
    if standard_colors:
        return ANSISyntaxTheme(standard_syntax_styles())
    return Syntax.get_theme("ansi_dark")


def _mark(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode control picture: ␀ … ␟, ␍ for a CR
    if code == 0x7F:
        return "␡"
    return f"<U+{code:04X}>"


def clean(value: str, column: int = 0) -> tuple[list[tuple[str, bool]], int]:
    """Split ``value`` into drawable pieces, starting at cell ``column``.

    Returns ``(pieces, column after)``; each piece is ``(text, is_mark)`` where a mark stands for
    a character that cannot be drawn as it is. Tabs become spaces up to the next tab stop.
    """
    if not _SPECIAL.search(value):
        return [(value, False)], column + cell_len(value)
    pieces: list[tuple[str, bool]] = []
    start = 0
    for match in _SPECIAL.finditer(value):
        before = value[start : match.start()]
        if before:
            pieces.append((before, False))
            column += cell_len(before)
        char = match.group()
        if char == "\t":
            spaces = TAB_SIZE - column % TAB_SIZE
            pieces.append((" " * spaces, False))
            column += spaces
        else:
            mark = _mark(char)
            pieces.append((mark, True))
            column += cell_len(mark)
        start = match.end()
    rest = value[start:]
    if rest:
        pieces.append((rest, False))
        column += cell_len(rest)
    return pieces, column


def highlight(content: str, lexer: Lexer | None, theme: SyntaxTheme | None, mark_style: Style) -> Text:
    """Return one line of content as Rich text: syntax colours when a lexer is given, marks styled.

    NOTE: each row is tokenised on its own, so a line inside a multi-line string or comment is
    coloured as code. Lexing whole hunks would fix it, at a cost that grows with the hunk.
    """
    extra = ""
    if len(content) > MAX_DISPLAY_CHARS:
        extra = f" … {len(content) - MAX_DISPLAY_CHARS:,} more characters"
        content = content[:MAX_DISPLAY_CHARS]
    text = Text(no_wrap=True, end="")
    column = 0
    if lexer is not None and theme is not None and len(content) <= MAX_HIGHLIGHT_CHARS:
        tokens = [(theme.get_style_for_token(kind), value) for kind, value in lexer.get_tokens(content)]
    else:
        tokens = [(Style.null(), content)]
    for style, value in tokens:
        pieces, column = clean(value, column)
        for piece, is_mark in pieces:
            text.append(piece, mark_style if is_mark else style)
    if extra:
        text.append(extra, mark_style)
    return text


@dataclass(slots=True)
class SplitRows:
    """Side-by-side rows: ``left[k]`` and ``right[k]`` are patch row indices, or -1 for a blank side.

    A hunk header row has the same index on both sides; ``hunk_rows`` lists those split rows.
    """

    left: array = field(default_factory=lambda: array("i"))
    right: array = field(default_factory=lambda: array("i"))
    hunk_rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.left)

    @classmethod
    def build(cls, rows: Sequence[DiffLine]) -> "SplitRows":
        """Pair each run of removed lines with the added lines that follow it, line by line."""
        split = cls()
        removed: list[int] = []
        added: list[int] = []

        def flush() -> None:
            for k in range(max(len(removed), len(added))):
                split.left.append(removed[k] if k < len(removed) else -1)
                split.right.append(added[k] if k < len(added) else -1)
            removed.clear()
            added.clear()

        for index, row in enumerate(rows):
            kind = row.kind
            if kind == "removed":
                if added:
                    flush()
                removed.append(index)
            elif kind == "added":
                added.append(index)
            elif kind == "no_newline" and (removed or added):
                # git's marker belongs to the line just before it, on that line's side.
                (added if added else removed).append(index)
            else:
                flush()
                if kind == "hunk":
                    split.hunk_rows.append(len(split.left))
                split.left.append(index)
                split.right.append(index)
        flush()
        return split


@dataclass(frozen=True, slots=True)
class CommentTarget:
    """Anchor of a new review comment: a line on one side, a hunk, or the whole file."""

    path: str
    line: int | None = None
    side: str = "new"
    hunk: str | None = None
    preview: str = ""

    def describe(self) -> str:
        """Return a short label such as ``src/app.py:12``, ``src/app.py:7 (old side)`` or the hunk."""
        if self.line is not None:
            return f"{self.path}:{self.line}" + (" (old side)" if self.side == "old" else "")
        if self.hunk:
            return f"{self.path} {self.hunk}"
        return self.path


@dataclass
class DiffDocument:
    """One file as the diff view shows it: patch rows, or message lines when there are none."""

    path: str
    patch: Patch | None = None
    lines: list[str] = field(default_factory=list)
    """Message lines shown instead of rows (binary file, large file, rename without changes)."""
    lexer: Lexer | None = None
    split_rows: SplitRows | None = None
    """Built on first use of the side-by-side layout (or by the loader when it is already on)."""
    number_width: int = 1
    error: bool = False

    @property
    def has_rows(self) -> bool:
        return self.patch is not None and len(self.patch.rows) > 0

    def ensure_split(self) -> SplitRows:
        if self.split_rows is None:
            self.split_rows = SplitRows.build(self.patch.rows if self.patch is not None else [])
        return self.split_rows


def number_width(patch: Patch) -> int:
    """Return the digits of the largest line number in the patch (for the gutter)."""
    largest = 1
    for hunk in patch.hunks:
        largest = max(largest, hunk.old_start + hunk.old_len, hunk.new_start + hunk.new_len)
    return len(str(largest))


def file_notice(patch: Patch) -> list[str]:
    """Return the message lines for a file whose patch has no rows to show."""
    file = patch.file
    name = display(file.path)
    lines: list[str] = []
    if patch.summary_only:
        lines.append(
            f"{name}: {file.changed_lines:,} changed lines (+{file.additions:,} −{file.deletions:,}), "
            f"more than the {LARGE_FILE_LINES:,} shown at once."
        )
        lines.append("Press f to load the whole diff of this file.")
        return lines
    if file.binary:
        lines.append(f"Binary file {file.status}: git shows no text diff for it.")
    elif file.status == "renamed" and file.old_path is not None:
        similarity = f" ({file.similarity}% similar)" if file.similarity is not None else ""
        lines.append(f"Renamed from {display(file.old_path)}{similarity}; the content is unchanged.")
    elif file.status == "copied" and file.old_path is not None:
        lines.append(f"Copied from {display(file.old_path)}; the content is unchanged.")
    elif file.status == "added":
        lines.append("Empty file added.")
    elif file.status == "deleted":
        lines.append("Empty file deleted.")
    elif file.status == "type_changed":
        lines.append("The file type changed (for example a file replaced by a symbolic link).")
    elif not file.mode_change:
        lines.append("No line changes.")
    if file.mode_change:
        lines.append(f"Mode changed {file.mode_change}.")
    return lines


def row_target(path: str, rows: Sequence[DiffLine], index: int) -> CommentTarget:
    """Return the comment target of patch row ``index``: its line, or its hunk for a header row."""
    row = rows[index]
    if row.kind == "no_newline" and index > 0:
        row = rows[index - 1]
    if row.kind == "hunk":
        return CommentTarget(path, hunk=row.text, preview=row.text)
    if row.kind == "removed":
        return CommentTarget(path, line=row.old_no, side="old", preview=row.text)
    return CommentTarget(path, line=row.new_no, side="new", preview=row.text)
