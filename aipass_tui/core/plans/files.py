"""Finding plan files by id, listing them, looking up a task, and editing a task in place."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import tomlkit
import tomlkit.exceptions

from aipass_tui.config import Settings
from aipass_tui.core.models import Request
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.model import PLAN_FILE_RE, PLAN_ID_RE, Plan, Task, plan_id_for, split_task_ref
from aipass_tui.core.plans.state import PlanState, load_state
from aipass_tui.core.plans.validation import PlanInvalid, check, validate
from aipass_tui.core.store import Paths

_ID_ARG = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9]*)-(?P<number>\d+)$")
EDITABLE_FIELDS = ("agent", "title", "prompt", "files", "depends_on", "checks", "review")


def plan_files(paths: Paths) -> list[Path]:
    """Return the plan files in ``.aipass/plans/``, ordered by prefix and number."""
    if not paths.plans.is_dir():
        return []

    def order(path: Path) -> tuple[str, int, str]:
        match = PLAN_FILE_RE.match(path.stem)
        return (match["prefix"], int(match["number"]), path.name) if match else ("~", 0, path.name)

    return sorted((p for p in paths.plans.glob("*.toml") if p.is_file()), key=order)


def check_plan_id(plan_id: str, path: Path) -> str:
    if not PLAN_ID_RE.match(plan_id):
        raise PlanError(
            f"cannot derive a plan id from the file name {path.name!r}: rename it to letters, digits, "
            "'.', '_' or '-', for example FPLAN-0001_login.toml"
        )
    return plan_id


def resolve_plan(paths: Paths, ref: str) -> Path:
    """Return the plan file for a plan id (``FPLAN-0001``, ``fplan-1``) or a path."""
    candidate = Path(ref).expanduser()
    looks_like_path = ref.endswith(".toml") or "/" in ref or os.sep in ref
    if candidate.is_file():
        return candidate.resolve()
    if looks_like_path:
        raise PlanError(f"plan file {ref} not found: check the path, or give a plan id such as FPLAN-0001")

    match = _ID_ARG.match(ref)
    found: list[Path] = []
    for path in plan_files(paths):
        file_match = PLAN_FILE_RE.match(path.stem)
        if match and file_match and file_match["prefix"] == match["prefix"].upper() and int(file_match["number"]) == int(match["number"]):
            found.append(path)
        elif path.stem == ref:
            found.append(path)
    if not found:
        state = _state_for(paths, ref)
        if state is not None and Path(state.path).is_file():
            return Path(state.path)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise PlanError(f"plan id {ref!r} matches several files ({names}): rename all but one, or give the path")
    if not found:
        raise PlanError(f"plan {ref!r} not found in {paths.plans}: run 'aipass-tui plan list' to see the plans")
    return found[0].resolve()


def _state_for(paths: Paths, ref: str) -> PlanState | None:
    if not PLAN_ID_RE.match(ref):
        return None
    try:
        return load_state(paths, ref)
    except PlanError:
        return None


@dataclass
class PlanSummary:
    """One line of ``plan list``."""

    plan_id: str
    path: Path
    title: str
    status: str
    done: int
    total: int
    problems: int


def list_plans(paths: Paths, settings: Settings) -> list[PlanSummary]:
    """Summarize every plan file: id, title, status of its execution and tasks done."""
    rows = []
    for path in plan_files(paths):
        plan_id = plan_id_for(path)
        plan, problems = check(path, settings, paths.repo, tracked=[])
        title = plan.title if plan else _raw_title(path)
        task_ids = [task.id for _, _, task in plan.tasks()] if plan else []
        try:
            state = load_state(paths, plan_id) if PLAN_ID_RE.match(plan_id) else None
        except PlanError:
            state = None
        status = state.status.value if state else "not started"
        done, total = state.progress(task_ids) if state else (0, len(task_ids))
        rows.append(PlanSummary(plan_id, path, title, status, done, total, len(problems)))
    return rows


def _raw_title(path: Path) -> str:
    try:
        value = tomlkit.parse(path.read_text(encoding="utf-8")).get("title")
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError):
        return "(unreadable)"
    return str(value) if isinstance(value, str) else "(no title)"


def find_task(paths: Paths, settings: Settings, plan_task: str) -> tuple[Plan, Task] | None:
    """Return the plan and task named by a request's ``plan_task`` (``<plan-id>:<task-id>``)."""
    plan_id, task_id = split_task_ref(plan_task)
    try:
        path = resolve_plan(paths, plan_id)
    except PlanError:
        return None
    plan, _ = check(path, settings, paths.repo, tracked=[])
    if plan is None:
        return None
    entry = plan.task(task_id)
    return (plan, entry[2]) if entry else None


def task_globs(paths: Paths, settings: Settings, plan_task: str) -> list[str] | None:
    """Return the globs a plan task may change, or None when the task is unknown.

    The globs recorded when the task was last dispatched come first, because the agent was
    given those. For a task never dispatched, the globs come from the plan file.
    """
    plan_id, task_id = split_task_ref(plan_task)
    state = _state_for(paths, plan_id)
    if state is not None and task_id in state.tasks and state.tasks[task_id].request:
        return list(state.tasks[task_id].files)
    found = find_task(paths, settings, plan_task)
    return list(found[1].files) if found else None


def allowed_globs(paths: Paths, settings: Settings) -> Callable[[Request], list[str] | None]:
    """Return the function that gives the git flow the globs a request may change.

    A request without a plan task has no limit (None). A request of an unknown plan task is
    limited to nothing, so every file it changes is shown as a violation.
    """

    def lookup(request: Request) -> list[str] | None:
        if not request.plan_task:
            return None
        try:
            globs = task_globs(paths, settings, request.plan_task)
        except ValueError:
            return []
        return globs if globs is not None else []

    return lookup


def task_checks(paths: Paths, settings: Settings, plan_task: str) -> list[str] | None:
    """Return the checks a plan task sets for its pull request, or None to use the configured ones."""
    found = find_task(paths, settings, plan_task)
    return list(found[1].checks) if found and found[1].checks is not None else None


def edit_task(path: Path, task_id: str, changes: dict[str, Any], settings: Settings, repo: Path | None) -> None:
    """Change fields of one task in the plan file, keeping comments and layout.

    The edited plan is validated first: when it has problems, PlanInvalid lists them and the
    file is left unchanged.
    """
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise PlanError(f"cannot edit {', '.join(unknown)} of a task: editable fields are {', '.join(EDITABLE_FIELDS)}")
    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.TOMLKitError) as exc:
        raise PlanError(f"cannot read plan file {path}: {exc}", 1) from exc

    table = _task_table(document, task_id)
    if table is None:
        raise PlanError(f"task {task_id!r} not found in {path}: check the id with 'aipass-tui plan show'")
    for key, value in changes.items():
        if value is None:
            table.pop(key, None)
        elif isinstance(value, str) and "\n" in value:
            table[key] = tomlkit.string(value, multiline=True)
        else:
            table[key] = value

    text = tomlkit.dumps(document)
    problems = validate(text, settings, repo, filename=str(path))
    if problems:
        raise PlanInvalid(problems)
    _replace(path, text)


def _task_table(document: Any, task_id: str) -> Any:
    for phase in document.get("phases", []) or []:
        for task in phase.get("tasks", []) or []:
            if task.get("id") == task_id:
                return task
    return None


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
