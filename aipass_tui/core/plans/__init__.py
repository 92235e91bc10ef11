"""Plans: TOML files that assign phases, tasks and files to agents, and their execution.

Importing this package registers the ``plan.*`` commands with ``aipass_tui.core.handlers``.
"""

from aipass_tui.core.plans import actions as _actions  # noqa: F401  (registers the handlers)
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.execution import PlanEvent, PlanExecution
from aipass_tui.core.plans.files import (
    allowed_globs,
    edit_task,
    find_task,
    list_plans,
    plan_files,
    resolve_plan,
    task_checks,
    task_globs,
)
from aipass_tui.core.plans.globs import GlobError, matches, matches_any, overlap_example
from aipass_tui.core.plans.host import PlanHost, existing_host, host_for
from aipass_tui.core.plans.model import Phase, Plan, Task, plan_id_for, split_task_ref, task_ref
from aipass_tui.core.plans.state import PlanState, PlanStatus, TaskState, TaskStatus, load_state
from aipass_tui.core.plans.templates import create_plan, list_templates
from aipass_tui.core.plans.validation import PlanInvalid, Problem, check, load_plan, validate

__all__ = [
    "GlobError",
    "Phase",
    "Plan",
    "PlanError",
    "PlanEvent",
    "PlanExecution",
    "PlanHost",
    "PlanInvalid",
    "PlanState",
    "PlanStatus",
    "Problem",
    "Task",
    "TaskState",
    "TaskStatus",
    "allowed_globs",
    "check",
    "create_plan",
    "edit_task",
    "existing_host",
    "find_task",
    "host_for",
    "list_plans",
    "list_templates",
    "load_plan",
    "load_state",
    "matches",
    "matches_any",
    "overlap_example",
    "plan_files",
    "plan_id_for",
    "resolve_plan",
    "split_task_ref",
    "task_checks",
    "task_globs",
    "task_ref",
    "validate",
]
