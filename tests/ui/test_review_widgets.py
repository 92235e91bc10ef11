"""The diff view and file list on their own: split pairing, safe text, highlighting, virtual rendering."""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from textual.app import App, ComposeResult

from aipass_tui.core.diff import DiffLine, FileDiff, Patch, parse_patch
from aipass_tui.core.pulls import PullFile
from aipass_tui.ui.diff_rows import (
    MAX_DISPLAY_CHARS,
    DiffDocument,
    SplitRows,
    clean,
    file_notice,
    highlight,
    lexer_for,
    number_width,
)
from aipass_tui.ui.widgets.diff_view import DiffView
from aipass_tui.ui.widgets.file_list import FileList, cut_left, file_counts, file_label

PATCH = b"""diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1,4 +1,5 @@ import os
 import os
-x = 1
-y = 2
+x = 10
+y = 20
+z = 30
 print(x)
@@ -20,3 +21,2 @@ def main():
 a = 1
-b = 2
-c = 3
\\ No newline at end of file
+c = 4
\\ No newline at end of file
"""


def app_patch() -> Patch:
    return parse_patch(FileDiff("app.py", None, "modified", False, 4, 4), PATCH)


def test_split_pairs_removed_with_added() -> None:
    rows = app_patch().rows
    split = SplitRows.build(rows)
    pairs = [(split.left[k], split.right[k]) for k in range(len(split))]
    kinds = [(rows[l].kind if l >= 0 else None, rows[r].kind if r >= 0 else None) for l, r in pairs]
    assert kinds[:6] == [
        ("hunk", "hunk"),
        ("context", "context"),
        ("removed", "added"),
        ("removed", "added"),
        (None, "added"),
        ("context", "context"),
    ]
    assert split.hunk_rows == [0, 6]
    assert kinds[6:] == [("hunk", "hunk"), ("context", "context"), ("removed", "added"), ("removed", "no_newline"), ("no_newline", None)]


def test_clean_makes_text_safe() -> None:
    pieces, column = clean("a\tb", 0)
    assert "".join(text for text, _ in pieces) == "a   b"
    assert column == 5
    pieces, _ = clean("\tx", 2)
    assert pieces[0] == ("  ", False)
    pieces, _ = clean("ok\x1b[31mred\r", 0)
    assert "".join(text for text, _ in pieces) == "ok␛[31mred␍"
    assert [text for text, mark in pieces if mark] == ["␛", "␍"]
    pieces, _ = clean("admin\u202e; evil", 0)
    assert ("<U+202E>", True) in pieces


def test_highlight_colours_code_and_cuts_long_lines() -> None:
    from rich.syntax import Syntax

    theme = Syntax.get_theme("ansi_dark")
    lexer = lexer_for("src/app.py")
    assert lexer is not None
    assert lexer_for("notes.txt") is None
    assert lexer_for("data.unknown-extension") is None
    text = highlight("def main():  # start", lexer, theme, Style(reverse=True))
    assert text.plain == "def main():  # start"
    assert len({str(span.style) for span in text.spans}) > 2
    long = highlight("x" * (MAX_DISPLAY_CHARS + 50), lexer, theme, Style(reverse=True))
    assert long.plain.endswith(" … 50 more characters")
    assert not long.plain.startswith("x" * (MAX_DISPLAY_CHARS + 1))


def test_file_notices() -> None:
    def notice(status: str, **fields: object) -> list[str]:
        file = FileDiff(fields.pop("path", "f.bin"), fields.pop("old_path", None), status, fields.pop("binary", False), 0, 0, **fields)  # type: ignore[arg-type]
        return file_notice(Patch(file, summary_only=bool(fields.pop("summary", False))))

    assert notice("added", binary=True) == ["Binary file added: git shows no text diff for it."]
    assert notice("renamed", old_path="old.md", similarity=100) == ["Renamed from old.md (100% similar); the content is unchanged."]
    assert notice("modified", old_mode="100644", new_mode="100755") == ["Mode changed 100644 -> 100755."]
    assert notice("added") == ["Empty file added."]
    big = FileDiff("big.txt", None, "added", False, 25_000, 0)
    assert "Press f" in file_notice(Patch(big, summary_only=True))[1]


def test_file_list_labels() -> None:
    renamed = PullFile(path="docs/new name.md", old_path="docs/old.md", status="renamed")
    assert file_label(renamed) == "docs/old.md → docs/new name.md"
    assert file_counts(PullFile(path="a.png", status="added", binary=True)) == "bin"
    assert file_counts(PullFile(path="run.sh", status="modified", additions=1, deletions=2, mode_change="100644 -> 100755")) == "+1 −2 mode"
    assert file_counts(PullFile(path="run.sh", status="modified", mode_change="100644 -> 100755")) == "mode"
    assert cut_left("src/very/deep/module.py", 12) == "…p/module.py"
    assert cut_left("short.py", 12) == "short.py"


class CountingRows(Sequence[DiffLine]):
    """Rows made on access, counting every access, as the core's rows are built on access."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.reads: list[int] = []

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.count))]
        if not 0 <= index < self.count:
            raise IndexError(index)
        self.reads.append(index)
        if index == 0:
            return DiffLine("hunk", None, None, f"@@ -0,0 +1,{self.count - 1} @@")
        return DiffLine("added", None, index, f"value_{index} = {index}  # generated")


class DiffHost(App[None]):
    def compose(self) -> ComposeResult:
        yield DiffView()
        yield FileList()


async def test_diff_view_draws_only_visible_rows() -> None:
    rows = CountingRows(20_001)
    patch = Patch(FileDiff("gen.py", None, "added", False, 20_000, 0), rows)  # type: ignore[arg-type]
    document = DiffDocument("gen.py", patch=patch, lexer=lexer_for("gen.py"), number_width=5)
    app = DiffHost()
    async with app.run_test(size=(100, 20)) as pilot:
        view = app.query_one(DiffView)
        view.show(document)
        await pilot.pause()
        view.move_cursor(10_000, center=True)
        await pilot.pause()
        rows.reads.clear()
        height = view.scrollable_content_region.height
        strips = [view.render_line(y) for y in range(height)]
        read = set(rows.reads)
        assert len(read) <= height + 2
        assert all(9_000 < index < 11_000 for index in read)
        assert any("value_10000 = 10000" in strip.text for strip in strips)
        rows.reads.clear()
        [view.render_line(y) for y in range(height)]
        assert len(set(rows.reads)) <= height + 2


async def test_diff_view_cursor_hunks_split_and_comments() -> None:
    patch = app_patch()
    document = DiffDocument("app.py", patch=patch, lexer=lexer_for("app.py"), number_width=number_width(patch))
    app = DiffHost()
    async with app.run_test(size=(120, 20)) as pilot:
        view = app.query_one(DiffView)
        view.show(document)
        await pilot.pause()
        assert view.hunk_rows() == [0, 8]
        assert view.next_hunk()
        assert view.cursor == 8
        assert not view.next_hunk()
        assert view.previous_hunk()
        assert view.cursor == 0
        view.move_cursor(5)
        assert (view.target().line, view.target().side, view.target().preview) == (3, "new", "y = 20")
        view.move_cursor(2)
        assert (view.target().line, view.target().side) == (2, "old")
        assert view.hunk_target().hunk == "@@ -1,4 +1,5 @@ import os"
        line = view.render_line(2).text
        assert line.split()[0] == "2"
        assert "- x = 1" in line

        view.set_comments({("old", 2)}, set())
        assert "●" in view.render_line(2).text
        assert "●" not in view.render_line(3).text

        view.move_cursor(6)
        view.set_split(True)
        assert view.split
        assert view.patch_row(view.cursor) == 6
        split_line = view.render_line(view.cursor - view.scroll_offset.y).text
        assert "│" in split_line
        assert "+ z = 30" in split_line
        view.set_split(False)
        assert view.cursor == 6


async def test_diff_view_hides_escape_sequences() -> None:
    hostile = b"@@ -0,0 +1,2 @@\n+\x1b[2J\x1b]0;title\x07cleared\n+tab\there\r\n"
    patch = parse_patch(FileDiff("x.txt", None, "added", False, 2, 0), hostile)
    app = DiffHost()
    async with app.run_test(size=(80, 10)) as pilot:
        view = app.query_one(DiffView)
        view.show(DiffDocument("x.txt", patch=patch, number_width=1))
        await pilot.pause()
        for y in range(3):
            drawn = view.render_line(y).text
            assert "\x1b" not in drawn
            assert "\x07" not in drawn
            assert "\r" not in drawn
        assert "␛[2J␛]0;title␇cleared" in view.render_line(1).text
        assert "tab here␍" in view.render_line(2).text


async def test_file_list_cursor_and_marks() -> None:
    files = [PullFile(path=f"src/file_{n}.py", status="modified", additions=n, deletions=1) for n in range(50)]
    app = DiffHost()
    async with app.run_test(size=(80, 12)) as pilot:
        listing = app.query_one(FileList)
        listing.set_files(files, {"src/file_0.py"}, {"src/file_1.py"})
        await pilot.pause()
        assert listing.render_line(0).text.startswith("✓ M src/file_0.py")
        assert listing.render_line(1).text.startswith(" !M src/file_1.py")
        listing.focus()
        await pilot.press("end")
        assert listing.selected.path == "src/file_49.py"
        assert listing.scroll_offset.y > 0
        listing.set_files(files[::-1], set(), set(), keep="src/file_10.py")
        assert listing.selected.path == "src/file_10.py"
