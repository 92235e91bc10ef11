"""Plan templates and plan numbering: ``plan new TEMPLATE TITLE`` writes ``<PREFIX>-<NNNN>_<slug>.toml``.

Templates are TOML files found, first match wins, in the repository's
``.aipass/plans/templates/``, in the installed package (``aipass_tui/plan_templates/``, the
project's ``plans/`` folder shipped in the wheel), and in ``plans/`` of a source checkout. A
template's name is its file stem. Its plans are numbered under the stem in capitals, without
anything but letters and digits (``bugfix.toml`` makes ``BUGFIX-0001``).

Variables filled in when a plan is written: ``{title}`` (escaped for a double-quoted TOML
string, so put it only inside one), ``{date}`` (YYYY-MM-DD), ``{number}`` (``0007``), ``{id}``
(``FPLAN-0007``), ``{agent}`` and ``{agent2}`` (the first and second configured agents).
The ``<...>`` texts of a template are placeholders for the user to replace: validation reports
each one still in a plan (see ``placeholders``), so a new plan has problems until the user replaces them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.model import PLAN_FILE_RE
from aipass_tui.core.plans.template_sources import template_dirs
from aipass_tui.core.plans.validation import Problem, validate
from aipass_tui.core.store import CorruptStateError, Paths, read_json, write_json

# Written into a plan when no agent is configured yet, so validation names the missing agent.
NO_AGENT = "AGENT-NAME"


@dataclass(frozen=True)
class Template:
    """A plan template file and where it was found."""

    name: str
    path: Path
    source: str

    @property
    def prefix(self) -> str:
        return template_prefix(self.name)


def template_prefix(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper())


def list_templates(paths: Paths) -> dict[str, Template]:
    """Return the available templates by lower-case name. A repository template hides a shipped one."""
    found: dict[str, Template] = {}
    for source, folder in template_dirs(paths):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            key = path.stem.lower()
            if key not in found and template_prefix(path.stem)[:1].isalpha():
                found[key] = Template(path.stem, path, source)
    return found


def find_template(paths: Paths, name: str) -> Template:
    """Return the template called ``name`` (case-insensitive). Raise PlanError listing the others."""
    templates = list_templates(paths)
    template = templates.get(name.lower())
    if template is None:
        names = ", ".join(t.name for t in templates.values()) or "(none found)"
        raise PlanError(
            f"unknown plan template {name!r}: use one of {names}, or add {name}.toml to {paths.plans / 'templates'}"
        )
    return template


def slugify(title: str) -> str:
    """Return a file-name slug of a title: ``Add a login form!`` gives ``add-a-login-form``."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:40].rstrip("-") or "plan"


def toml_escape(text: str) -> str:
    """Escape text for the inside of a double-quoted TOML string."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)


def render(text: str, *, title: str, plan_id: str, number: int, agents: list[str], date: str | None = None) -> str:
    """Fill a template's variables, leaving other braces (TOML inline tables) alone."""
    first = agents[0] if agents else NO_AGENT
    second = agents[1] if len(agents) > 1 else first
    values = {
        "{title}": toml_escape(title),
        "{date}": date or datetime.fromtimestamp(clock.now()).strftime("%Y-%m-%d"),
        "{number}": f"{number:04d}",
        "{id}": plan_id,
        "{agent}": first,
        "{agent2}": second,
    }
    return re.sub(r"\{(title|date|number|id|agent2|agent)\}", lambda m: values[m.group(0)], text)


def check_title(title: str) -> str:
    """Return the stripped title. Raise PlanError when it is empty, multi-line or too long."""
    stripped = title.strip()
    if not stripped:
        raise PlanError("empty plan title: give the plan a title, for example 'Add a login form'")
    if "\n" in stripped or "\r" in stripped:
        raise PlanError("invalid plan title: write it on one line")
    if len(stripped) > 200:
        raise PlanError(f"plan title is {len(stripped)} characters long: keep it under 200 and put details in the goal")
    return stripped


# Numbering


def counters_path(paths: Paths) -> Path:
    return paths.plan_state / "counters.json"


@contextlib.contextmanager
def _counter_lock(paths: Paths) -> Iterator[None]:
    # A blocking flock: two `plan new` at once wait for each other rather than share a number.
    paths.plan_state.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.plan_state / "counters.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def highest_number(paths: Paths, prefix: str) -> int:
    """Return the highest number used by a plan file or a plan's execution state for ``prefix``."""
    highest = 0
    candidates = list(paths.plans.glob("*.toml")) + list(paths.plan_state.glob("*.json"))
    for path in candidates:
        match = PLAN_FILE_RE.match(path.stem)
        if match and match["prefix"] == prefix:
            highest = max(highest, int(match["number"]))
    return highest


def allocate_number(paths: Paths, prefix: str) -> int:
    """Reserve the next number for ``prefix``: above every number used before, even by deleted plans."""
    with _counter_lock(paths):
        path = counters_path(paths)
        try:
            data = read_json(path) or {}
        except CorruptStateError as exc:
            raise PlanError(
                f"{exc}. Run the command again: numbering then continues from the existing plan files", 1
            ) from exc
        counters = data.get("counters", {}) if isinstance(data, dict) else {}
        number = max(int(counters.get(prefix, 0)), highest_number(paths, prefix)) + 1
        counters[prefix] = number
        write_json(path, {"counters": counters})
        return number


@dataclass
class NewPlan:
    """A plan written by ``create_plan``, with the problems validation still finds in it."""

    plan_id: str
    path: Path
    template: Template
    problems: list[Problem]


def create_plan(
    paths: Paths,
    settings: Settings,
    template_name: str,
    title: str,
    *,
    date: str | None = None,
    before_write: Callable[[Path], None] | None = None,
) -> NewPlan:
    """Write a new plan from a template into ``.aipass/plans/`` and validate it.

    ``before_write(path)`` is called with the new plan's path just before the file is written.
    The cockpit passes the file watcher's ``suppress`` there, so its own new plan is not reported
    as a change made on disk by another program.
    """
    template = find_template(paths, template_name)
    title = check_title(title)
    try:
        text = template.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read template {template.path}: {exc}", 1) from exc

    paths.ensure()
    number = allocate_number(paths, template.prefix)
    plan_id = f"{template.prefix}-{number:04d}"
    path = paths.plans / f"{plan_id}_{slugify(title)}.toml"
    rendered = render(text, title=title, plan_id=plan_id, number=number, agents=list(settings.agents), date=date)
    if before_write is not None:
        before_write(path)
    _write_new(path, rendered)
    return NewPlan(plan_id, path, template, validate(path, settings, paths.repo))


def _write_new(path: Path, text: str) -> None:
    # Write a temp file, then hard-link it to the final name: the plan appears whole, and an
    # existing file of that name is never overwritten.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise PlanError(f"{path} already exists: remove it or pick another title", 1) from None
    finally:
        os.unlink(tmp)
