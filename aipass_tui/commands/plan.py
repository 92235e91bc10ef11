"""``aipass-tui plan``: create plans from templates, check, list, show and run them.

``new``, ``list``, ``show`` and ``check`` read and write plan files only. ``run``, ``retry``,
``skip`` and ``abort`` change a plan's execution. When an orchestrator already runs on the
repository (the cockpit or ``work``), they hand the change to it through the inbox. Otherwise
``retry``, ``skip`` and ``abort`` take the orchestrator lock for a moment, and ``run`` becomes
the orchestrator itself until the plan completes or stops on a failure.
Exit codes: 0 success, 1 the operation failed (or the plan stopped on a failure), 2 bad usage or
bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
HANDOVER_TIMEOUT = 60.0
"""Seconds a command waits for the reply of the running orchestrator."""
FOLLOW_INTERVAL = 0.5
"""Seconds between two reads of a plan's state while following a plan run elsewhere."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``plan`` command and its subcommands to the CLI's subparsers."""
    plan = subparsers.add_parser(
        "plan", help="create, check, list, show and run plans", description="Plan work for agents: phases, tasks and the files each task may change."
    )
    plan.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository (default: the current folder)")
    sub = plan.add_subparsers(dest="plan_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository (default: the current folder)")
        command.set_defaults(func=func)
        return command

    new = add("new", cmd_new, "create a plan in .aipass/plans/ from a template (FPLAN, MPLAN, bugfix, refactor, or your own)")
    new.add_argument("template", metavar="TEMPLATE")
    new.add_argument("title", metavar="TITLE")
    listing = add("list", cmd_list, "list plans with their status and progress")
    listing.add_argument("--json", action="store_true", help="print JSON records")
    show = add("show", cmd_show, "show a plan's phases and tasks with their progress")
    show.add_argument("plan", metavar="PLAN", help="a plan id such as FPLAN-0001, or a path")
    show.add_argument("--json", action="store_true", help="print the plan and its progress as JSON")
    check = add("check", cmd_check, "validate a plan file and print every problem as FILE:LINE:COLUMN: message")
    check.add_argument("file", metavar="FILE", help="a plan file, or a plan id")
    run = add("run", cmd_run, "run a plan: phases in order, the tasks of a phase in parallel")
    run.add_argument("plan", metavar="PLAN", help="a plan id such as FPLAN-0001, or a path")
    run.add_argument("--headless", action="store_true", help="print progress lines and wait: exit 0 when the plan completes, 1 when it stops on a failure")
    retry = add("retry", cmd_retry, "dispatch a failed task again (after any edit of the plan file)")
    retry.add_argument("plan", metavar="PLAN")
    retry.add_argument("task", metavar="TASK")
    skip = add("skip", cmd_skip, "skip a task: its phase and the tasks depending on it go on without it")
    skip.add_argument("plan", metavar="PLAN")
    skip.add_argument("task", metavar="TASK")
    abort = add("abort", cmd_abort, "abort a plan: nothing more is dispatched")
    abort.add_argument("plan", metavar="PLAN")


# Helpers -------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    print(f"aipass-tui: {message}", file=sys.stderr)
    return code


def _context(args: argparse.Namespace) -> tuple[Any, Any]:
    from aipass_tui.cli import find_repo, load
    from aipass_tui.core.store import Paths

    repo = find_repo(getattr(args, "repo", None))
    return Paths(repo), load(repo)


def _shown(path: Path) -> str:
    """Return ``path`` relative to the current folder when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _plan_error(exc: Exception) -> int:
    from aipass_tui.core.plans import PlanInvalid

    if isinstance(exc, PlanInvalid):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return _fail(f"the plan has {len(exc.problems)} problem(s): fix them, then run the command again", EXIT_USAGE)
    return _fail(str(exc), getattr(exc, "exit_code", EXIT_FAILED))


# new, list, show, check ------------------------------------------------------------------------


def cmd_new(args: argparse.Namespace) -> int:
    from aipass_tui.core.plans import PlanError, create_plan

    paths, settings = _context(args)
    try:
        created = create_plan(paths, settings, args.template, args.title)
    except PlanError as exc:
        return _plan_error(exc)
    shown = _shown(created.path)
    print(f"created {shown} (plan {created.plan_id}, template {created.template.name})")
    for problem in created.problems:
        print(problem)
    if created.problems:
        print(f"the new plan has {len(created.problems)} problem(s), listed above: fix them before running it")
    print(f"next: replace every <...> in it, then run `aipass-tui plan check {shown}`")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from aipass_tui.core.plans import list_plans

    paths, settings = _context(args)
    rows = list_plans(paths, settings)
    if args.json:
        records = [
            {"id": r.plan_id, "path": str(r.path), "title": r.title, "status": r.status, "done": r.done, "total": r.total, "problems": r.problems}
            for r in rows
        ]
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not rows:
        print(f"no plans in {paths.plans}: create one with `aipass-tui plan new FPLAN \"A title\"`")
        return EXIT_OK
    width = max(len(r.plan_id) for r in rows)
    for r in rows:
        progress = f"{r.done}/{r.total} tasks"
        problems = f"  ({r.problems} problem(s): aipass-tui plan check {r.plan_id})" if r.problems else ""
        print(f"{r.plan_id:<{width}}  {r.status:<11}  {progress:<11}  {r.title}{problems}")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from aipass_tui.core.plans import PlanError, check, load_state, plan_id_for, resolve_plan

    paths, settings = _context(args)
    try:
        path = resolve_plan(paths, args.plan)
        plan_id = plan_id_for(path)
        plan, problems = check(path, settings, paths.repo)
        state = load_state(paths, plan_id)
    except PlanError as exc:
        return _plan_error(exc)
    if plan is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        return _fail(f"{_shown(path)} has {len(problems)} problem(s): fix them to see the plan", EXIT_USAGE)
    if args.json:
        record = {"id": plan_id, "path": str(path), "plan": plan.model_dump(mode="json"), "state": state.model_dump(mode="json") if state else None}
        print(json.dumps(record, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(_describe_plan(plan_id, path, plan, state))
    return EXIT_OK


def _describe_plan(plan_id: str, path: Path, plan: Any, state: Any) -> str:
    lines = [f"{plan_id}: {plan.title}", f"file: {_shown(path)}"]
    if state is not None:
        done, total = state.progress([t.id for _, _, t in plan.tasks()])
        lines.append(f"status: {state.status.value}, {done}/{total} tasks done" + (f" ({state.reason})" if state.reason else ""))
    else:
        lines.append("status: not started")
    lines.append(f"goal: {plan.goal.strip()}")
    for criterion in plan.success_criteria:
        lines.append(f"  - {criterion}")
    for index, phase in enumerate(plan.phases):
        current = state is not None and state.phase == index and state.status.value in ("running", "paused")
        lines.append("")
        lines.append(f"phase {index + 1}/{len(plan.phases)}: {phase.name}{'  <- current' if current else ''}")
        lines.append(f"  goal: {phase.goal.strip()}")
        for task in phase.tasks:
            task_state = state.tasks.get(task.id) if state is not None else None
            status = task_state.status.value if task_state else "pending"
            lines.append(f"  [{status}] {task.id} ({task.agent}): {task.title}")
            lines.append(f"      files: {', '.join(task.files)}")
            extra = []
            if task.depends_on:
                extra.append(f"depends on: {', '.join(task.depends_on)}")
            extra.append(f"review: {task.review}")
            if task.checks is not None:
                extra.append(f"checks: {'; '.join(task.checks) or '(none)'}")
            lines.append(f"      {', '.join(extra)}")
            if task_state is not None and (task_state.request or task_state.reason):
                ids = [f"request {task_state.request}" if task_state.request else "", f"run {task_state.run}" if task_state.run else "", f"pull request {task_state.pull}" if task_state.pull else ""]
                detail = ", ".join(i for i in ids if i)
                if task_state.attempts > 1:
                    detail += f", attempt {task_state.attempts}"
                lines.append(f"      {detail}")
                if task_state.reason:
                    lines.append(f"      reason: {task_state.reason}")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    from aipass_tui.core.plans import PlanError, check, resolve_plan

    paths, settings = _context(args)
    given = Path(args.file)
    if given.is_file():
        path = given
    else:
        try:
            path = resolve_plan(paths, args.file)
        except PlanError as exc:
            return _plan_error(exc)
        path = Path(_shown(path))
    plan, problems = check(path, settings, paths.repo)
    for problem in problems:
        print(problem)
    if problems or plan is None:
        return _fail(f"{path}: {len(problems)} problem(s)", EXIT_USAGE)
    print(f"{path}: OK ({len(plan.phases)} phase(s), {len(plan.tasks())} task(s))")
    return EXIT_OK


# run and the actions on a running plan -----------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from aipass_tui.core.plans import PlanError, PlanStatus, load_plan, load_state, plan_id_for, resolve_plan
    from aipass_tui.core.store import lock_is_held

    paths, settings = _context(args)
    try:
        path = resolve_plan(paths, args.plan)
        plan_id = plan_id_for(path)
        load_plan(path, settings, paths.repo)
        state = load_state(paths, plan_id)
    except PlanError as exc:
        return _plan_error(exc)
    if state is not None and state.status == PlanStatus.COMPLETED:
        print(f"{plan_id}: already completed")
        return EXIT_OK
    if state is not None and state.status == PlanStatus.ABORTED:
        return _fail(f"plan {plan_id} was aborted: to run its tasks again, copy it to a new plan file in {_shown(paths.plans)}", EXIT_FAILED)
    if lock_is_held(paths.orchestrator_lock):
        return _hand_over(paths, settings, path, plan_id, follow=args.headless)
    return _drive(paths, settings, path, plan_id)


def _hand_over(paths: Any, settings: Any, path: Path, plan_id: str, *, follow: bool) -> int:
    from aipass_tui.core.handlers import HandlerError, call
    from aipass_tui.core.store import read_lock_info

    holder = read_lock_info(paths.orchestrator_lock)
    try:
        call(paths, settings, "plan.run", {"plan": str(path)}, timeout=HANDOVER_TIMEOUT)
    except HandlerError as exc:
        return _fail(str(exc), exc.exit_code)
    where = f"the running orchestrator ({holder.get('role', 'orchestrator')}, pid {holder.get('pid', '?')})"
    if not follow:
        print(f"{plan_id}: started in {where}; follow it with `aipass-tui plan show {plan_id}`")
        return EXIT_OK
    print(f"{plan_id}: running in {where}", flush=True)
    return _follow(paths, plan_id)


def _follow(paths: Any, plan_id: str) -> int:
    """Print the changes of a plan's saved state until it completes, pauses or is aborted."""
    from aipass_tui.core.plans import PlanError, PlanStatus, load_state

    seen: dict[str, str] = {}
    status = None
    try:
        while True:
            try:
                state = load_state(paths, plan_id)
            except PlanError as exc:
                return _fail(str(exc), EXIT_FAILED)
            if state is not None:
                for task_id, task in state.tasks.items():
                    line = task.status.value + (f": {task.reason}" if task.reason else "")
                    if seen.get(task_id) != line:
                        seen[task_id] = line
                        print(f"{plan_id}: task {task_id} {line}", flush=True)
                if state.status != status:
                    status = state.status
                    if status != PlanStatus.RUNNING:
                        print(f"{plan_id}: {status.value}" + (f": {state.reason}" if state.reason else ""), flush=True)
                if status == PlanStatus.COMPLETED:
                    return EXIT_OK
                if status in (PlanStatus.PAUSED, PlanStatus.ABORTED):
                    return EXIT_FAILED
            time.sleep(FOLLOW_INTERVAL)
    except KeyboardInterrupt:
        print(f"{plan_id}: stopped following; the plan goes on in the running orchestrator", file=sys.stderr)
        return EXIT_FAILED


def _drive(paths: Any, settings: Any, path: Path, plan_id: str) -> int:
    """Run the orchestrator in this process until the plan completes or stops on a failure."""
    from aipass_tui.cli import setup_logging
    from aipass_tui.core.orchestrator import Orchestrator
    from aipass_tui.core.plans import PlanError, PlanStatus, host_for
    from aipass_tui.core.store import LockHeld

    setup_logging(paths.repo, to_stderr=True, name="work.log")
    orchestrator = Orchestrator(paths.repo, settings, role=f"plan run {plan_id}")
    host = host_for(orchestrator, paths, settings, start_thread=False)
    host.add_listener(lambda event: print(event, flush=True))
    try:
        orchestrator.start()
    except LockHeld:
        # Another orchestrator started between the check and now.
        return _hand_over(paths, settings, path, plan_id, follow=True)
    try:
        orchestrator.start_thread()
        try:
            execution = host.start_plan(str(path))
        except PlanError as exc:
            return _plan_error(exc)
        while execution.status == PlanStatus.RUNNING:
            host.pump(timeout=0.5)
    except KeyboardInterrupt:
        print(f"{plan_id}: interrupted. Its progress is saved and agents keep running: `aipass-tui plan run {plan_id}` continues it", file=sys.stderr)
        return 130
    finally:
        host.stop()
        orchestrator.close()
    if execution.status == PlanStatus.COMPLETED:
        return EXIT_OK
    return EXIT_FAILED


def _action(args: argparse.Namespace, name: str, payload: dict[str, Any]) -> int:
    from aipass_tui.core.handlers import HandlerError, call

    paths, settings = _context(args)
    try:
        result = call(paths, settings, name, payload, timeout=HANDOVER_TIMEOUT)
    except HandlerError as exc:
        return _fail(str(exc), exc.exit_code)
    line = f"{result.get('plan')}: {result.get('status')}, {result.get('done')}/{result.get('total')} tasks done"
    if result.get("reason"):
        line += f" ({result['reason']})"
    print(line)
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    return _action(args, "plan.retry", {"plan": _absolute(args.plan), "task": args.task})


def cmd_skip(args: argparse.Namespace) -> int:
    return _action(args, "plan.skip", {"plan": _absolute(args.plan), "task": args.task})


def cmd_abort(args: argparse.Namespace) -> int:
    return _action(args, "plan.abort", {"plan": _absolute(args.plan)})


def _absolute(ref: str) -> str:
    # A path is made absolute, because the orchestrator that runs the command may have another
    # current folder.
    return str(Path(ref).resolve()) if os.path.exists(ref) else ref
