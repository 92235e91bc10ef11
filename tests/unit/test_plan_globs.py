"""Plan task globs: parsing, matching and the overlap decision between two globs."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aipass_tui.core.plans.globs import GlobError, matches, overlap_example, parse


@pytest.mark.parametrize(
    ("glob", "path", "expected"),
    [
        ("src/**", "src/a.py", True),
        ("src/**", "src/x/y/z.py", True),
        ("src/**", "src", False),
        ("src/", "src/x/y.py", True),
        ("src/*.py", "src/a.py", True),
        ("src/*.py", "src/x/a.py", False),
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/guide/a.md", True),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/c", False),
        ("src/a?.py", "src/ab.py", True),
        ("src/a?.py", "src/a.py", False),
        ("[!a]*", "b.txt", True),
        ("[!a]*", "a.txt", False),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("./src/a.py", "src/a.py", True),
        ("src//a.py", "src/a.py", True),
        ("src/**.py", "src/a.py", True),
        ("src/**.py", "src/x/a.py", False),
        ("Src/a.py", "src/a.py", False),
        ("**", "anything/at/all", True),
        ("file with space.txt", "file with space.txt", True),
    ],
)
def test_matches(glob: str, path: str, expected: bool) -> None:
    assert matches(glob, path) is expected


@pytest.mark.parametrize(
    ("glob", "message"),
    [
        ("", "empty glob: write a path relative to the repository root, for example 'src/**'"),
        ("/etc/passwd", "glob '/etc/passwd' is absolute: write it relative to the repository root, for example 'etc/passwd'"),
        ("~/notes.md", "glob '~/notes.md' is absolute: write it relative to the repository root, for example 'notes.md'"),
        ("C:/src/x", "glob 'C:/src/x' is absolute: write it relative to the repository root, for example 'src/x'"),
        ("../other/x", "glob '../other/x' leaves the repository through '..': write the path from the repository root without '..'"),
        ("src/../../x", "glob 'src/../../x' leaves the repository through '..': write the path from the repository root without '..'"),
        ("src/[ab.py", "glob 'src/[ab.py' has a '[' without its closing ']': close the class, or write '[[]' for a literal '['"),
        ("[z-a]", "glob '[z-a]' has the reversed range 'z-a': write 'a-z'"),
        (" src/**", "glob ' src/**' starts or ends with spaces: remove them"),
        (".", "glob '.' names the repository root itself: write '**' to mean every file"),
    ],
)
def test_invalid_globs(glob: str, message: str) -> None:
    with pytest.raises(GlobError) as caught:
        parse(glob)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("first", "second", "example"),
    [
        ("src/**", "src/a.py", "src/a.py"),
        ("src/a.py", "src/**", "src/a.py"),
        ("**/*.md", "docs/*.md", "docs/a.md"),
        ("a/**/b", "a/b", "a/b"),
        ("src/a?.py", "src/*b.py", "src/ab.py"),
        ("[a-c]*", "[c-e]*", "ca"),
        ("**", "**", "a"),
        ("src/", "src/x/y", "src/x/y"),
    ],
)
def test_overlapping_globs(first: str, second: str, example: str) -> None:
    assert overlap_example(first, second) == example


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("src/*.py", "src/x/*"),
        ("*.md", "docs/*.md"),
        ("a/*/b", "a/b"),
        ("src/**", "src"),
        ("src/**", "tests/**"),
        ("[!a]*", "a*"),
        ("src/*.py", "src/*.txt"),
        ("x/", "x"),
    ],
)
def test_disjoint_globs(first: str, second: str) -> None:
    assert overlap_example(first, second) is None


# A small universe of paths: every path of up to three components over a few names. Overlap is
# checked against brute force on it, so the automaton search is compared with plain matching.
NAMES = ["a", "b", "ab", ".x", "a.py", "b.md"]
UNIVERSE = ["/".join(parts) for n in (1, 2, 3) for parts in itertools.product(NAMES, repeat=n)]
GLOB_PARTS = ["a", "b", "*", "?", "**", "a*", "*.py", "[ab]", "[!a]*", ".x", "*b"]


@st.composite
def small_globs(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(GLOB_PARTS), min_size=1, max_size=3))
    return "/".join(parts)


@settings(max_examples=300, deadline=None)
@given(small_globs(), small_globs())
def test_overlap_agrees_with_brute_force(first: str, second: str) -> None:
    example = overlap_example(first, second)
    common = [path for path in UNIVERSE if matches(first, path) and matches(second, path)]
    if example is not None:
        assert matches(first, example), (first, example)
        assert matches(second, example), (second, example)
    if common:
        assert example is not None, (first, second, common[:3])
