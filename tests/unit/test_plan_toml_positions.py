"""Positions of keys and values in TOML text, used to point at the field of each plan problem."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aipass_tui.core.plans.toml_positions import Position, scan

TEXT = '''# a comment
title = "Plan"  # trailing comment
success_criteria = [
  "one",  # first
  'two',
]

[[phases]]
name = "Build"

[[phases.tasks]]
id = "api"
prompt = """
line with "quotes" and ""two""
"""
files = ["src/**", 'docs/*.md']
meta.owner = { name = "x", tags = ["a", { k = 1 }] }

[[phases.tasks]]
"id" = "ui"

[[phases]]
name = "Docs"
tasks = [{ id = "d", files = ["docs/**"] }]
'''


def test_keys_and_values() -> None:
    found = scan(TEXT)
    assert found.key(("title",)) == Position(2, 1)
    assert found.value(("title",)) == Position(2, 9)
    assert found.value(("success_criteria", 1)) == Position(5, 3)
    assert found.value(("phases", 0, "name")) == Position(9, 8)


def test_arrays_of_tables() -> None:
    found = scan(TEXT)
    assert found.key(("phases", 0, "tasks", 0)) == Position(11, 1)
    assert found.value(("phases", 0, "tasks", 1, "id")) == Position(20, 8)
    assert found.key(("phases", 1)) == Position(22, 1)


def test_multiline_string_is_skipped() -> None:
    found = scan(TEXT)
    assert found.value(("phases", 0, "tasks", 0, "prompt")) == Position(13, 10)
    assert found.value(("phases", 0, "tasks", 0, "files", 1)) == Position(16, 20)


def test_inline_tables_and_dotted_keys() -> None:
    found = scan(TEXT)
    assert found.value(("phases", 0, "tasks", 0, "meta", "owner", "tags", 1, "k")) == Position(17, 47)
    assert found.value(("phases", 1, "tasks", 0, "files", 0)) == Position(24, 31)


def test_unknown_location_uses_enclosing_table() -> None:
    found = scan(TEXT)
    assert found.key(("phases", 0, "tasks", 1, "prompt")) == Position(19, 1)
    assert found.key(("missing",)) == Position(1, 1)


def test_duplicate_keys_are_recorded() -> None:
    found = scan('a = 1\n[t]\nb = 2\nb = 3\n[t]\n')
    assert found.duplicates == [(("t", "b"), Position(4, 1)), (("t",), Position(5, 1))]


def test_broken_text_does_not_raise() -> None:
    found = scan('a = [1, \n[[x]\nb = "unterminated\n{')
    assert found.key(("a",)) == Position(1, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]{}"\'=.,#\n \\abc1')), max_size=80))
def test_scan_never_raises(text: str) -> None:
    found = scan(text)
    assert found.end.line >= 1
