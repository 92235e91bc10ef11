"""A plan's TOML text as a tomlkit document, with the edits the plan editor's outline and form make.

tomlkit keeps comments and layout: a changed value keeps its place and its end-of-line comment,
and a moved or copied table takes along the comments written inside it. A comment just above a
``[[phases.tasks]]`` header belongs to the table before that header, so it stays there.
Locations are indexes: ``phase`` counts ``[[phases]]`` tables and ``task`` the
``[[phases.tasks]]`` tables of one phase, both from 0. This module imports no Textual.
"""

from __future__ import annotations

import copy
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, String, StringType, Table, Trivia

from aipass_tui.core.plans.model import TASK_ID_RE
from aipass_tui.core.plans.toml_positions import scan

TASK_FIELDS = ("id", "agent", "title", "prompt", "files", "depends_on", "review")
"""The task fields the form edits; ``checks`` stays in the TOML source."""


class StructureError(ValueError):
    """An outline edit the document cannot take. The message gives the reason and the fix."""


@dataclass(frozen=True)
class TaskEntry:
    """One task as the outline shows it."""

    id: str
    agent: str
    title: str


@dataclass(frozen=True)
class PhaseEntry:
    """One phase as the outline shows it."""

    name: str
    tasks: tuple[TaskEntry, ...]


def parse(text: str) -> "PlanDocument | None":
    """Return the document of ``text``, or None when it is not valid TOML."""
    try:
        return PlanDocument(text)
    except tomlkit.exceptions.TOMLKitError:
        return None


class PlanDocument:
    """A plan file's TOML document. Reading is lenient; edits raise StructureError or ValueError."""

    def __init__(self, text: str) -> None:
        self.document = tomlkit.parse(text)

    def dumps(self) -> str:
        return tomlkit.dumps(self.document)

    # Reading ---------------------------------------------------------------------------------

    def outline(self) -> list[PhaseEntry]:
        """Return the phases and their tasks, with blank names where a value is missing or not text."""
        phases = []
        for phase in _tables(self.document.get("phases")):
            tasks = tuple(
                TaskEntry(_text(task.get("id")), _text(task.get("agent")), _text(task.get("title")))
                for task in _tables(phase.get("tasks"))
            )
            phases.append(PhaseEntry(_text(phase.get("name")), tasks))
        return phases

    def plan_fields(self) -> dict[str, str]:
        return {"title": _text(self.document.get("title")), "goal": _text(self.document.get("goal"))}

    def phase_fields(self, phase: int) -> dict[str, str]:
        table = self._phase(phase)
        return {"name": _text(table.get("name")), "goal": _text(table.get("goal"))}

    def task_fields(self, phase: int, task: int) -> dict[str, Any]:
        """Return the form's fields of a task: text as str, ``files`` and ``depends_on`` as lists of str."""
        table = self._task(phase, task)
        return {
            "id": _text(table.get("id")),
            "agent": _text(table.get("agent")),
            "title": _text(table.get("title")),
            "prompt": _text(table.get("prompt")),
            "files": _texts(table.get("files")),
            "depends_on": _texts(table.get("depends_on")),
            "review": _text(table.get("review")) or "manual",
        }

    def task_ids(self) -> list[tuple[int, str]]:
        """Return ``(phase index, task id)`` of every task that has an id, in file order."""
        return [
            (index, entry.id)
            for index, phase in enumerate(self.outline())
            for entry in phase.tasks
            if entry.id
        ]

    # Values ----------------------------------------------------------------------------------

    def set_plan_field(self, key: str, value: str) -> bool:
        return _set(self.document, key, value)

    def set_phase_field(self, phase: int, key: str, value: str) -> bool:
        return _set(self._phase(phase), key, value)

    def set_task_field(self, phase: int, task: int, key: str, value: Any) -> bool:
        """Set one field of a task; return whether the document changed.

        An empty ``depends_on`` is removed, and ``review = "manual"`` is only written where the
        task already had a ``review`` key, because both are the defaults.
        """
        if key not in TASK_FIELDS or key == "id":
            raise ValueError(f"the form cannot set the task field {key!r}")
        table = self._task(phase, task)
        if key == "depends_on" and not value:
            return _set(table, key, None)
        if key == "review" and value == "manual" and "review" not in table:
            return False
        return _set(table, key, value)

    # Structure -------------------------------------------------------------------------------

    def add_phase(self, after: int | None, name: str = "") -> int:
        """Insert a phase without tasks after phase ``after`` (None: at the end); return its index."""
        phases = self._phases(create=True)
        index = len(phases) if after is None else after + 1
        table = tomlkit.table()
        table["name"] = name or numbered_name("Phase", [entry.name for entry in self.outline()], index + 1)
        table["goal"] = ""
        phases.insert(index, table)
        self._space_tables()
        return index

    def add_task(self, phase: int, after: int | None, agent: str) -> int:
        """Insert a task into a phase after task ``after`` (None: at the end); return its index."""
        table_of_phase = self._phase(phase)
        tasks = _editable_aot(table_of_phase, "tasks", f"phases[{phase}].tasks", create=True)
        index = len(tasks) if after is None else after + 1
        used_ids = [task_id for _, task_id in self.task_ids()]
        task = tomlkit.table()
        task["id"] = numbered_name("task", used_ids, len(used_ids) + 1, "-")
        task["agent"] = agent
        task["title"] = ""
        task["prompt"] = ""
        task["files"] = tomlkit.array()
        tasks.insert(index, task)
        self._space_tables()
        return index

    def delete_phase(self, phase: int) -> list[str]:
        """Delete a phase and its tasks; return the tasks whose ``depends_on`` lost a deleted task."""
        deleted_ids = {entry.id for entry in self.outline()[phase].tasks if entry.id}
        del self._phases()[phase]
        if not len(self._phases()):
            del self.document["phases"]
        changed = self._drop_dependencies(deleted_ids)
        self._space_tables()
        return changed

    def delete_task(self, phase: int, task: int) -> list[str]:
        """Delete a task; return the tasks whose ``depends_on`` named it (it is removed there)."""
        task_id = self.outline()[phase].tasks[task].id
        tasks = _editable_aot(self._phase(phase), "tasks", f"phases[{phase}].tasks")
        del tasks[task]
        if not len(tasks):
            del self._phase(phase)["tasks"]
        changed = self._drop_dependencies({task_id}) if task_id else []
        self._space_tables()
        return changed

    def move_phase(self, phase: int, delta: int) -> int | None:
        """Move a phase one place up (-1) or down (1); return its new index, or None at an end."""
        phases = self._phases()
        target = phase + delta
        if not 0 <= target < len(phases):
            return None
        table = phases[phase]
        del phases[phase]
        phases.insert(target, table)
        self._space_tables()
        return target

    def move_task(self, phase: int, task: int, delta: int) -> tuple[int, int] | None:
        """Move a task one place up (-1) or down (1).

        The first task of a phase moves up to the end of the phase before it, and the last one
        down to the start of the next phase. Return the new location, or None at an end.
        """
        tasks = _editable_aot(self._phase(phase), "tasks", f"phases[{phase}].tasks")
        target = task + delta
        if 0 <= target < len(tasks):
            table = tasks[task]
            del tasks[task]
            tasks.insert(target, table)
            self._space_tables()
            return phase, target
        other = phase + delta
        if not 0 <= other < len(self._phases()):
            return None
        destination = _editable_aot(self._phase(other), "tasks", f"phases[{other}].tasks", create=True)
        table = tasks[task]
        del tasks[task]
        if not len(tasks):
            del self._phase(phase)["tasks"]
        index = len(destination) if delta < 0 else 0
        destination.insert(index, table)
        self._space_tables()
        return other, index

    def duplicate_phase(self, phase: int) -> int:
        """Copy a phase after itself with new task ids; dependencies inside it point to the copies."""
        phases = self._phases()
        source = phases[phase]
        table = copy.deepcopy(source)
        names = [entry.name for entry in self.outline()]
        table["name"] = unique_name(f"{_text(source.get('name')) or 'Phase'} (copy)", names)
        used_ids = [task_id for _, task_id in self.task_ids()]
        renamed: dict[str, str] = {}
        for task in _tables(table.get("tasks")):
            old = _text(task.get("id"))
            if old:
                new = unique_name(f"{old}-copy", used_ids + list(renamed.values()), "-")
                renamed[old] = new
                task["id"] = new
        for task in _tables(table.get("tasks")):
            depends = task.get("depends_on")
            if isinstance(depends, Array):
                for index, dep in enumerate(list(depends)):
                    if isinstance(dep, str) and str(dep) in renamed:
                        depends[index] = renamed[str(dep)]
        phases.insert(phase + 1, table)
        self._space_tables()
        return phase + 1

    def duplicate_task(self, phase: int, task: int) -> int:
        """Copy a task after itself with a new id; return the copy's index."""
        tasks = _editable_aot(self._phase(phase), "tasks", f"phases[{phase}].tasks")
        table = copy.deepcopy(tasks[task])
        used_ids = [task_id for _, task_id in self.task_ids()]
        table["id"] = unique_name(f"{_text(table.get('id')) or 'task'}-copy", used_ids, "-")
        tasks.insert(task + 1, table)
        self._space_tables()
        return task + 1

    def rename_phase(self, phase: int, name: str) -> bool:
        name = name.strip()
        if not name:
            raise ValueError("empty phase name: give the phase a short name such as 'Build'")
        return _set(self._phase(phase), "name", name)

    def rename_task(self, phase: int, task: int, new_id: str) -> list[str]:
        """Change a task's id and every ``depends_on`` that names it; return the tasks changed there."""
        new_id = new_id.strip()
        if not TASK_ID_RE.match(new_id):
            raise ValueError(f"invalid task id {new_id!r}: use letters, digits, '.', '_' or '-' (at most 64), for example 'login-form'")
        table = self._task(phase, task)
        old = _text(table.get("id"))
        if new_id == old:
            return []
        if new_id in [task_id for _, task_id in self.task_ids()]:
            raise ValueError(f"task id {new_id!r} is already used: choose another id")
        table["id"] = new_id
        changed = []
        if old:
            for other in self._all_tasks():
                depends = other.get("depends_on")
                if isinstance(depends, Array) and old in [str(d) for d in depends if isinstance(d, str)]:
                    for index, dep in enumerate(list(depends)):
                        if isinstance(dep, str) and str(dep) == old:
                            depends[index] = new_id
                    changed.append(_text(other.get("id")))
        return changed

    # Helpers ---------------------------------------------------------------------------------

    def _phases(self, create: bool = False) -> AoT:
        return _editable_aot(self.document, "phases", "phases", create=create)

    def _phase(self, phase: int) -> Table:
        tables = _tables(self.document.get("phases"))
        if not 0 <= phase < len(tables):
            raise StructureError(f"the plan has no phase {phase + 1}")
        table = tables[phase]
        if not isinstance(table, Table):
            raise StructureError(f"phase {phase + 1} is an inline table: write it as a [[phases]] table to edit it here")
        return table

    def _task(self, phase: int, task: int) -> Table:
        tables = _tables(self._phase(phase).get("tasks"))
        if not 0 <= task < len(tables):
            raise StructureError(f"phase {phase + 1} has no task {task + 1}")
        table = tables[task]
        if not isinstance(table, Table):
            raise StructureError(
                f"task {task + 1} of phase {phase + 1} is an inline table: write it as a [[phases.tasks]] table to edit it here"
            )
        return table

    def _all_tasks(self) -> list[Any]:
        return [task for phase in _tables(self.document.get("phases")) for task in _tables(phase.get("tasks"))]

    def _drop_dependencies(self, deleted_ids: set[str]) -> list[str]:
        changed = []
        for task in self._all_tasks():
            depends = task.get("depends_on")
            if not isinstance(depends, Array):
                continue
            dropped = [index for index, dep in enumerate(depends) if isinstance(dep, str) and str(dep) in deleted_ids]
            if not dropped:
                continue
            for index in reversed(dropped):
                del depends[index]
            if not len(depends) and isinstance(task, Table):
                del task["depends_on"]
            changed.append(_text(task.get("id")))
        return changed

    def _space_tables(self) -> None:
        """Put a blank line above each ``[[phases]]`` and ``[[phases.tasks]]`` header that follows a value."""
        text = self.dumps()
        lines = text.split("\n")
        headers = sorted(
            {
                position.line - 1
                for loc, position in scan(text).keys.items()
                if loc and isinstance(loc[-1], int) and lines[position.line - 1].lstrip().startswith("[[")
            },
            reverse=True,
        )
        changed = False
        for line in headers:
            above = lines[line - 1].strip() if line > 0 else ""
            if above and not above.startswith("#"):
                lines.insert(line, "")
                changed = True
        if changed:
            self.document = tomlkit.parse("\n".join(lines))


def _tables(value: Any) -> list[Any]:
    """Return the tables of an array of tables (or of an inline array of inline tables), else []."""
    if isinstance(value, (list, AoT)):
        return [item for item in value if isinstance(item, dict)]
    return []


def _editable_aot(table: Any, key: str, where: str, create: bool = False) -> AoT:
    """Return the array of tables at ``table[key]``; ``where`` names it in errors (``phases[0].tasks``)."""
    value = table.get(key)
    if value is None and create:
        table.append(key, tomlkit.aot())
        return table[key]
    if isinstance(value, AoT):
        return value
    if value is None:
        raise StructureError(f"{where} is missing")
    header = "phases.tasks" if key == "tasks" else "phases"
    raise StructureError(f"{where} is written as an inline value: write each entry as a [[{header}]] table to edit it here")


def _text(value: Any) -> str:
    return str(value) if isinstance(value, str) else ""


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(item) for item in value if isinstance(item, str)]


def _plain(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _set(table: Any, key: str, value: Any) -> bool:
    """Set or remove (None) one key of a table, keeping the item's style; return whether it changed."""
    old = table.get(key)
    if value is None:
        if key in table:
            del table[key]
            return True
        return False
    if old is not None and _plain(old) == value:
        return False
    if isinstance(value, str):
        table[key] = _string_item(value, old)
    elif isinstance(value, list):
        array = tomlkit.array()
        array.extend(value)
        if isinstance(old, Array) and "\n" in old.as_string():
            array.multiline(True)
        table[key] = array
    else:
        table[key] = value
    return True


def _string_item(value: str, old: Any) -> Any:
    """Write multi-line text as a ``\"\"\"`` string that starts on its own line, as the templates do."""
    if "\n" not in value:
        if isinstance(old, String) and old.type in (StringType.MLB, StringType.MLL):
            return tomlkit.string(value, multiline=True)
        return value
    written = tomlkit.string(value, multiline=True).as_string()[3:-3]
    if not written.startswith("\n"):
        # TOML drops a newline right after the opening quotes, so the value is unchanged.
        written = "\n" + written
    return String(StringType.MLB, value, written, Trivia())


def unique_name(base: str, used: list[str], separator: str = " ") -> str:
    """Return ``base`` if ``used`` does not contain it, else ``base<separator><n>`` with the first free n from 2."""
    if base not in used:
        return base
    return numbered_name(base, used, 2, separator)


def numbered_name(base: str, used: list[str], start: int, separator: str = " ") -> str:
    """Return ``base<separator><n>`` with the first n from ``start`` that ``used`` does not contain."""
    number = start
    while f"{base}{separator}{number}" in used:
        number += 1
    return f"{base}{separator}{number}"


def text_edit(old: str, new: str) -> tuple[int, int, str] | None:
    """Return ``(start, end, replacement)`` offsets into ``old`` that turn it into ``new``, or None if equal."""
    if old == new:
        return None
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
        suffix += 1
    return prefix, len(old) - suffix, new[prefix : len(new) - suffix]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file's permission bits are kept. On failure the original file is unchanged.
    """
    try:
        mode: int | None = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
