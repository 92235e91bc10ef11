"""Commands on plans that change state: ``plan.run``, ``plan.retry``, ``plan.skip``, ``plan.abort``.

They run inside the process that owns the orchestrator (handed over through the inbox), so a
plan that runs there is changed in memory, by the same object that advances it.
"""

from __future__ import annotations

from typing import Any

from aipass_tui.core.handlers import HandlerContext, HandlerError, handler
from aipass_tui.core.plans.errors import PlanError
from aipass_tui.core.plans.execution import PlanExecution
from aipass_tui.core.plans.files import check_plan_id, resolve_plan
from aipass_tui.core.plans.host import existing_host, host_for
from aipass_tui.core.plans.model import plan_id_for
from aipass_tui.core.plans.validation import PlanInvalid


def summary(execution: PlanExecution) -> dict[str, Any]:
    """Return the JSON-ready progress of a plan."""
    state = execution.state
    done, total = state.progress([task.id for _, _, task in execution.plan.tasks()])
    return {
        "plan": execution.plan_id,
        "path": str(execution.plan_path),
        "status": state.status.value,
        "reason": state.reason,
        "phase": state.phase,
        "done": done,
        "total": total,
        "tasks": {task_id: task.model_dump(mode="json") for task_id, task in state.tasks.items()},
    }


def _error(exc: PlanError) -> HandlerError:
    if isinstance(exc, PlanInvalid):
        return HandlerError("the plan file has problems:\n" + "\n".join(str(p) for p in exc.problems), 2)
    return HandlerError(str(exc), exc.exit_code)


def _execution(ctx: HandlerContext, plan: str) -> PlanExecution:
    if ctx.orchestrator is None:
        raise HandlerError("plan commands need the orchestrator: run them through aipass-tui", 1)
    path = resolve_plan(ctx.paths, plan)
    plan_id = check_plan_id(plan_id_for(path), path)
    host = existing_host(ctx.orchestrator)
    hosted = host.execution(plan_id) if host is not None else None
    if hosted is not None:
        return hosted
    return PlanExecution.open(ctx.paths, ctx.settings, str(path), ctx.orchestrator)


@handler("plan.run")
def handle_run(ctx: HandlerContext, plan: str) -> dict[str, Any]:
    """Start or resume a plan in the orchestrator of this process."""
    if ctx.orchestrator is None:
        raise HandlerError("plan.run needs a running orchestrator", 1)
    try:
        return summary(host_for(ctx.orchestrator, ctx.paths, ctx.settings).start_plan(plan))
    except PlanError as exc:
        raise _error(exc) from exc


@handler("plan.retry")
def handle_retry(ctx: HandlerContext, plan: str, task: str, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """Dispatch a failed task again, optionally after editing it (``changes``: field -> value)."""
    try:
        execution = _execution(ctx, plan)
        execution.retry(task, changes)
        return summary(execution)
    except PlanError as exc:
        raise _error(exc) from exc


@handler("plan.skip")
def handle_skip(ctx: HandlerContext, plan: str, task: str) -> dict[str, Any]:
    try:
        execution = _execution(ctx, plan)
        execution.skip(task)
        return summary(execution)
    except PlanError as exc:
        raise _error(exc) from exc


@handler("plan.abort")
def handle_abort(ctx: HandlerContext, plan: str) -> dict[str, Any]:
    try:
        execution = _execution(ctx, plan)
        execution.abort()
        return summary(execution)
    except PlanError as exc:
        raise _error(exc) from exc
