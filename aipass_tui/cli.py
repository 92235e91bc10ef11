"""Command-line entry: the cockpit and the headless commands.

Exit codes: 0 success, 1 the operation failed (the message gives the reason), 2 bad usage or bad input.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from aipass_tui import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A command failed; the message is printed and the process exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# ------------------------------------------------------------------------- shared helpers


def find_repo(path: str | None) -> Path:
    """Return the top folder of the git repository at ``path`` (default: the current folder)."""
    start = Path(path or ".").resolve()
    if not start.exists():
        raise CliError(f"--repo {start} does not exist", EXIT_USAGE)
    result = subprocess.run(
        ["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    )
    if result.returncode != 0:
        raise CliError(
            f"{start} is not inside a git repository: run `git init` there first, or pass --repo PATH",
            EXIT_USAGE,
        )
    return Path(result.stdout.strip())


def load(repo: Path) -> Any:
    """Load the repository's settings; a missing or invalid config is a usage error."""
    from aipass_tui.config import ConfigError, load_settings

    if not (repo / ".aipass" / "config.toml").is_file():
        raise CliError(f"no .aipass/config.toml in {repo}: run `aipass-tui init` there first", EXIT_USAGE)
    try:
        return load_settings(repo)
    except ConfigError as exc:
        raise CliError(f"invalid configuration:\n{exc}", EXIT_USAGE) from exc


def setup_logging(repo: Path, *, to_stderr: bool = False, name: str = "cockpit.log") -> None:
    logs = repo / ".aipass" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(logs / name, encoding="utf-8")]
    if to_stderr and os.environ.get("AIPASS_DEBUG"):
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(
        level=logging.DEBUG if os.environ.get("AIPASS_DEBUG") else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )


# ------------------------------------------------------------------------- init


KNOWN_CLIS = ("claude", "codex", "gemini", "aider", "ollama")

CONFIG_HEADER = """\
# aipass-tui configuration. Every key is documented in docs/configuration.md.
# Agents: one [agents.<name>] table each. kind is claude, codex, gemini, aider, ollama or command.

[limits]
max_parallel = 8          # runs executing at once
start_rate = 8.0          # run starts per second at most
cpu_hold_percent = 90     # hold new starts while CPU stays above this

[git]
# checks = ["ruff check .", "pytest -q"]   # run in the worktree before a pull request is recorded
merge_strategy = "merge"  # merge | squash | rebase
"""

COMMAND_EXAMPLE = """
# No agent CLI was found on PATH. A `command` agent runs any program; {prompt}, {subject} and
# {body} are replaced as whole arguments (never through a shell). For example:
#
# [agents.shell]
# kind = "command"
# command = ["sh", "-c", "echo \\"$1\\" >> NOTES.md", "sh", "{prompt}"]
"""


AGENT_HINTS = {
    "ollama": 'model = "llama3.2"        # the local model to run\n',
    "aider": (
        'model = "gpt-4o"          # aider needs a model and its provider key, or it waits for a browser login\n'
        '# env = { OPENAI_API_KEY = "..." }\n'
    ),
    "gemini": (
        "# Headless gemini refuses folders it does not trust (exit 55), and each agent works in a new\n"
        "# worktree. To let it run there, uncomment:\n"
        '# args = ["--skip-trust"]\n'
    ),
}


def cmd_init(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    root = repo / ".aipass"
    root.mkdir(mode=0o700, exist_ok=True)
    os.chmod(root, 0o700)
    _exclude_from_git(repo)
    config = root / "config.toml"
    if config.exists():
        print(f"{config} already exists; it was left unchanged")
        return EXIT_OK
    found = [name for name in KNOWN_CLIS if shutil.which(name)]
    text = CONFIG_HEADER
    for name in found:
        text += f'\n[agents.{name}]\nkind = "{name}"\n' + AGENT_HINTS.get(name, "")
    if not found:
        text += COMMAND_EXAMPLE
    tmp = config.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, config)
    from aipass_tui.core.store import Paths

    Paths(repo).ensure()
    agents = ", ".join(found) if found else "none (see the commented command example)"
    print(f"created {config}\nagents: {agents}")
    return EXIT_OK


def _exclude_from_git(repo: Path) -> None:
    result = subprocess.run(["git", "-C", str(repo), "rev-parse", "--git-path", "info/exclude"], capture_output=True, text=True)
    exclude = Path(result.stdout.strip())
    if not exclude.is_absolute():
        exclude = repo / exclude
    exclude.parent.mkdir(parents=True, exist_ok=True)
    lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.exists() else []
    if ".aipass/" not in lines and ".aipass" not in lines:
        with open(exclude, "a", encoding="utf-8") as handle:
            if lines and lines[-1] != "":
                handle.write("\n")
            handle.write(".aipass/\n")


# ------------------------------------------------------------------------- dispatch


def cmd_dispatch(args: argparse.Namespace) -> int:
    from aipass_tui.core.orchestrator import new_request_message
    from aipass_tui.core.store import Paths, StateWriteError, write_json

    repo = find_repo(args.repo)
    settings = load(repo)
    if args.agent not in settings.agents:
        known = ", ".join(settings.agents) or "none: add one to .aipass/config.toml"
        raise CliError(f"unknown agent {args.agent!r} (configured agents: {known})", EXIT_USAGE)
    if not args.subject.strip():
        raise CliError("the subject is empty: say what the agent should do", EXIT_USAGE)
    body = sys.stdin.read() if args.body == "-" else (args.body or "")
    message = new_request_message(args.agent, args.subject, body, priority=args.priority, sender=args.sender)
    paths = Paths(repo)
    paths.ensure()
    try:
        write_json(paths.inbox / f"{message['id']}.json", message)
    except StateWriteError as exc:
        raise CliError(str(exc)) from exc
    print(message["id"])
    return EXIT_OK


# ------------------------------------------------------------------------- work


def cmd_work(args: argparse.Namespace) -> int:
    from aipass_tui.core.notices import RequestChanged, RunFinished, RunStarted, UserNotice
    from aipass_tui.core.orchestrator import Orchestrator
    from aipass_tui.core.store import LockHeld

    repo = find_repo(args.repo)
    settings = load(repo)
    setup_logging(repo, to_stderr=True, name="work.log")
    orchestrator = Orchestrator(repo, settings, role="work")
    seen_queued: set[str] = set()

    def report(notices: list[Any]) -> None:
        for notice in notices:
            line = None
            if isinstance(notice, RequestChanged) and notice.request.status.value in ("queued", "held"):
                if notice.request.id not in seen_queued:
                    seen_queued.add(notice.request.id)
                    line = f"queued   {notice.request.id} {notice.request.agent}: {notice.request.subject}"
            elif isinstance(notice, RunStarted):
                line = f"started  {notice.run.id} (request {notice.run.request}, pid {notice.run.pid})"
            elif isinstance(notice, RunFinished):
                line = f"finished {notice.run.id} {notice.run.status.value}: {notice.run.message}"
            elif isinstance(notice, UserNotice) and notice.level != "info" and not notice.run_id:
                line = f"{notice.level}: {notice.title}: {notice.message}"
            if line:
                print(line, flush=True)

    orchestrator.subscribe(report)
    try:
        orchestrator.start()
    except LockHeld as exc:
        raise CliError(f"{exc}; stop it first or use that one") from exc
    for request in orchestrator.snapshot().requests:
        if request.status.value in ("queued", "held") and request.id not in seen_queued:
            seen_queued.add(request.id)
            print(f"queued   {request.id} {request.agent}: {request.subject}", flush=True)
    _watch_inbox(orchestrator)
    try:
        return orchestrator.run_forever(until_idle=args.until_idle)
    except KeyboardInterrupt:
        orchestrator.close()
        print("stopped; live runs keep going and the next orchestrator re-attaches", file=sys.stderr)
        return EXIT_OK


def _watch_inbox(orchestrator: Any) -> None:
    """Attach file watching and automation rules: an inbox file wakes the orchestrator at once.

    The orchestrator also scans the inbox on every tick, so requests still run if watching fails.
    The hub is closed when the process exits, which stops the commands its rules started.
    """
    import atexit

    from aipass_tui.core.automation import attach_automation

    try:
        hub = attach_automation(orchestrator)
    except OSError as exc:
        print(f"warning: file watching and automation rules are off: {exc}", file=sys.stderr)
        return
    atexit.register(hub.close)


# ------------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    from aipass_tui.core.models import AgentState, OrchestratorState, RunRecord
    from aipass_tui.core.store import Paths, StateError, lock_is_held, read_lock_info, read_model

    repo = find_repo(args.repo)
    settings = load(repo)
    paths = Paths(repo)
    problems: list[str] = []
    try:
        state = read_model(paths.orchestrator, OrchestratorState) or OrchestratorState()
    except StateError as exc:
        problems.append(str(exc))
        state = OrchestratorState()
    requests = sorted(state.requests.values(), key=lambda r: r.seq)
    runs: list[RunRecord] = []
    for run_id in state.runs:
        try:
            record = read_model(paths.run_dir(run_id) / "run.json", RunRecord)
        except StateError as exc:
            problems.append(str(exc))
            continue
        if record is not None:
            runs.append(record)
    agents = []
    for name, config in settings.agents.items():
        try:
            agent = read_model(paths.agent_state(name), AgentState)
        except StateError as exc:
            problems.append(str(exc))
            agent = None
        agent = agent or AgentState(name=name, kind=config.kind, model=config.model)
        queued = sum(1 for r in requests if r.agent == name and r.status.value in ("queued", "held"))
        agents.append({
            "name": name, "kind": config.kind, "status": agent.status.value, "request": agent.request if agent.run else None,
            "run": agent.run if agent.pid else None, "pid": agent.pid, "queued": queued,
            "subject": agent.subject if agent.pid else None, "branch": agent.branch,
        })
    orchestrator = None
    if lock_is_held(paths.orchestrator_lock):
        orchestrator = read_lock_info(paths.orchestrator_lock)
    data = {
        "agents": agents,
        "requests": [
            {"id": r.id, "agent": r.agent, "subject": r.subject, "status": r.status.value, "priority": r.priority,
             "duplicates": r.duplicates, "run": r.run, "sender": r.sender, "created_at": r.created_at,
             "held_reason": r.held_reason, "message": r.message}
            for r in requests
        ],
        "runs": [
            {"id": r.id, "agent": r.agent, "request": r.request, "status": r.status.value, "exit_code": r.exit_code,
             "pid": r.pid, "started_at": r.started_at, "ended_at": r.ended_at,
             "input_tokens": r.summary.input_tokens, "output_tokens": r.summary.output_tokens,
             "cost_usd": round(r.summary.cost_usd, 6), "message": r.message, "node": r.node}
            for r in sorted(runs, key=lambda r: r.started_at or 0)
        ],
        "orchestrator": orchestrator,
        "problems": problems,
    }
    _add_optional_status(repo, data)
    if args.json:
        print(json.dumps(data, indent=2))
        return EXIT_OK
    _print_status(data)
    return EXIT_OK


def _add_optional_status(repo: Path, data: dict[str, Any]) -> None:
    try:
        gitflow = importlib.import_module("aipass_tui.core.gitflow")
    except ModuleNotFoundError:
        return
    holder = getattr(gitflow, "repo_lock_holder", None)
    if holder is not None:
        try:
            data["repo_lock"] = holder(repo)
        except Exception as exc:  # status must still print when git is unhappy
            data["problems"].append(f"could not read the repo lock: {exc}")
    lister = getattr(gitflow, "list_pull_summaries", None)
    if lister is not None:
        try:
            data["pulls"] = lister(repo)
        except Exception as exc:
            data["problems"].append(f"could not read pull requests: {exc}")


def _print_status(data: dict[str, Any]) -> None:
    from aipass_tui.core.render import shorten

    holder = data.get("orchestrator")
    print(f"orchestrator: {'pid ' + str(holder.get('pid')) + ' (' + str(holder.get('role')) + ')' if holder else 'not running'}")
    if data.get("repo_lock"):
        lock = data["repo_lock"]
        print(f"repo lock: held by pid {lock.get('pid')} ({lock.get('holder', '?')})")
    print()
    print(f"{'AGENT':<18} {'KIND':<8} {'STATUS':<9} {'QUEUED':>6}  SUBJECT")
    for agent in data["agents"]:
        print(f"{agent['name']:<18} {agent['kind']:<8} {agent['status']:<9} {agent['queued']:>6}  {shorten(agent.get('subject') or '', 60)}")
    open_requests = [r for r in data["requests"] if r["status"] in ("queued", "held", "running")]
    if open_requests:
        print()
        print(f"{'REQUEST':<28} {'AGENT':<14} {'STATUS':<9} {'PRIO':>4} {'DUP':>3}  SUBJECT")
        for r in open_requests:
            why = f" ({r['held_reason']})" if r.get("held_reason") else ""
            print(f"{r['id']:<28} {r['agent']:<14} {r['status']:<9} {r['priority']:>4} {r['duplicates']:>3}  {shorten(r['subject'], 50)}{why}")
    recent = data["runs"][-10:]
    if recent:
        print()
        print(f"{'RUN':<40} {'STATUS':<10} {'EXIT':>4}  MESSAGE")
        for r in recent:
            code = "" if r["exit_code"] is None else str(r["exit_code"])
            print(f"{r['id']:<40} {r['status']:<10} {code:>4}  {shorten(r.get('message') or '', 60)}")
    for problem in data["problems"]:
        print(f"problem: {problem}", file=sys.stderr)


# ------------------------------------------------------------------------- logs


def cmd_logs(args: argparse.Namespace) -> int:
    from aipass_tui.core.models import Event, RunRecord
    from aipass_tui.core.render import format_event
    from aipass_tui.core.store import Paths, StateError, read_model

    repo = find_repo(args.repo)
    settings = load(repo)
    paths = Paths(repo)
    run_id = _resolve_run(paths, settings, args.target)
    run_dir = paths.run_dir(run_id)
    events_path = run_dir / "events.jsonl"
    offset = 0
    width = shutil.get_terminal_size((200, 24)).columns if sys.stdout.isatty() else 100_000
    while True:
        if events_path.exists():
            with open(events_path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            for line in chunk[:end].splitlines():
                try:
                    event = Event.from_dict(json.loads(line))
                except ValueError:
                    continue
                print(format_event(event, width) if not args.raw else line.decode("utf-8", "replace"), flush=True)
            offset += end
        if not args.follow:
            break
        try:
            record = read_model(run_dir / "run.json", RunRecord)
        except StateError:
            record = None
        if record is not None and record.status.value not in ("starting", "running"):
            if not events_path.exists() or events_path.stat().st_size <= offset:
                print(f"-- run {run_id} {record.status.value}: {record.message}")
                break
        time.sleep(0.2)
    return EXIT_OK


def _resolve_run(paths: Any, settings: Any, target: str) -> str:
    from aipass_tui.core.models import OrchestratorState
    from aipass_tui.core.store import StateError, read_model

    if paths.run_dir(target).is_dir():
        return target
    try:
        state = read_model(paths.orchestrator, OrchestratorState) or OrchestratorState()
    except StateError as exc:
        raise CliError(str(exc)) from exc
    if target in settings.agents:
        runs = [rid for rid in state.runs if rid.startswith(target + "-")]
        if not runs:
            raise CliError(f"agent {target!r} has no runs yet")
        return max(runs, key=lambda rid: (paths.run_dir(rid) / "run.json").stat().st_mtime if (paths.run_dir(rid) / "run.json").exists() else 0)
    matches = [rid for rid in state.runs if target in rid]
    if len(matches) == 1:
        return matches[0]
    raise CliError(f"no agent or run named {target!r}; `aipass-tui status` lists both", EXIT_USAGE)


# ------------------------------------------------------------------------- stop / cancel


def cmd_stop(args: argparse.Namespace) -> int:
    return _call(args, "stop", {"target": args.target}, lambda r: f"stopped {', '.join(r['stopped'])}")


def cmd_cancel(args: argparse.Namespace) -> int:
    return _call(args, "request.cancel", {"id": args.request}, lambda r: f"{r['id']}: {r['status']}")


def _call(args: argparse.Namespace, name: str, payload: dict[str, Any], describe: Callable[[dict[str, Any]], str]) -> int:
    from aipass_tui.core.handlers import HandlerError, call
    from aipass_tui.core.store import Paths

    repo = find_repo(args.repo)
    settings = load(repo)
    setup_logging(repo, name="commands.log")
    try:
        result = call(Paths(repo), settings, name, payload)
    except HandlerError as exc:
        raise CliError(str(exc), exc.exit_code) from exc
    print(describe(result))
    return EXIT_OK


# ------------------------------------------------------------------------- cockpit and demo


def cmd_cockpit(args: argparse.Namespace) -> int:
    repo = find_repo(args.repo)
    settings = load(repo)
    setup_logging(repo)
    from aipass_tui.core.store import LockHeld
    from aipass_tui.ui.app import run_cockpit

    try:
        return run_cockpit(repo, settings, low_bandwidth=args.low_bandwidth) or EXIT_OK
    except LockHeld as exc:
        raise CliError(f"{exc}; close it first (the cockpit re-attaches to running agents)") from exc


def cmd_demo(args: argparse.Namespace) -> int:
    from aipass_tui.demo import create_demo_repo

    repo = create_demo_repo(Path(args.path) if args.path else None)
    print(f"demo repository: {repo}\nthese agents are scripted demo programs, not AI models", file=sys.stderr)
    if args.no_ui:
        print(repo)
        return EXIT_OK
    args.repo = str(repo)
    code = cmd_cockpit(args)
    print(f"reopen the demo with: {_program()} --repo {repo}", file=sys.stderr)
    return code


def _program() -> str:
    """Return how this command was started, so a printed command line works as typed.

    The README's install leaves ``aipass-tui`` in the virtualenv, off PATH, so a bare
    ``aipass-tui`` would not be found.
    """
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.name == "aipass-tui":
        return str(started)
    return f"{sys.executable} -m aipass_tui"


# ------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aipass-tui", description="Run and supervise many AI coding agents on one git repository.")
    parser.add_argument("--version", action="version", version=f"aipass-tui {__version__}")
    parser.add_argument("--repo", help="the git repository (default: the current folder)")
    bandwidth = parser.add_mutually_exclusive_group()
    bandwidth.add_argument("--low-bandwidth", dest="low_bandwidth", action="store_true", default=None, help="fewer frames and slower output updates (default: on over SSH)")
    bandwidth.add_argument("--no-low-bandwidth", dest="low_bandwidth", action="store_false", help="full frame rate even over SSH")
    parser.set_defaults(func=cmd_cockpit)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--repo", default=argparse.SUPPRESS, help="the git repository (default: the current folder)")
        command.set_defaults(func=func)
        return command

    add("init", cmd_init, "create .aipass/ with an agent for each CLI found on PATH")
    dispatch = add("dispatch", cmd_dispatch, "queue a request for an agent")
    dispatch.add_argument("agent")
    dispatch.add_argument("subject")
    dispatch.add_argument("body", nargs="?", default="", help="request body; '-' reads it from standard input")
    dispatch.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    dispatch.add_argument("--from", dest="sender", default=os.environ.get("AIPASS_AGENT", "user"), help="sender name (default: $AIPASS_AGENT or 'user')")
    work = add("work", cmd_work, "run the orchestrator without the cockpit")
    work.add_argument("--until-idle", action="store_true", help="exit when nothing is queued or running (exit 1 if any run failed)")
    status = add("status", cmd_status, "show agents, queue and runs")
    status.add_argument("--json", action="store_true", help="print JSON")
    logs = add("logs", cmd_logs, "print a run's output as readable events")
    logs.add_argument("target", metavar="AGENT|RUN")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing until the run ends")
    logs.add_argument("--raw", action="store_true", help="print the normalized events as JSON lines")
    stop = add("stop", cmd_stop, "stop a run and its whole process tree")
    stop.add_argument("target", metavar="AGENT|RUN")
    cancel = add("cancel", cmd_cancel, "cancel a queued or running request")
    cancel.add_argument("request", metavar="REQUEST")
    demo = add("demo", cmd_demo, "open the cockpit on a sample repository with scripted demo agents")
    demo.add_argument("--path", help="where to create the demo repository (default: a new temporary folder)")
    demo.add_argument("--no-ui", action="store_true", help="only create the repository and print its path")
    for module in ("aipass_tui.commands.plan", "aipass_tui.commands.pr"):
        try:
            registrar = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        registrar.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "repo"):
        args.repo = None
    if not hasattr(args, "low_bandwidth"):
        args.low_bandwidth = None
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"aipass-tui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (for example `| head`) stopped early; that is not an error of this command.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
