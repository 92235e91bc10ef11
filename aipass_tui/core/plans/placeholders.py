"""Placeholders left in a plan: the ``<...>`` texts of a template that the user must replace.

A plan that still contains one would send the agents the template's instructions instead of the
user's, so validation reports each of them. Prompts often contain code, so a ``<...>`` text
counts as a placeholder only by one of these rules, and ``List<T>``, ``a < b > c`` or
``<div>`` in a prompt are not taken for one:

1. The whole value, without surrounding whitespace, is one ``<...>``: ``title = "<the title>"``.
2. The value contains the text of a placeholder found in a plan template (the repository's
   ``.aipass/plans/templates/`` and the shipped ones), compared with whitespace runs as one
   space. A placeholder of several words matches anywhere. A single word such as
   ``<test_file>`` is also an HTML or XML tag, so it matches only next to a ``/``, as in
   ``tests/<test_file>.py``.
3. A glob contains any ``<...>``, because file names with angle brackets do not occur in practice.
"""

from __future__ import annotations

import functools
import logging
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from aipass_tui.core.plans.template_sources import template_dirs
from aipass_tui.core.store import Paths

log = logging.getLogger(__name__)

ANGLE_TEXT = re.compile(r"<[^<>]+>")
SHOWN_LENGTH = 48
"""Characters of a long placeholder shown in a message. The line and column of the problem locate the rest."""


@dataclass(frozen=True)
class Placeholder:
    """A placeholder found in a value: its text as written and where it starts in the value."""

    text: str
    offset: int

    @property
    def shown(self) -> str:
        """The placeholder on one line, cut at a word boundary when it is long."""
        text = normalize(self.text)
        if len(text) <= SHOWN_LENGTH:
            return text
        cut = text.rfind(" ", 0, SHOWN_LENGTH)
        return text[: cut if cut > 0 else SHOWN_LENGTH].rstrip(" ,.:;") + "…>"


def normalize(text: str) -> str:
    """Return ``text`` with every whitespace run made one space."""
    return " ".join(text.split())


def find_placeholders(value: str, known: frozenset[str], *, glob: bool = False) -> list[Placeholder]:
    """Return the placeholders in one string value of a plan, in order (``glob``: the value is a glob)."""
    spans = list(ANGLE_TEXT.finditer(value))
    if glob:
        return [Placeholder(match.group(), match.start()) for match in spans]
    if len(spans) == 1 and spans[0].group() == value.strip():
        return [Placeholder(spans[0].group(), spans[0].start())]
    return [Placeholder(match.group(), match.start()) for match in spans if _is_known(value, match, known)]


def _is_known(value: str, match: re.Match[str], known: frozenset[str]) -> bool:
    text = normalize(match.group())
    if text not in known:
        return False
    if " " in text:
        return True
    before = value[match.start() - 1] if match.start() > 0 else ""
    after = value[match.end()] if match.end() < len(value) else ""
    return "/" in (before, after)


def known_placeholders(repo: Path | None) -> frozenset[str]:
    """Return the placeholders of every template file, normalized (see ``normalize``)."""
    found: set[str] = set()
    for _, folder in template_dirs(Paths(repo) if repo is not None else None):
        if not folder.is_dir():
            continue
        for path in folder.glob("*.toml"):
            try:
                stat = path.stat()
            except OSError:
                continue
            found |= _template_placeholders(str(path), stat.st_mtime_ns, stat.st_size)
    return frozenset(found)


@functools.lru_cache(maxsize=128)
def _template_placeholders(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    # Cached by modification time and size, because validation runs after each pause in typing.
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read plan template %s to learn its placeholders: %s", path, exc)
        return frozenset()
    try:
        strings = list(_strings(tomllib.loads(text)))
    except tomllib.TOMLDecodeError as exc:
        # A template that is not valid TOML as written still teaches its <...> texts.
        log.warning("plan template %s is not valid TOML (%s): taking placeholders from its whole text", path, exc)
        strings = [text]
    return frozenset(normalize(match.group()) for string in strings for match in ANGLE_TEXT.finditer(string))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def locate(source: str, start: int, end: int, placeholders: list[Placeholder]) -> list[int | None]:
    """Return where each placeholder is written in ``source[start:end]``, the raw text of its value.

    The raw text may differ from the value by escapes and line breaks, so each placeholder is
    searched with any whitespace run matching any other, in order. A placeholder written with
    escapes is not found, and its entry is None.
    """
    offsets: list[int | None] = []
    cursor = start
    for placeholder in placeholders:
        pattern = r"\s+".join(re.escape(word) for word in placeholder.text.split())
        match = re.compile(pattern).search(source, cursor, end)
        if match is None:
            offsets.append(None)
            continue
        offsets.append(match.start())
        cursor = match.end()
    return offsets
