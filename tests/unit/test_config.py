"""Configuration loading, validation messages and documentation."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from aipass_tui.config import (
    AgentConfig,
    AutomationRule,
    ClusterSettings,
    ConfigError,
    GitSettings,
    Limits,
    Settings,
    Resources,
    UISettings,
    environment_overrides,
    load_settings,
    parse_duration,
)
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("250ms", 0.25), (12, 12), (1.5, 1.5), ("1d", 86400)],
)
def test_duration_forms(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "m5", "-1", "1h 2q", True])
def test_duration_rejects_bad_values(text: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, """
        [limits]
        max_parallel = 0

        [agents.a]
        kind = "claude"
        timeout = "soon"
        colour = "red"

        [agents.b]
        kind = "command"
    """)
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    problems = excinfo.value.problems
    assert f"{config}:3: limits.max_parallel: Input should be greater than or equal to 1 (got 0)" in problems
    assert f"{config}:7: agents.a.timeout: invalid duration 'soon': use forms such as '90s', '5m', '2h' or '1h30m'" in problems
    assert f"{config}:8: agents.a.colour: unknown key 'colour': check its spelling against the documented keys" in problems
    assert f'{config}:10: agents.b: kind = "command" needs a command list, for example command = ["make", "test"]' in problems


def test_agent_named_like_a_kind_is_located(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[agents.codex]\nkind = "codexx"\n')
    with pytest.raises(ConfigError) as excinfo:
        load_settings(tmp_path)
    problem = excinfo.value.problems[0]
    assert problem.startswith(f"{config}:2: agents.codex.kind: Input should be ")
    assert problem.endswith("(got 'codexx')")


def test_invalid_toml_is_reported(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[agents.a\nkind = 1\n")
    with pytest.raises(ConfigError, match=f"{config}: invalid TOML"):
        load_settings(tmp_path)


def test_environment_overrides_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = tmp_path / "xdg"
    (xdg / "aipass-tui").mkdir(parents=True)
    (xdg / "aipass-tui" / "config.toml").write_text('[ui]\ntheme = "nord"\n[limits]\nmax_parallel = 2\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    write_config(tmp_path, "[limits]\nmax_parallel = 3\n")
    settings = load_settings(tmp_path)
    assert settings.ui.theme == "nord"
    assert settings.limits.max_parallel == 3
    monkeypatch.setenv("AIPASS_LIMITS__MAX_PARALLEL", "5")
    assert load_settings(tmp_path).limits.max_parallel == 5


def test_environment_variables_cover_tables_lists_and_case(tmp_path: Path) -> None:
    write_config(tmp_path, '[agents.a]\nkind = "command"\ncommand = ["true"]\n')
    environ = {
        "aipass_ui__theme": "nord",
        "AIPASS_UI__KEYS": '{"dispatch": "ctrl+d"}',
        "AIPASS_AGENTS__A__COMMAND": '["echo", "hi"]',
        "AIPASS_AGENTS__A__MODEL": "[not json, a model name]",
        "AIPASS_LIMITS": '{"start_rate": 3}',
        "AIPASS_LIMITS__MAX_PARALLEL": "7",
        "AIPASS_RUN_ID": "a-20261205T000000Z-1",
        "AIPASS_AGENT": "a",
        "PATH": "/usr/bin",
    }
    settings = load_settings(tmp_path, environ)
    assert settings.ui.theme == "nord"
    assert settings.ui.keys == {"dispatch": "ctrl+d"}
    assert settings.agents["a"].command == ["echo", "hi"]
    assert settings.agents["a"].model == "[not json, a model name]"
    assert (settings.limits.start_rate, settings.limits.max_parallel) == (3, 7)
    overrides, variables = environment_overrides(environ)
    assert set(overrides) == {"ui", "agents", "limits"}
    assert variables[("limits", "max_parallel")] == "AIPASS_LIMITS__MAX_PARALLEL"


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    write_config(tmp_path, "[limits]\nmax_parallel = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, {"AIPASS_LIMITS__MAX_PARALLEL": "many"})
    assert caught.value.problems[0].startswith("environment variable AIPASS_LIMITS__MAX_PARALLEL: limits.max_parallel: ")
    assert "'many'" in caught.value.problems[0]
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path, {"AIPASS_LIMITS__NO_SUCH_KEY": "1"})
    assert "AIPASS_LIMITS__NO_SUCH_KEY" in str(caught.value)
    assert "unknown key 'no_such_key'" in str(caught.value)
    with pytest.raises(ConfigError, match=r"environment variable AIPASS_UI__KEYS: invalid JSON for ui\.keys"):
        load_settings(tmp_path, {"AIPASS_UI__KEYS": "{dispatch: n}"})
    # A file error is still located in the file while a variable sets a neighbouring key.
    write_config(tmp_path, '[limits]\nstart_rate = "fast"\n')
    with pytest.raises(ConfigError, match=r"config\.toml:2: limits\.start_rate"):
        load_settings(tmp_path, {"AIPASS_LIMITS__MAX_PARALLEL": "4"})


def test_command_kind_needs_argv_and_others_reject_it() -> None:
    with pytest.raises(ValueError, match="needs a command list"):
        AgentConfig(kind="command")
    with pytest.raises(ValueError, match='only used with kind = "command"'):
        AgentConfig(kind="claude", command=["x"])


def test_automation_rule_needs_one_trigger() -> None:
    with pytest.raises(ValueError, match="exactly one trigger"):
        AutomationRule(name="r", action="notify")
    with pytest.raises(ValueError, match="exactly one trigger"):
        AutomationRule(name="r", action="notify", every="5m", at="02:00")
    with pytest.raises(ValueError, match="24-hour"):
        AutomationRule(name="r", action="notify", at="25:00")
    assert AutomationRule(name="r", action="notify", every="30m").every == 1800


def test_automation_rule_agent_must_exist() -> None:
    with pytest.raises(ValueError, match="unknown agent 'ghost'"):
        Settings(automation=[{"name": "r", "action": "dispatch", "agent": "ghost", "every": "1m"}])


def test_agent_names_are_checked() -> None:
    with pytest.raises(ValueError, match="invalid agent name"):
        Settings(agents={"bad name": {"kind": "command", "command": ["true"]}})


def _docs_script():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "scripts" / "gen_config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model", [AgentConfig, Resources, Limits, GitSettings, UISettings, AutomationRule, ClusterSettings, Settings])
def test_every_field_is_documented(model: type) -> None:
    docs = _docs_script().field_docs()
    undocumented = [name for name in model.model_fields if not docs.get((model.__name__, name))]
    assert undocumented == []


def test_configuration_docs_are_current() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"], cwd=ROOT)
    assert result.returncode == 0, "docs/configuration.md is stale: run python scripts/gen_config_docs.py"
