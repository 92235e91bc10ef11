"""Plan validation: every problem of a plan file at once, each with its line and column."""

from __future__ import annotations

import bisect
import logging
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from aipass_tui.config import Settings
from aipass_tui.core.plans import globs
from aipass_tui.core.plans.dependencies import find_cycles
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.messages import BLANK_HINTS, EXAMPLES, FIELDS, PLACEHOLDER_HINTS, describe, field_of, listing, owner
from aipass_tui.core.plans.model import TASK_ID_RE, Plan
from aipass_tui.core.plans.placeholders import find_placeholders, known_placeholders, locate
from aipass_tui.core.plans.toml_positions import Loc, Position, PositionMap, scan

log = logging.getLogger(__name__)

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")

@dataclass(frozen=True)
class Problem:
    """One problem of a plan file. ``loc`` is the path of the field, as in pydantic errors."""

    file: str
    line: int
    column: int
    message: str
    loc: Loc = ()

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PlanInvalid(PlanError):
    """Problems of a plan file, all of them in ``problems``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems), 2)


def label(loc: Loc) -> str:
    """Format a location as the TOML path a user reads: ``phases[1].tasks[0].agent``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def tracked_files(repo: Path | None) -> list[str]:
    """Return the files git tracks in ``repo``, or an empty list outside a git repository."""
    if repo is None:
        return []
    try:
        result = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("could not list the tracked files of %s: %s", repo, exc)
        return []
    if result.returncode != 0:
        return []
    return [name for name in result.stdout.decode("utf-8", "surrogateescape").split("\0") if name]


def validate(
    path_or_text: Path | str,
    settings: Settings,
    repo: Path | None,
    *,
    filename: str | None = None,
    tracked: list[str] | None = None,
) -> list[Problem]:
    """Return every problem of a plan, sorted by position.

    ``path_or_text`` is a Path to read, or the TOML text itself (named ``filename`` in the
    messages). ``tracked`` lists the repository's files, which give example paths of
    overlapping globs and tell folders from files. When it is None, ``git ls-files`` lists them.
    """
    return check(path_or_text, settings, repo, filename=filename, tracked=tracked)[1]


def check(
    path_or_text: Path | str,
    settings: Settings,
    repo: Path | None,
    *,
    filename: str | None = None,
    tracked: list[str] | None = None,
) -> tuple[Plan | None, list[Problem]]:
    """Validate a plan, and return the parsed plan and the problems.

    The plan is None when it has problems, except when every problem is a placeholder left
    from a template: such a plan can be read and shown, but ``load_plan`` still rejects it.
    """
    if isinstance(path_or_text, Path):
        name = filename or str(path_or_text)
        try:
            raw = path_or_text.read_bytes()
        except OSError as exc:
            return None, [Problem(name, 1, 1, f"cannot read the plan file: {exc.strerror or exc}")]
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            return None, [Problem(name, line, column, "invalid TOML: the file is not UTF-8 text: save it as UTF-8")]
    else:
        name = filename or "<plan>"
        text = path_or_text
    return _Checker(name, text, settings, repo, tracked).run()


def load_plan(path: Path, settings: Settings, repo: Path | None) -> Plan:
    """Read and validate a plan file. Raise PlanInvalid listing every problem."""
    plan, problems = check(path, settings, repo)
    if problems or plan is None:
        raise PlanInvalid(problems)
    return plan


class _Checker:
    def __init__(self, name: str, text: str, settings: Settings, repo: Path | None, tracked: list[str] | None) -> None:
        self.name = name
        self.text = text
        self.settings = settings
        self.repo = repo
        self.tracked = tracked
        self.problems: list[Problem] = []
        self.placeholder_count = 0
        self.positions = PositionMap()
        self.folders: set[str] | None = None
        self.line_starts: list[int] = []

    def run(self) -> tuple[Plan | None, list[Problem]]:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            return None, [self._syntax_problem(exc)]
        self.positions = scan(self.text)

        plan = self._check_schema(data)
        tasks = self._raw_tasks(data)
        self._check_text_fields(data)
        self._check_tasks(tasks)
        self._check_dependencies(tasks)
        self._check_overlaps(tasks)
        self._check_placeholders(data, tasks)

        self.problems.sort(key=lambda p: (p.line, p.column))
        readable = len(self.problems) == self.placeholder_count
        return (plan if readable else None), self.problems

    def add(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        position = self.positions.key(loc) if at_key else self.positions.value(loc)
        self.problems.append(Problem(self.name, position.line, position.column, message, tuple(loc)))

    # TOML syntax

    def _syntax_problem(self, exc: tomllib.TOMLDecodeError) -> Problem:
        message = str(exc)
        position = Position(1, 1)
        match = _TOML_POSITION.search(message)
        if match:
            position = Position(int(match.group(1)), int(match.group(2)))
            message = message[: match.start()]
        elif _TOML_END.search(message):
            message = _TOML_END.sub("", message)
            position = _end_position(self.text)
        if message.startswith(("Cannot overwrite a value", "Cannot declare")):
            duplicates = scan(self.text).duplicates
            if duplicates:
                loc, where = duplicates[0]
                return Problem(
                    self.name, where.line, where.column,
                    f"invalid TOML: {label(loc)} is defined twice: remove or rename one of them", loc,
                )
        return Problem(self.name, position.line, position.column, f"invalid TOML: {message}: fix the syntax at this position")

    # Schema: missing fields, unknown fields and wrong types, from pydantic

    def _check_schema(self, data: dict[str, Any]) -> Plan | None:
        try:
            return Plan.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                self._schema_problem(error)
            return None

    def _schema_problem(self, error: Any) -> None:
        loc: Loc = tuple(error["loc"])
        field = str(loc[-1]) if loc and isinstance(loc[-1], str) else None
        where = label(loc)
        kind = error["type"]
        if kind == "missing" and field:
            example = EXAMPLES.get(f"{owner(loc)}.{field}") or EXAMPLES.get(field, field)
            prefix = f"{label(loc[:-1])}: " if loc[:-1] else ""
            self.add(loc[:-1], f"{prefix}missing required field {field!r}: add {example}", at_key=True)
        elif kind == "extra_forbidden" and field:
            allowed = ", ".join(FIELDS[owner(loc)])
            self.add(loc, f"{where}: unknown field {field!r}: check its spelling (the fields of a {owner(loc)} are {allowed})", at_key=True)
        else:
            message = error["msg"]
            message = message[0].lower() + message[1:]
            fix = EXAMPLES.get(f"{owner(loc)}.{field_of(loc)}") or EXAMPLES.get(field_of(loc))
            got = describe(error.get("input"))
            self.add(loc, f"{where}: {message}, got {got}" + (f": write {fix}" if fix else ""))

    # Lenient view of the raw data, so later checks run even where the schema check failed

    def _raw_tasks(self, data: dict[str, Any]) -> list[_RawTask]:
        tasks: list[_RawTask] = []
        phases = data.get("phases")
        if not isinstance(phases, list):
            return tasks
        if not phases:
            self.add(("phases",), "phases: the plan has no phases: add " + EXAMPLES["phases"])
        for p_index, phase in enumerate(phases):
            if not isinstance(phase, dict):
                continue
            phase_name = phase.get("name") if isinstance(phase.get("name"), str) else f"#{p_index + 1}"
            raw_tasks = phase.get("tasks")
            if isinstance(raw_tasks, list) and not raw_tasks:
                self.add(("phases", p_index, "tasks"), f"{label(('phases', p_index, 'tasks'))}: phase {phase_name!r} has no tasks: add a [[phases.tasks]] table below it or remove the phase")
            if not isinstance(raw_tasks, list):
                continue
            for t_index, task in enumerate(raw_tasks):
                if isinstance(task, dict):
                    tasks.append(_RawTask(p_index, phase_name, t_index, task))
        return tasks

    def _check_text_fields(self, data: dict[str, Any]) -> None:
        for field in ("title", "goal"):
            self._check_blank(data, (), field)
        phases = data.get("phases") if isinstance(data.get("phases"), list) else []
        for p_index, phase in enumerate(phases):
            if isinstance(phase, dict):
                for field in ("name", "goal"):
                    self._check_blank(phase, ("phases", p_index), field)

    def _check_blank(self, table: dict[str, Any], base: Loc, field: str) -> None:
        value = table.get(field)
        if isinstance(value, str) and not value.strip():
            loc = base + (field,)
            self.add(loc, f"{label(loc)}: empty {field}: {BLANK_HINTS[field]}")

    # Tasks: ids, agents, text, globs, checks

    def _check_tasks(self, tasks: list[_RawTask]) -> None:
        seen: dict[str, _RawTask] = {}
        for task in tasks:
            self._check_id(task, seen)
            self._check_agent(task)
            for field in ("title", "prompt"):
                self._check_blank(task.data, task.loc, field)
            self._check_globs(task)
            self._check_checks(task)

    def _check_id(self, task: _RawTask, seen: dict[str, _RawTask]) -> None:
        task_id = task.id
        if task_id is None:
            return
        loc = task.loc + ("id",)
        if not TASK_ID_RE.match(task_id):
            self.add(loc, f"{label(loc)}: invalid task id {task_id!r}: use letters, digits, '.', '_' or '-' (at most 64), for example 'login-form'")
            return
        first = seen.get(task_id)
        if first is not None:
            line = self.positions.value(first.loc + ("id",)).line
            self.add(loc, f"{label(loc)}: duplicate task id {task_id!r}, already used at line {line}: give each task its own id")
            return
        seen[task_id] = task

    def _check_agent(self, task: _RawTask) -> None:
        agent = task.data.get("agent")
        if not isinstance(agent, str) or agent in self.settings.agents:
            return
        loc = task.loc + ("agent",)
        configured = sorted(self.settings.agents)
        if configured:
            fix = f"use one of {', '.join(configured)}, or add [agents.{agent}] to .aipass/config.toml"
        else:
            fix = "no agents are configured: add one under [agents.<name>] in .aipass/config.toml (aipass-tui init adds the CLIs it finds)"
        self.add(loc, f"{label(loc)}: unknown agent {agent!r}: {fix}")

    def _check_globs(self, task: _RawTask) -> None:
        files = task.data.get("files")
        if not isinstance(files, list):
            return
        loc = task.loc + ("files",)
        if not files:
            self.add(loc, f"{label(loc)}: no files: list the globs this task may change, for example [\"src/login/**\"]")
            return
        folders = self._folders()
        for index, glob in enumerate(files):
            if not isinstance(glob, str):
                continue
            glob_loc = loc + (index,)
            try:
                parsed = globs.compile_glob(glob)
            except globs.GlobError as exc:
                self.add(glob_loc, f"{label(glob_loc)}: {exc}")
                continue
            task.globs.append((index, glob))
            if not parsed.has_wildcards and parsed.text in folders:
                self.add(glob_loc, f"{label(glob_loc)}: glob {glob!r} names a folder, not a file: write '{parsed.text}/**' to include the files below it")

    def _check_checks(self, task: _RawTask) -> None:
        checks = task.data.get("checks")
        if not isinstance(checks, list):
            return
        for index, command in enumerate(checks):
            if not isinstance(command, str):
                continue
            loc = task.loc + ("checks", index)
            if not command.strip():
                self.add(loc, f"{label(loc)}: empty check: remove it or write a command such as 'pytest -q'")
                continue
            try:
                shlex.split(command)
            except ValueError as exc:
                self.add(loc, f"{label(loc)}: check {command!r} cannot be split into arguments ({exc}): close the quote or escape it")

    # Placeholders: <...> texts of a template that the user has not replaced yet

    def _check_placeholders(self, data: dict[str, Any], tasks: list[_RawTask]) -> None:
        known = known_placeholders(self.repo)
        fields: list[tuple[Loc, Any, str]] = [
            (("title",), data.get("title"), "plan.title"),
            (("goal",), data.get("goal"), "plan.goal"),
        ]
        fields += _items(("success_criteria",), data.get("success_criteria"), "plan.success_criteria")
        phases = data.get("phases") if isinstance(data.get("phases"), list) else []
        for p_index, phase in enumerate(phases):
            if isinstance(phase, dict):
                fields += [(("phases", p_index, field), phase.get(field), f"phase.{field}") for field in ("name", "goal")]
        for task in tasks:
            fields += [(task.loc + (field,), task.data.get(field), f"task.{field}") for field in ("title", "prompt")]
            fields += _items(task.loc + ("files",), task.data.get("files"), "task.files")
            fields += _items(task.loc + ("checks",), task.data.get("checks"), "task.checks")
        for loc, value, hint in fields:
            if isinstance(value, str):
                self._check_placeholder_value(loc, value, hint, known)

    def _check_placeholder_value(self, loc: Loc, value: str, hint: str, known: frozenset[str]) -> None:
        found = find_placeholders(value, known, glob=hint == "task.files")
        if not found:
            return
        span = self.positions.span(loc)
        offsets: list[int | None] = [None] * len(found)
        if span is not None:
            offsets = locate(self.text, self._offset(span[0]), self._offset(span[1]), found)
        for placeholder, offset in zip(found, offsets):
            position = self.positions.value(loc) if offset is None else self._position(offset)
            if hint == "task.files":
                problem = f"glob {value!r} still contains the placeholder {placeholder.shown!r}"
            else:
                problem = f"placeholder {placeholder.shown!r} is still in the plan"
            message = f"{label(loc)}: {problem}: replace it with {PLACEHOLDER_HINTS[hint]}"
            self.problems.append(Problem(self.name, position.line, position.column, message, tuple(loc)))
            self.placeholder_count += 1

    def _offset(self, position: Position) -> int:
        return self._line_starts()[position.line - 1] + position.column - 1

    def _position(self, offset: int) -> Position:
        starts = self._line_starts()
        line = bisect.bisect_right(starts, offset) - 1
        return Position(line + 1, offset - starts[line] + 1)

    def _line_starts(self) -> list[int]:
        if not self.line_starts:
            self.line_starts = [0] + [index + 1 for index, char in enumerate(self.text) if char == "\n"]
        return self.line_starts

    # Dependencies: unknown tasks, tasks of later phases, cycles

    def _check_dependencies(self, tasks: list[_RawTask]) -> None:
        by_id: dict[str, _RawTask] = {}
        for task in tasks:
            if task.id is not None:
                by_id.setdefault(task.id, task)
        graph: dict[str, list[str]] = {}
        for task in tasks:
            depends = task.data.get("depends_on")
            if task.id is None or not isinstance(depends, list) or by_id.get(task.id) is not task:
                continue
            edges = graph.setdefault(task.id, [])
            for index, dep in enumerate(depends):
                if not isinstance(dep, str):
                    continue
                loc = task.loc + ("depends_on", index)
                target = by_id.get(dep)
                if target is None:
                    known = listing(sorted(by_id))
                    self.add(loc, f"{label(loc)}: unknown task {dep!r}: depend on one of {known}")
                elif target.phase > task.phase:
                    self.add(
                        loc,
                        f"{label(loc)}: task {dep!r} runs in a later phase ({target.phase_name!r}): "
                        f"phases run in order, so move {dep!r} to this phase or an earlier one, or remove the dependency",
                    )
                elif dep not in edges:
                    edges.append(dep)
        for cycle in find_cycles(graph):
            first = by_id[cycle[0]]
            loc = first.loc + ("depends_on",)
            chain = " -> ".join(cycle + [cycle[0]])
            self.add(loc, f"{label(loc)}: dependency cycle {chain}: remove one of these dependencies")

    # Ownership: two agents of one phase must not own a common file

    def _check_overlaps(self, tasks: list[_RawTask]) -> None:
        by_phase: dict[int, list[_RawTask]] = {}
        for task in tasks:
            by_phase.setdefault(task.phase, []).append(task)
        for phase_tasks in by_phase.values():
            for later_index, later in enumerate(phase_tasks):
                for earlier in phase_tasks[:later_index]:
                    if earlier.agent is None or later.agent is None or earlier.agent == later.agent:
                        continue
                    self._check_pair(earlier, later)

    def _check_pair(self, earlier: _RawTask, later: _RawTask) -> None:
        for _, first in earlier.globs:
            for index, second in later.globs:
                witness = globs.overlap_example(first, second)
                if witness is None:
                    continue
                example = self._example_path(first, second)
                shown = f"for example {example}" if example else f"no file matches both yet, but {witness} would"
                loc = later.loc + ("files", index)
                self.add(
                    loc,
                    f"{label(loc)}: tasks {earlier.id!r} (agent {earlier.agent}) and {later.id!r} (agent {later.agent}) "
                    f"in phase {later.phase_name!r} both own files matching {first!r} and {second!r} ({shown}): "
                    "tasks of one phase run in parallel, so give them separate files or move one to another phase",
                )

    def _example_path(self, first: str, second: str) -> str | None:
        for path in self._tracked():
            if globs.matches(first, path) and globs.matches(second, path):
                return path
        return None

    def _tracked(self) -> list[str]:
        if self.tracked is None:
            self.tracked = sorted(tracked_files(self.repo))
        return self.tracked

    def _folders(self) -> set[str]:
        if self.folders is None:
            self.folders = set()
            for path in self._tracked():
                parts = path.split("/")[:-1]
                for end in range(1, len(parts) + 1):
                    self.folders.add("/".join(parts[:end]))
        return self.folders


def _items(loc: Loc, value: Any, hint: str) -> list[tuple[Loc, Any, str]]:
    """Return the entries of a list field as (location, value, hint key), or none when it is not a list."""
    if not isinstance(value, list):
        return []
    return [(loc + (index,), item, hint) for index, item in enumerate(value)]


class _RawTask:
    """A task table as written, with only the fields whose type is right."""

    def __init__(self, phase: int, phase_name: str, index: int, data: dict[str, Any]) -> None:
        self.phase = phase
        self.phase_name = phase_name
        self.index = index
        self.data = data
        self.loc: Loc = ("phases", phase, "tasks", index)
        self.id = data.get("id") if isinstance(data.get("id"), str) else None
        self.agent = data.get("agent") if isinstance(data.get("agent"), str) else None
        self.globs: list[tuple[int, str]] = []


def _end_position(text: str) -> Position:
    lines = text.split("\n")
    return Position(len(lines), len(lines[-1]) + 1)
