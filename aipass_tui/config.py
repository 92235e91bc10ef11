"""Typed configuration: ``.aipass/config.toml``, the user's XDG config and ``AIPASS_*`` variables.

Precedence, highest first: ``AIPASS_*`` environment variables (nested keys joined with ``__``,
for example ``AIPASS_LIMITS__MAX_PARALLEL=4``), the repository's ``.aipass/config.toml``, the
user's ``$XDG_CONFIG_HOME/aipass-tui/config.toml``, then the defaults below.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

AGENT_KINDS = ("claude", "codex", "gemini", "aider", "ollama", "command")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Parse ``"2h"``, ``"5m"``, ``"1h30m"``, ``"45s"``, ``"250ms"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: use a number of seconds or a string such as '5m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        return float(value)
    text = str(value).strip().lower().replace(" ", "")
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {value!r}: use forms such as '90s', '5m', '2h' or '1h30m'")
    return total


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    # Field documentation is in the attribute docstrings below, and scripts/gen_config_docs.py reads
    # it from this file's source. Pydantic's use_attribute_docstrings would parse this module at
    # every start (about 13 ms, measured with python -X importtime).
    model_config = ConfigDict(extra="forbid")


class Resources(Strict):
    """Cluster resources one run needs when ``runner = "ray"``."""

    cpus: float = 1.0
    """CPUs reserved for the run on its node."""
    memory: str | None = None
    """Memory reserved for the run, for example ``"1GB"``."""
    custom: dict[str, float] = Field(default_factory=dict)
    """Custom Ray resources, for example ``{agent_slot = 1}``."""


class AgentConfig(Strict):
    """One configured agent: ``[agents.<name>]``."""

    kind: Literal["claude", "codex", "gemini", "aider", "ollama", "command"]
    """The agent CLI this agent runs."""
    model: str | None = None
    """Model name passed to the CLI (``--model``/``-m``; for ollama the model to run)."""
    args: list[str] = Field(default_factory=list)
    """Extra arguments added to the CLI's argv."""
    binary: str | None = None
    """Path of the CLI to run instead of the one found on PATH."""
    command: list[str] | None = None
    """For ``kind = "command"``: the argv; ``{prompt}``, ``{subject}`` and ``{body}`` are replaced as whole arguments."""
    isolation: Literal["worktree", "shared"] = "worktree"
    """``worktree``: own git worktree and branch; ``shared``: work in the repository itself."""
    timeout: Duration = 7200.0
    """Hard limit of one run (for example ``"2h"``); the run is stopped and marked ``timed_out``."""
    stall_after: Duration = 300.0
    """No output for this long marks the run stalled."""
    stall_action: Literal["notify", "stop", "retry"] = "notify"
    """Action on a stall: only mark and notify, stop the run, or stop it and retry once."""
    env: dict[str, str] = Field(default_factory=dict)
    """Environment variables set for this agent's runs."""
    env_drop: list[str] = Field(default_factory=list)
    """Environment variables removed before this agent starts (added to ``limits.env_drop``)."""
    checks: list[str] | None = None
    """Checks for this agent's pull requests, replacing ``git.checks``."""
    permission_mode: str | None = None
    """Claude's ``--permission-mode`` (default ``acceptEdits``)."""
    runner: Literal["local", "ray"] = "local"
    """Place where runs execute: this machine, or a node of the Ray cluster in ``[cluster]``."""
    resources: Resources = Field(default_factory=Resources)
    """Resources a cluster run needs."""
    price_per_mtok: tuple[float, float] | None = None
    """Input and output price in USD per million tokens, for CLIs that report no cost (codex, gemini)."""

    @model_validator(mode="after")
    def _command_needs_argv(self) -> "AgentConfig":
        if self.kind == "command" and not self.command:
            raise ValueError('kind = "command" needs a command list, for example command = ["make", "test"]')
        if self.kind != "command" and self.command:
            raise ValueError(f'command is only used with kind = "command", not kind = "{self.kind}"')
        if self.runner == "ray" and self.isolation == "shared":
            raise ValueError('runner = "ray" needs isolation = "worktree": a cluster run works in its own clone')
        return self


class Limits(Strict):
    """``[limits]``: admission control for the whole orchestrator."""

    max_parallel: int = Field(8, ge=1)
    """Runs executing at once, across all agents."""
    start_rate: float = Field(8.0, gt=0)
    """Run starts per second at most; starts beyond it are staggered."""
    cpu_hold_percent: float = Field(90.0, gt=0, le=100)
    """Hold new starts while the CPU use of the usable CPUs stays above this percentage."""
    cpu_hold_seconds: Duration = 5.0
    """How long CPU use must stay above ``cpu_hold_percent`` before starts are held."""
    stop_grace: Duration = 3.0
    """Time between SIGTERM and SIGKILL when a run is stopped."""
    env_drop: list[str] = Field(default_factory=list)
    """Environment variables removed before any agent starts (names or ``PREFIX_*`` patterns)."""


class GitSettings(Strict):
    """``[git]``: worktrees, checks and merging."""

    target_branch: str | None = None
    """Branch that agents branch from and merge into; default: the branch checked out at start."""
    merge_strategy: Literal["merge", "squash", "rebase"] = "merge"
    """Merge method for an approved pull request."""
    checks: list[str] = Field(default_factory=list)
    """Commands run in the worktree before a pull request is recorded (split like a shell, never run by one)."""
    check_timeout: Duration = 600.0
    """Time limit of each check."""


class UISettings(Strict):
    """``[ui]``: the cockpit."""

    theme: str = "textual-dark"
    """A Textual theme name."""
    low_bandwidth: bool | None = None
    """Fewer frames and slower output flushes; default: on when ``SSH_CONNECTION`` is set."""
    keys: dict[str, str] = Field(default_factory=dict)
    """Key remapping by binding id, for example ``{"dispatch" = "ctrl+n"}``."""
    flush_hz: float = Field(8.0, gt=0, le=30)
    """How often visible panes receive buffered output, per second."""
    scrollback: int = Field(2000, ge=100)
    """Output lines kept in memory per agent."""


class AutomationRule(Strict):
    """``[[automation]]``: react to file events or a schedule."""

    name: str
    """Name shown in the cockpit and the event log."""
    enabled: bool = True
    """Whether the rule fires; it can also be switched in the cockpit."""
    paths: list[str] = Field(default_factory=list)
    """Globs relative to the repository root that trigger the rule."""
    events: list[Literal["created", "modified", "deleted", "moved"]] = Field(
        default_factory=lambda: ["created", "modified", "deleted", "moved"]
    )
    """File events that trigger the rule."""
    debounce: Duration = 1.0
    """Events closer together than this are one trigger."""
    every: Duration | None = None
    """Schedule: run every interval, for example ``"30m"``."""
    at: str | None = None
    """Schedule: run daily at this local time, ``"HH:MM"``."""
    action: Literal["dispatch", "notify", "command"]
    """Action of the rule: queue a request, show a notification, or run a command."""
    agent: str | None = None
    """For ``dispatch``: the agent that receives the request."""
    subject: str = "Automation: {paths}"
    """Request subject or notification text; ``{paths}`` and ``{time}`` are replaced."""
    body: str = ""
    """Request body; ``{paths}`` and ``{time}`` are replaced."""
    command: list[str] | None = None
    """For ``command``: the argv, never run through a shell."""
    timeout: Duration = 300.0
    """Time limit of a ``command`` action."""

    @model_validator(mode="after")
    def _check_trigger_and_action(self) -> "AutomationRule":
        triggers = sum(bool(x) for x in (self.paths, self.every, self.at))
        if triggers != 1:
            raise ValueError("set exactly one trigger: paths (file events), every or at (schedule)")
        if self.at is not None and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", self.at):
            raise ValueError(f"invalid at = {self.at!r}: use 24-hour local time such as '02:00'")
        if self.action == "dispatch" and not self.agent:
            raise ValueError('action = "dispatch" needs agent = "<name>"')
        if self.action == "command" and not self.command:
            raise ValueError('action = "command" needs command = ["program", "arg", ...]')
        return self


class ClusterSettings(Strict):
    """``[cluster]``: running agents on a Ray cluster."""

    address: str | None = None
    """Ray cluster address, for example ``"127.0.0.1:6379"``."""
    repo_url: str | None = None
    """Git remote that both the orchestrator and the nodes can reach."""


class Settings(Strict):
    """The whole configuration."""

    agents: dict[str, AgentConfig] = Field(default_factory=dict)
    """The agents, one ``[agents.<name>]`` table each."""
    limits: Limits = Field(default_factory=Limits)
    """Admission control."""
    git: GitSettings = Field(default_factory=GitSettings)
    """Worktrees, checks and merging."""
    ui: UISettings = Field(default_factory=UISettings)
    """The cockpit."""
    automation: list[AutomationRule] = Field(default_factory=list)
    """Automation rules, one ``[[automation]]`` table each."""
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    """Running agents on a Ray cluster."""

    @model_validator(mode="after")
    def _check_agent_names(self) -> "Settings":
        for name in self.agents:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise ValueError(
                    f"invalid agent name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
                )
        for rule in self.automation:
            if rule.agent and rule.agent not in self.agents:
                raise ValueError(f"automation rule {rule.name!r} names unknown agent {rule.agent!r}")
        return self


class ConfigError(Exception):
    """Invalid configuration; ``problems`` contains one ``FILE:LINE: message`` per error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "aipass-tui" / "config.toml"


def load_settings(repo: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate the configuration for ``repo``; raise ConfigError naming file and line.

    ``environ`` defaults to ``os.environ``; its ``AIPASS_*`` variables override the files.
    """
    sources: list[tuple[Path, str, dict[str, Any]]] = []
    for path in (user_config_path(), repo / ".aipass" / "config.toml"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            try:
                sources.append((path, text, tomllib.loads(text)))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError([f"{path}: invalid TOML: {exc}"]) from exc
    merged: dict[str, Any] = {}
    for _, _, data in sources:
        merged = _deep_merge(merged, data)
    overrides, variables = environment_overrides(os.environ if environ is None else environ)
    merged = _deep_merge(merged, overrides)
    try:
        return Settings(**merged)
    except ValidationError as exc:
        raise ConfigError([_describe(err, sources, variables) for err in exc.errors()]) from exc


ENV_PREFIX = "AIPASS_"
ENV_NESTING = "__"


def environment_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Return the settings that ``AIPASS_*`` variables give, and the variable behind each key path.

    ``AIPASS_LIMITS__MAX_PARALLEL=4`` sets ``limits.max_parallel``; names are case-insensitive and
    nested keys are joined with ``__``. A value for a table or a list (``AIPASS_UI__KEYS``,
    ``AIPASS_AGENTS__A__COMMAND``) is JSON. Variables whose first key is not a configuration
    table (``AIPASS_RUN_ID``, set for agent runs) are not settings and are skipped.
    """
    out: dict[str, Any] = {}
    variables: dict[tuple[str, ...], str] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = tuple(name[len(ENV_PREFIX):].lower().split(ENV_NESTING))
        if path[0] not in Settings.model_fields or not all(path):
            continue
        value = environ[name]
        annotation = _annotation_at(path)
        if annotation is not str and value.lstrip()[:1] in ("{", "["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError([f"environment variable {name}: invalid JSON for {'.'.join(path)}: {exc}; give a JSON table or list, for example '{{\"key\": \"value\"}}' or '[\"a\", \"b\"]'"]) from exc
        node = out
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[path[-1]] = value
        variables[path] = name
    return out, variables


def _annotation_at(path: tuple[str, ...]) -> Any:
    """Return the type of the setting at ``path`` (None when the path names no setting)."""
    annotation: Any = Settings
    for key in path:
        annotation = _strip_optional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(key)
            if field is None:
                return None
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
    return _strip_optional(annotation)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(err: Any, sources: list[tuple[Path, str, dict[str, Any]]], variables: dict[tuple[str, ...], str]) -> str:
    loc = [str(part) for part in err["loc"] if not str(part).startswith("function-")]
    key = ".".join(loc) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] not in ("extra_forbidden", "missing", "value_error") and not isinstance(err.get("input"), (dict, list)):
        message += f" (got {err.get('input')!r})"
    if err["type"] == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}: check its spelling against the documented keys"
    elif err["type"] == "missing":
        message = f"missing required key {loc[-1]!r}"
    for depth in range(len(loc), 0, -1):
        variable = variables.get(tuple(loc[:depth]))
        if variable is not None:
            return f"environment variable {variable}: {key}: {message}"
    for path, text, _ in reversed(sources):
        line = locate_key(text, loc)
        if line:
            return f"{path}:{line}: {key}: {message}"
    where = sources[-1][0] if sources else "configuration"
    return f"{where}: {key}: {message}"


def locate_key(text: str, loc: list[str]) -> int | None:
    """Return the 1-based line of the TOML key at ``loc`` (for example agents.a.timeout), if found."""
    table: list[str] = []
    array_counts: dict[str, int] = {}
    best: int | None = None
    target = [part for part in loc if not part.isdigit()]
    index = next((int(part) for part in loc if part.isdigit()), None)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.fullmatch(r"\[\[\s*([^\]]+?)\s*\]\]", stripped) or re.fullmatch(r"\[\s*([^\]]+?)\s*\]", stripped)
        if header:
            table = [part.strip().strip('"') for part in header.group(1).split(".")]
            if stripped.startswith("[["):
                name = ".".join(table)
                array_counts[name] = array_counts.get(name, -1) + 1
            if _matches_table(table, target, index, array_counts):
                best = best or number
                if table == target:
                    return number
            continue
        keyed = re.match(r'\s*"?([A-Za-z0-9_.-]+)"?\s*=', line)
        if keyed and _matches_table(table, target, index, array_counts):
            full = table + [part.strip('"') for part in keyed.group(1).split(".")]
            if full == target[: len(full)] and len(full) >= len(target) - 1:
                if full == target:
                    return number
                best = best or number
    return best


def _matches_table(table: list[str], target: list[str], index: int | None, counts: dict[str, int]) -> bool:
    if not table or target[: len(table)] != table:
        return False
    name = ".".join(table)
    return index is None or name not in counts or counts[name] == index
