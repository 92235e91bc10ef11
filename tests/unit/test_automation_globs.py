"""Glob matching and the folders a set of globs needs watched."""

from __future__ import annotations

from pathlib import Path

import pytest

from aipass_tui.core.watch import FileChange, GlobError, GlobSet, is_ignored_name, merge_changes, plan_globs
from aipass_tui.core.watch_paths import WatchEntry, plan_tree, static_prefix


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.md", "README.md", True),
        ("*.md", "docs/guide.md", False),
        ("**/*.md", "docs/guide.md", True),
        ("**/*.md", "README.md", True),
        ("src/**/*.py", "src/a.py", True),
        ("src/**/*.py", "src/pkg/sub/a.py", True),
        ("src/**/*.py", "srcx/a.py", False),
        ("src/*.py", "src/pkg/a.py", False),
        ("src/**", "src/pkg/a.py", True),
        ("src/", "src/pkg/a.py", True),
        ("src/auth", "src/auth/login.py", True),
        ("src/auth", "src/authz/login.py", False),
        ("docs/index.md", "docs/index.md", True),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file10.txt", False),
        ("[ab].txt", "a.txt", True),
        ("[!ab].txt", "a.txt", False),
        ("[!ab].txt", "c.txt", True),
        ("src/*/tests/*.py", "src/pkg/tests/t.py", True),
        ("src/*/tests/*.py", "src/pkg/x/tests/t.py", False),
        ("a+b(c).txt", "a+b(c).txt", True),
    ],
)
def test_glob_matching(pattern, path, expected):
    base = Path("/repo")
    assert GlobSet(base, [pattern]).matches(base / path) is expected


def test_glob_outside_base_never_matches():
    globs = GlobSet(Path("/repo"), ["**"])
    assert globs.matches(Path("/elsewhere/x")) is False
    assert globs.matches(Path("/repo")) is False


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty glob"),
        ("   ", "empty glob"),
        ("/etc/passwd", "is absolute"),
        ("../sibling/*.py", "leaves the repository"),
        ("src/../../x", "leaves the repository"),
    ],
)
def test_bad_globs_rejected(pattern, message):
    with pytest.raises(GlobError, match=message):
        GlobSet(Path("/repo"), [pattern])


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("src/*.py", (("src",), False, False)),
        ("src/**/*.py", (("src",), True, False)),
        ("*.md", ((), False, False)),
        ("**", ((), True, False)),
        ("docs/index.md", (("docs", "index.md"), False, True)),
        ("docs/", (("docs",), True, True)),
        ("src/*/tests/*.py", (("src",), True, False)),
    ],
)
def test_static_prefix(pattern, expected):
    assert static_prefix(pattern) == expected


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for folder in (".git/objects/ab", "src/pkg", "src/__pycache__", "docs/api", "node_modules/x", ".aipass/state"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def test_plan_only_prefixes(tree):
    plan = plan_globs(tree, ["docs/*.md", "src/**/*.py"])
    assert plan == [
        WatchEntry(tree / "docs", False),
        WatchEntry(tree / "src", False),
        WatchEntry(tree / "src" / "pkg", True),
    ]


def test_plan_root_glob_not_recursive(tree):
    assert plan_globs(tree, ["*.md"]) == [WatchEntry(tree, False)]


def test_plan_everything_skips_excluded(tree):
    plan = plan_globs(tree, ["**/*.py"])
    paths = {entry.path for entry in plan}
    assert WatchEntry(tree, False) in plan
    assert WatchEntry(tree / "docs", True) in plan
    assert not any(path.is_relative_to(tree / ".git") for path in paths)
    assert not any(path.is_relative_to(tree / "node_modules") for path in paths)
    assert not any(path.is_relative_to(tree / ".aipass") for path in paths)
    assert tree / "src" / "__pycache__" not in paths


def test_plan_explicit_excluded_prefix(tree):
    assert plan_globs(tree, [".aipass/state/*.json"]) == [WatchEntry(tree / ".aipass" / "state", False)]


def test_plan_literal_file_and_folder(tree):
    assert plan_globs(tree, ["docs/index.md"]) == [WatchEntry(tree / "docs", False)]
    assert plan_globs(tree, ["docs/api"]) == [WatchEntry(tree / "docs" / "api", True)]


def test_plan_missing_prefix_watches_ancestor(tree):
    assert plan_globs(tree, ["reports/2026/*.csv"]) == [WatchEntry(tree, False)]
    assert plan_globs(tree, ["docs/missing/*.md"]) == [WatchEntry(tree / "docs", False)]


def test_plan_merges_nested(tree):
    plan = plan_globs(tree, ["docs/**", "docs/api/*.md", "docs/*.md"])
    assert plan == [WatchEntry(tree / "docs", True)]


def test_plan_tree_skip_predicate(tree):
    plan = plan_tree(tree / "src", skip=lambda folder: folder.name == "pkg")
    assert plan == [WatchEntry(tree / "src", False)]


@pytest.mark.parametrize(
    "name",
    [".main.py.swp", ".main.py.swo", "main.py~", ".#main.py", "#main.py#", "4913", "5036", ".x.json.ab12cd_9.tmp", ".~lock.report.odt#", "a.kate-swp", ".goutputstream-XYZ12"],
)
def test_ignored_names(name):
    assert is_ignored_name(name)


@pytest.mark.parametrize("name", ["main.py", "4914", "2026", "notes.tmp", "x.json", "swp", ".env"])
def test_kept_names(name):
    assert not is_ignored_name(name)


def test_merge_changes_rules():
    path = Path("/r/a")
    created = FileChange(path, "created")
    modified = FileChange(path, "modified")
    deleted = FileChange(path, "deleted")
    arrived = FileChange(path, "modified", src_path=Path("/r/.a.tmp"))
    assert merge_changes(None, modified) == modified
    assert merge_changes(created, modified) == created
    assert merge_changes(created, deleted) is None
    assert merge_changes(deleted, created) == modified
    assert merge_changes(modified, deleted) == deleted
    assert merge_changes(modified, arrived) == arrived
    assert merge_changes(deleted, arrived) == arrived
