"""``aipass-tui pr``: list, show, merge, close and send back pull requests from the command line.

``list`` and ``show`` only read state files and git objects. The commands that change a pull
request go through the running orchestrator (or run directly under the orchestrator lock when
none runs), so state keeps one writer. Exit codes: 0 success, 1 the operation failed, 2 bad
usage or input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aipass_tui.core import clock

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MERGE_TIMEOUT = 300.0
"""Seconds ``pr merge`` waits for the orchestrator's reply (a rebase merge checks out a whole tree)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``pr`` command and its subcommands to the CLI's subparsers."""
    pr = subparsers.add_parser("pr", help="list, show, merge or close pull requests", description="Review pull requests made from agents' work.")
    pr.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository (default: the current folder)")
    sub = pr.add_subparsers(dest="pr_command", metavar="SUBCOMMAND", required=True)

    def add(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository (default: the current folder)")
        command.set_defaults(func=func)
        return command

    listing = add("list", cmd_list, "list pull requests")
    listing.add_argument("--json", action="store_true", help="print JSON records")
    show = add("show", cmd_show, "show a pull request: files, checks, comments")
    show.add_argument("id", metavar="ID")
    show.add_argument("--patch", action="store_true", help="print the whole diff in git's format instead of the summary")
    merge = add("merge", cmd_merge, "approve a pull request and merge it into its target branch")
    merge.add_argument("id", metavar="ID")
    merge.add_argument("--allow-violations", action="store_true", help="merge even if it changes files outside its plan task's globs")
    close = add("close", cmd_close, "close a pull request without merging (its branch is kept)")
    close.add_argument("id", metavar="ID")
    changes = add("request-changes", cmd_request_changes, "send the review comments and MESSAGE back to the agent as a request on the same branch")
    changes.add_argument("id", metavar="ID")
    changes.add_argument("message", metavar="MESSAGE", help="what should change; '-' reads it from standard input")
    rebase = add("rebase-request", cmd_rebase_request, "ask the agent to rebase its branch onto the target and resolve the conflicts")
    rebase.add_argument("id", metavar="ID")


# Helpers -------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    print(f"aipass-tui: {message}", file=sys.stderr)
    return code


def _repo(args: argparse.Namespace) -> Path:
    from aipass_tui.cli import find_repo

    return find_repo(getattr(args, "repo", None))


def _pull_id(value: str) -> str:
    from aipass_tui.core.pulls import normalize_id

    return normalize_id(value)


def _age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _run(args: argparse.Namespace, body: Any) -> int:
    """Run ``body(args)`` and turn the project's errors into a message and an exit code."""
    from aipass_tui.cli import CliError
    from aipass_tui.core.handlers import HandlerError
    from aipass_tui.core.store import StateError

    try:
        return int(body(args))
    except CliError as exc:
        return _fail(str(exc), exc.exit_code)
    except HandlerError as exc:
        return _fail(str(exc), exc.exit_code)
    except (ValueError, LookupError) as exc:
        return _fail(str(exc).strip("'\""), EXIT_USAGE)
    except StateError as exc:
        return _fail(str(exc), EXIT_FAILED)


def _call(args: argparse.Namespace, name: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    from aipass_tui.cli import load, setup_logging
    from aipass_tui.core.handlers import call
    from aipass_tui.core.store import Paths

    repo = _repo(args)
    settings = load(repo)
    setup_logging(repo, name="commands.log")
    return call(Paths(repo), settings, name, payload, timeout=timeout)


# list / show ---------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    return _run(args, _list)


def _list(args: argparse.Namespace) -> int:
    from aipass_tui.core.pulls import PullStore
    from aipass_tui.core.store import Paths

    store = PullStore(Paths(_repo(args)))
    pulls = store.list()
    for problem in store.problems:
        print(f"aipass-tui: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([p.record() for p in pulls], indent=2, ensure_ascii=False))
        return EXIT_OK
    if not pulls:
        print("no pull requests")
        return EXIT_OK
    now = clock.now()
    rows = [("ID", "STATUS", "AGENT", "FILES", "+/-", "CHECKS", "AGE", "TITLE")]
    for pull in pulls:
        rows.append(
            (
                pull.id,
                pull.status.value,
                pull.agent,
                str(len(pull.files)),
                f"+{pull.additions}/-{pull.deletions}",
                pull.checks_summary,
                _age(now - pull.created_at),
                pull.title,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    return _run(args, _show)


_LETTER = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R", "copied": "C", "type_changed": "T"}


def _show(args: argparse.Namespace) -> int:
    from aipass_tui.core.diff import PullDiff
    from aipass_tui.core.pulls import PullStore
    from aipass_tui.core.store import Paths

    repo = _repo(args)
    paths = Paths(repo)
    pull = PullStore(paths).load(_pull_id(args.id))
    if args.patch:
        sys.stdout.flush()
        sys.stdout.buffer.write(PullDiff(repo, pull.base, pull.head).patch_bytes())
        sys.stdout.buffer.flush()
        return EXIT_OK
    out = [
        f"pull request #{pull.id}: {pull.title}",
        f"agent {pull.agent}, branch {pull.branch} -> {pull.target}, status {pull.status.value}",
        f"base {pull.base[:12]}, head {pull.head[:12]}" + (f", merged as {pull.merge_commit[:12]}" if pull.merge_commit else ""),
        f"created {clock.iso(pull.created_at)}, updated {clock.iso(pull.updated_at)}",
    ]
    if pull.message:
        out.append(f"note: {pull.message}")
    if pull.body:
        out += ["", pull.body]
    out += ["", f"files ({len(pull.files)}, +{pull.additions} -{pull.deletions}):"]
    for entry in pull.files:
        name = f"{entry.old_path} -> {entry.path}" if entry.old_path else entry.path
        extras = []
        if entry.binary:
            extras.append("binary")
        if entry.mode_change:
            extras.append(f"mode {entry.mode_change}")
        if pull.is_viewed(entry.path):
            extras.append("viewed")
        if entry.path in pull.violations:
            extras.append("outside the plan task's files")
        counts = "" if entry.binary else f"+{entry.additions} -{entry.deletions}"
        out.append(f"  {_LETTER.get(entry.status, '?')} {name}  {counts}" + (f"  [{', '.join(extras)}]" if extras else ""))
    if pull.conflict_files:
        out += ["", "conflicts with the target in: " + ", ".join(pull.conflict_files)]
    out += ["", f"checks ({pull.checks_summary}):"]
    for check in pull.checks:
        log = f", log .aipass/state/pulls/{check.log}" if check.log else ""
        out.append(f"  {check.status:9} {check.command}  ({check.duration:.1f} s{log})")
        if check.message:
            out.append(f"            {check.message}")
    if pull.comments:
        out += ["", "comments:"]
        for comment in pull.comments:
            where = f"{comment.path}:{comment.line}" if comment.line is not None else (comment.path or "")
            state = "sent" if comment.sent else "not sent"
            out.append(f"  #{comment.id} {where + ': ' if where else ''}{comment.body} ({state})")
    print("\n".join(out))
    return EXIT_OK


# merge / close / request-changes ------------------------------------------------------------------


def cmd_merge(args: argparse.Namespace) -> int:
    return _run(args, _merge)


def _merge(args: argparse.Namespace) -> int:
    pull_id = _pull_id(args.id)
    result = _call(args, "pr.merge", {"pull_id": pull_id, "allow_violations": bool(args.allow_violations)}, timeout=MERGE_TIMEOUT)
    if result.get("merged"):
        print(f"merged pull request #{pull_id}: {result.get('message', '')}")
        return EXIT_OK
    print(f"aipass-tui: pull request #{pull_id} was not merged: {result.get('message', 'no reason given')}", file=sys.stderr)
    if result.get("reason") == "conflict":
        agent = result.get("suggestion", {}).get("agent", "the agent")
        print(f"to ask {agent} to rebase and resolve: aipass-tui pr rebase-request {pull_id}", file=sys.stderr)
    return EXIT_FAILED


def cmd_close(args: argparse.Namespace) -> int:
    return _run(args, _close)


def _close(args: argparse.Namespace) -> int:
    pull_id = _pull_id(args.id)
    result = _call(args, "pr.close", {"pull_id": pull_id})
    print(f"closed pull request #{pull_id}; branch {result['pull']['branch']} is kept")
    return EXIT_OK


def cmd_request_changes(args: argparse.Namespace) -> int:
    return _run(args, _request_changes)


def _request_changes(args: argparse.Namespace) -> int:
    pull_id = _pull_id(args.id)
    message = sys.stdin.read() if args.message == "-" else args.message
    result = _call(args, "pr.request-changes", {"pull_id": pull_id, "message": message})
    request = result["request"]
    print(f"sent the review of pull request #{pull_id} to {request['agent']} as request {request.get('id') or '(queued)'} on branch {request['branch']}")
    return EXIT_OK


def cmd_rebase_request(args: argparse.Namespace) -> int:
    return _run(args, _rebase_request)


def _rebase_request(args: argparse.Namespace) -> int:
    pull_id = _pull_id(args.id)
    result = _call(args, "pr.rebase-request", {"pull_id": pull_id})
    request = result["request"]
    print(f"asked {request['agent']} to rebase {request['branch']} onto the target (request {request.get('id') or '(queued)'})")
    return EXIT_OK
