"""Parsed diffs on real repositories: every kind of path and content git can produce."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aipass_tui.core.diff import DiffError, PullDiff, list_files, load_patch, parse_raw_numstat

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]


@pytest.fixture(autouse=True)
def no_user_git_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *IDENTITY, *args], cwd=repo, capture_output=True, check=True)
    return proc.stdout.decode().strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def write(repo: Path, name: str, data: bytes) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "core.autocrlf", "false")
    return root


def by_path(files: list) -> dict:
    return {f.path: f for f in files}


def test_names_with_special_characters(repo: Path) -> None:
    names = [
        "dir with space/a b.txt",
        "naïve/日本語.txt",
        'q"uote\\back.txt',
        "tab\there.txt",
        "new\nline.txt",
        "-starts-with-dash.txt",
        ":(glob)*.txt",
    ]
    for name in names:
        write(repo, name, b"one\ntwo\n")
    base = commit_all(repo, "base")
    for name in names:
        write(repo, name, b"one\n2\n")
    head = commit_all(repo, "head")

    files = by_path(list_files(repo, base, head))

    assert sorted(files) == sorted(names)
    for name in names:
        entry = files[name]
        assert entry.status == "modified"
        assert (entry.additions, entry.deletions) == (1, 1)
        patch = load_patch(repo, base, head, entry)
        kinds = [row.kind for row in patch.rows]
        assert kinds == ["hunk", "context", "removed", "added"], name
        assert patch.rows[3].text == "2"


def test_binary_added_and_modified(repo: Path) -> None:
    write(repo, "img.bin", b"\x00\x01\x02")
    base = commit_all(repo, "base")
    write(repo, "img.bin", b"\x00\x01\x03\x04")
    write(repo, "new.bin", b"\x89PNG\x00\x00")
    head = commit_all(repo, "head")

    files = by_path(list_files(repo, base, head))

    assert files["img.bin"].binary
    assert files["img.bin"].status == "modified"
    assert files["new.bin"].binary
    assert files["new.bin"].status == "added"
    assert (files["new.bin"].additions, files["new.bin"].deletions) == (0, 0)
    assert load_patch(repo, base, head, files["img.bin"]).rows == []


def test_mode_only_change(repo: Path) -> None:
    write(repo, "run.sh", b"echo hi\n")
    base = commit_all(repo, "base")
    (repo / "run.sh").chmod(0o755)
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)

    assert entry.status == "modified"
    assert entry.mode_change == "100644 -> 100755"
    assert (entry.additions, entry.deletions) == (0, 0)
    assert load_patch(repo, base, head, entry).rows == []


def test_pure_rename_and_rename_with_edit(repo: Path) -> None:
    write(repo, "old name.txt", b"".join(b"line %d\n" % i for i in range(20)))
    write(repo, "moved.py", b"".join(b"x = %d\n" % i for i in range(20)))
    base = commit_all(repo, "base")
    git(repo, "mv", "old name.txt", "new näme.txt")
    (repo / "pkg").mkdir()
    git(repo, "mv", "moved.py", "pkg/moved.py")
    write(repo, "pkg/moved.py", b"".join(b"x = %d\n" % i for i in range(19)) + b"x = 99\n")
    head = commit_all(repo, "head")

    files = by_path(list_files(repo, base, head))

    pure = files["new näme.txt"]
    assert pure.status == "renamed"
    assert pure.old_path == "old name.txt"
    assert (pure.additions, pure.deletions) == (0, 0)
    assert load_patch(repo, base, head, pure).rows == []
    edited = files["pkg/moved.py"]
    assert edited.status == "renamed"
    assert edited.old_path == "moved.py"
    rows = load_patch(repo, base, head, edited).rows
    assert [r.text for r in rows if r.kind == "added"] == ["x = 99"]
    assert [r.old_no for r in rows if r.kind == "removed"] == [20]


def test_empty_new_file_and_deleted_file(repo: Path) -> None:
    write(repo, "gone.txt", b"a\nb\nc\n")
    base = commit_all(repo, "base")
    (repo / "gone.txt").unlink()
    write(repo, "empty", b"")
    head = commit_all(repo, "head")

    files = by_path(list_files(repo, base, head))

    assert files["empty"].status == "added"
    assert (files["empty"].additions, files["empty"].deletions) == (0, 0)
    assert not files["empty"].binary
    assert load_patch(repo, base, head, files["empty"]).rows == []
    gone = files["gone.txt"]
    assert gone.status == "deleted"
    assert gone.deletions == 3
    assert gone.blob == gone.old_blob
    rows = load_patch(repo, base, head, gone).rows
    assert [(r.kind, r.old_no, r.text) for r in rows[1:]] == [("removed", 1, "a"), ("removed", 2, "b"), ("removed", 3, "c")]


def test_no_final_newline(repo: Path) -> None:
    write(repo, "f.txt", b"a\nb")
    base = commit_all(repo, "base")
    write(repo, "f.txt", b"a\nb\nc")
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)
    rows = load_patch(repo, base, head, entry).rows

    assert [r.kind for r in rows] == ["hunk", "context", "removed", "no_newline", "added", "added", "no_newline"]
    assert rows[-2].text == "c"
    assert rows[-2].new_no == 3


def test_crlf_lines_keep_their_bytes(repo: Path) -> None:
    write(repo, "win.txt", b"one\r\ntwo\r\n")
    base = commit_all(repo, "base")
    write(repo, "win.txt", b"one\r\nTWO\r\n")
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)
    rows = load_patch(repo, base, head, entry).rows

    added = [r for r in rows if r.kind == "added"]
    assert [r.data for r in added] == [b"TWO\r"]
    assert rows[1].data == b"one\r"


def test_non_utf8_content_keeps_bytes(repo: Path) -> None:
    write(repo, "latin1.txt", b"caf\xe9\n")
    base = commit_all(repo, "base")
    write(repo, "latin1.txt", b"caf\xe9 cr\xe8me\n")
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)
    rows = load_patch(repo, base, head, entry).rows

    added = [r for r in rows if r.kind == "added"][0]
    assert added.data == b"caf\xe9 cr\xe8me"
    assert added.text == "caf\ufffd cr\ufffdme"


def test_non_utf8_file_name(repo: Path) -> None:
    name = b"bad\xffname.txt"
    (repo / os.fsdecode(name)).write_bytes(b"x\n")
    base = commit_all(repo, "base")
    (repo / os.fsdecode(name)).write_bytes(b"y\n")
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)

    assert entry.path.encode("utf-8", "surrogateescape") == name
    assert entry.to_dict()["path"] == "bad\ufffdname.txt"
    rows = load_patch(repo, base, head, entry).rows
    assert [r.text for r in rows if r.kind == "added"] == ["y"]
    assert PullDiff(repo, base, head).load_patch("bad\ufffdname.txt").rows[-1].text == "y"


def test_symlink_replacing_file(repo: Path) -> None:
    write(repo, "link", b"plain\n")
    base = commit_all(repo, "base")
    (repo / "link").unlink()
    (repo / "link").symlink_to("target")
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)

    assert entry.status == "type_changed"
    assert entry.new_mode == "120000"


def test_line_numbers_across_hunks(repo: Path) -> None:
    write(repo, "long.txt", b"".join(b"%d\n" % i for i in range(1, 101)))
    base = commit_all(repo, "base")
    lines = [b"%d\n" % i for i in range(1, 101)]
    lines[9] = b"ten\n"
    lines[79] = b"eighty\n"
    lines.insert(50, b"inserted\n")
    write(repo, "long.txt", b"".join(lines))
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)
    patch = load_patch(repo, base, head, entry)

    assert len(patch.hunks) == 3
    added = [(r.text, r.new_no) for r in patch.rows if r.kind == "added"]
    assert added == [("ten", 10), ("inserted", 51), ("eighty", 81)]
    removed = [(r.text, r.old_no) for r in patch.rows if r.kind == "removed"]
    assert removed == [("10", 10), ("80", 80)]
    assert patch.hunk_at(patch.hunks[2].row + 1) == 2
    assert patch.row_range(0, 2) == patch.rows[:2]


def test_large_file_returns_summary(repo: Path) -> None:
    write(repo, "big.txt", b"")
    base = commit_all(repo, "base")
    write(repo, "big.txt", b"".join(b"row %d\n" % i for i in range(300)))
    head = commit_all(repo, "head")

    [entry] = list_files(repo, base, head)
    summary = load_patch(repo, base, head, entry, threshold=100)
    full = load_patch(repo, base, head, entry, threshold=100, full=True)

    assert summary.summary_only
    assert summary.rows == []
    assert not full.summary_only
    assert len(full.rows) == 301


def test_pull_diff_unknown_path(repo: Path) -> None:
    write(repo, "a.txt", b"a\n")
    base = commit_all(repo, "base")
    write(repo, "a.txt", b"b\n")
    head = commit_all(repo, "head")
    diff = PullDiff(repo, base, head)

    with pytest.raises(KeyError, match="nope.txt did not change"):
        diff.load_patch("nope.txt")
    assert diff.load_patch("a.txt").rows[-1].text == "b"
    assert b"+b" in diff.patch_bytes()


def test_unknown_commit_is_reported(repo: Path) -> None:
    write(repo, "a.txt", b"a\n")
    head = commit_all(repo, "base")

    with pytest.raises(DiffError, match="0123456789abcdef"):
        list_files(repo, "0123456789abcdef", head)


def test_counts_mismatch_is_reported() -> None:
    raw = b":100644 100644 " + b"1" * 40 + b" " + b"2" * 40 + b" M\0a\0"
    with pytest.raises(DiffError, match="counted lines for 0"):
        parse_raw_numstat(raw)
