"""Named state-changing commands that other processes hand to the running orchestrator.

A command such as ``stop`` or ``pr.merge`` is registered here with ``@handler``. The CLI calls
``call()``: when an orchestrator runs, the command travels through the inbox and the CLI waits
for the reply; otherwise the CLI takes the orchestrator lock for the moment it needs and runs the
handler itself, so state always has one writer.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from aipass_tui.config import Settings
from aipass_tui.core import clock
from aipass_tui.core.store import FileLock, LockHeld, Paths, read_json, write_json

if TYPE_CHECKING:
    from aipass_tui.core.orchestrator import Orchestrator


class HandlerError(Exception):
    """A command failed; ``exit_code`` is 1 for a failed operation and 2 for bad input."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class HandlerContext:
    paths: Paths
    settings: Settings
    orchestrator: "Orchestrator | None" = None
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[..., dict[str, Any]]
_HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register a function as the handler of command ``name``."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[name] = fn
        return fn

    return register


def run_handler(ctx: HandlerContext, name: str, args: dict[str, Any]) -> dict[str, Any]:
    _load_builtin_handlers()
    fn = _HANDLERS.get(name)
    if fn is None:
        raise HandlerError(f"unknown command {name!r}", 2)
    return fn(ctx, **args)


def _load_builtin_handlers() -> None:
    # Modules that register handlers are imported lazily to keep the CLI's start fast.
    import importlib

    for module in ("aipass_tui.core.orchestrator", "aipass_tui.core.gitflow", "aipass_tui.core.plans"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def call(paths: Paths, settings: Settings, name: str, args: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Run command ``name`` through the running orchestrator, or directly when none runs."""
    from aipass_tui.core.orchestrator import Orchestrator

    paths.ensure()
    lock = FileLock(paths.orchestrator_lock, role=f"command {name}")
    try:
        lock.acquire()
    except LockHeld:
        return _call_running(paths, name, args, timeout)
    try:
        orchestrator = Orchestrator(paths.repo, settings, lock=lock, role=f"command {name}")
        orchestrator.load()
        try:
            return run_handler(HandlerContext(paths, settings, orchestrator), name, args)
        except KeyError as exc:  # an unknown id: bad input
            raise HandlerError(str(exc.args[0]) if exc.args else str(exc), 2) from exc
        except ValueError as exc:  # a valid id in the wrong state for this command
            raise HandlerError(str(exc), 1) from exc
        finally:
            orchestrator.flush(force=True)
    finally:
        lock.release()


def _call_running(paths: Paths, name: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    command_id = clock.new_id("c")
    message = {"type": "command", "id": command_id, "name": name, "args": args, "pid": os.getpid()}
    write_json(paths.inbox / f"{command_id}.json", message)
    reply_path = paths.replies / f"{command_id}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reply_path.exists():
            reply = read_json(reply_path)
            reply_path.unlink(missing_ok=True)
            if reply.get("ok"):
                return reply.get("result") or {}
            raise HandlerError(reply.get("error", "the orchestrator reported a failure"), int(reply.get("exit_code", 1)))
        time.sleep(0.02)
    raise HandlerError(
        f"the running orchestrator did not reply to {name!r} within {timeout:.0f} s (timed out); "
        f"check it is responsive (aipass-tui status), then try again"
    )


def write_reply(paths: Paths, command_id: str, ok: bool, result: dict[str, Any] | None = None, error: str = "", exit_code: int = 0) -> None:
    write_json(paths.replies / f"{command_id}.json", {"ok": ok, "result": result, "error": error, "exit_code": exit_code})


def load_message(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
