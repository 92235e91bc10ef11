"""Placeholders left from a template: each one reported with its position, and code in prompts left alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aipass_tui.config import Settings
from aipass_tui.core.plans import PlanInvalid, check, create_plan, load_plan, validate
from aipass_tui.core.plans.placeholders import Placeholder, find_placeholders, known_placeholders
from aipass_tui.core.plans.toml_positions import scan
from aipass_tui.core.store import Paths

AGENTS = {"alice": {"kind": "command", "command": ["true"]}, "bob": {"kind": "command", "command": ["true"]}}
PROMPT_HINT = "replace it with the text it asks for, because the agent receives the prompt word for word"
FILLED = '''\
title = "Login"
goal = "Users sign in"

[[phases]]
name = "Build"
goal = "It works"

[[phases.tasks]]
id = "api"
agent = "alice"
title = "Add the login endpoint"
prompt = """
Add POST /login to src/api/login.py.
Done when: pytest -q tests/test_login.py passes.
"""
files = ["src/api/**", "tests/test_login.py"]
'''


@pytest.fixture
def settings() -> Settings:
    return Settings(agents=AGENTS)


def problems_of(text: str, settings: Settings, repo: Path | None, tmp_path: Path) -> list[str]:
    plan = tmp_path / "plan.toml"
    plan.write_text(text, encoding="utf-8")
    return [str(p).replace(str(plan), "plan.toml") for p in validate(plan, settings, repo)]


def line_and_column(text: str, needle: str) -> tuple[int, int]:
    """Return the 1-based line and column where ``needle`` first starts in ``text``."""
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def test_filled_plan_passes(settings: Settings, repo: Path, tmp_path: Path) -> None:
    assert problems_of(FILLED, settings, repo, tmp_path) == []


def test_template_text_in_task_body(settings: Settings, repo: Path, tmp_path: Path) -> None:
    text = FILLED.replace("Add POST /login to src/api/login.py.", "<Describe the change: which module, which function or class, what it must do.>")
    text = text.replace("pytest -q tests/test_login.py passes.", "<the test or command that proves it, for example pytest -q tests/test_feature.py>.")
    first = line_and_column(text, "<Describe the change")
    second = line_and_column(text, "<the test or command")
    assert problems_of(text, settings, repo, tmp_path) == [
        f"plan.toml:{first[0]}:{first[1]}: phases[0].tasks[0].prompt: placeholder '<Describe the change: which module, which…>' "
        f"is still in the plan: {PROMPT_HINT}",
        f"plan.toml:{second[0]}:{second[1]}: phases[0].tasks[0].prompt: placeholder '<the test or command that proves it, for…>' "
        f"is still in the plan: {PROMPT_HINT}",
    ]
    assert second == (14, 12)


def test_placeholder_as_phase_name(settings: Settings, repo: Path, tmp_path: Path) -> None:
    text = FILLED.replace('name = "Build"', 'name = "<name the phase>"')
    assert problems_of(text, settings, repo, tmp_path) == [
        "plan.toml:5:9: phases[0].name: placeholder '<name the phase>' is still in the plan: replace it with a short name for the phase",
    ]


def test_placeholder_in_glob(settings: Settings, repo: Path, tmp_path: Path) -> None:
    text = FILLED.replace('"tests/test_login.py"]', '"tests/<test_file>.py"]')
    assert problems_of(text, settings, repo, tmp_path) == [
        "plan.toml:16:31: phases[0].tasks[0].files[1]: glob 'tests/<test_file>.py' still contains the placeholder '<test_file>': "
        "replace it with a real file or folder name, so that the glob matches the files this task may change",
    ]


def test_any_angle_text_in_glob(settings: Settings, repo: Path, tmp_path: Path) -> None:
    text = FILLED.replace('"src/api/**"', '"src/<your package>/*.<ext>"')
    found = problems_of(text, settings, repo, tmp_path)
    assert [problem.split(": ", 1)[0] for problem in found] == ["plan.toml:16:15", "plan.toml:16:32"]
    assert "'<your package>'" in found[0]
    assert "'<ext>'" in found[1]


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ('title = "Login"', 'title = "<the title>"', "one line that says what the plan delivers"),
        ('goal = "Users sign in"', 'goal = """\n  <who can do what>\n"""',
         "what is true when the plan is done, seen from the user's side"),
        ('goal = "It works"', 'goal = "<what this phase does>"', "what this phase achieves"),
        ('title = "Add the login endpoint"', 'title = "<task title>"',
         "one line that says what the task delivers (the subject of its request and pull request)"),
    ],
)
def test_whole_field_placeholder(settings: Settings, repo: Path, tmp_path: Path, field: str, value: str, hint: str) -> None:
    text = FILLED.replace(field, value, 1)
    found = problems_of(text, settings, repo, tmp_path)
    assert len(found) == 1
    assert found[0].endswith(f"is still in the plan: replace it with {hint}")
    line, column = line_and_column(text, "<")
    assert found[0].startswith(f"plan.toml:{line}:{column}: ")


def test_success_criterion_and_check(settings: Settings, repo: Path, tmp_path: Path) -> None:
    text = FILLED.replace('goal = "Users sign in"\n', 'goal = "Users sign in"\nsuccess_criteria = ["pytest -q passes", "<a behaviour you can try by hand>"]\n')
    text += 'checks = ["<the command>"]\n'
    assert problems_of(text, settings, repo, tmp_path) == [
        "plan.toml:3:42: success_criteria[1]: placeholder '<a behaviour you can try by hand>' is still in the plan: "
        "replace it with a check you can run or try by hand, or remove the item",
        "plan.toml:18:12: phases[0].tasks[0].checks[0]: placeholder '<the command>' is still in the plan: "
        "replace it with the command to run, such as 'pytest -q'",
    ]


@pytest.mark.parametrize(
    "body",
    [
        "Return a List<T> from parse().",
        "Keep the order: a < b > c must still hold.",
        "Wrap the form in <div> and close it with </div>.",
        "Change the type to Map<String, Integer>.",
        "Add a <module> entry for the new package to pom.xml.",
        "Fix Result<Vec<u8>, Box<dyn Error>> in the reader.",
        "Print <the result> only in verbose mode.",
        "Use <T as Trait>::name here.",
        "if x<3 and y>2: return",
    ],
)
def test_code_in_body_not_flagged(settings: Settings, repo: Path, tmp_path: Path, body: str) -> None:
    text = FILLED.replace("Add POST /login to src/api/login.py.", body)
    assert problems_of(text, settings, repo, tmp_path) == []


def test_single_word_needs_path() -> None:
    known = frozenset({"<test_file>", "<module>"})
    assert find_placeholders("Fix the bug that tests/<test_file>.py reproduces", known) == [Placeholder("<test_file>", 23)]
    assert find_placeholders("create src/<module>/__init__.py", known) == [Placeholder("<module>", 11)]
    assert find_placeholders("add a <module> entry to pom.xml", known) == []
    assert find_placeholders("<module>", known) == [Placeholder("<module>", 0)]


def test_template_placeholder_rewrapped(settings: Settings, repo: Path, tmp_path: Path) -> None:
    # A user who reflows a placeholder of a shipped template still gets it reported.
    body = "<Describe the change: which module,\n   which function or class, what it must do.>"
    text = FILLED.replace("Add POST /login to src/api/login.py.", body)
    found = problems_of(text, settings, repo, tmp_path)
    assert len(found) == 1
    assert found[0].startswith("plan.toml:13:1: phases[0].tasks[0].prompt: placeholder '<Describe the change")


def test_escaped_placeholder_at_value_start(settings: Settings, repo: Path, tmp_path: Path) -> None:
    # The raw text differs from the value, so the problem falls back to where the value starts.
    text = FILLED.replace('title = "Add the login endpoint"', 'title = "<the task\\u0020title>"')
    assert problems_of(text, settings, repo, tmp_path) == [
        "plan.toml:11:9: phases[0].tasks[0].title: placeholder '<the task title>' is still in the plan: "
        "replace it with one line that says what the task delivers (the subject of its request and pull request)",
    ]


def test_repository_template_placeholders(settings: Settings, repo: Path, tmp_path: Path) -> None:
    folder = Paths(repo).plans / "templates"
    folder.mkdir(parents=True)
    (folder / "ticket.toml").write_text('goal = "Fix <the ticket number> now"\n', encoding="utf-8")
    text = FILLED.replace("Add POST /login to src/api/login.py.", "Close <the ticket number> first.")
    found = problems_of(text, settings, repo, tmp_path)
    assert [problem.split(": ")[1] for problem in found] == ["phases[0].tasks[0].prompt"]
    assert "'<the ticket number>'" in found[0]
    assert problems_of(text, settings, None, tmp_path) == []


def test_unparsable_template_placeholders(repo: Path) -> None:
    folder = Paths(repo).plans / "templates"
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text('goal = "<the broken goal>\n', encoding="utf-8")
    assert "<the broken goal>" in known_placeholders(repo)


def test_known_placeholders_follow_template_edits(repo: Path) -> None:
    folder = Paths(repo).plans / "templates"
    folder.mkdir(parents=True)
    template = folder / "mine.toml"
    template.write_text('goal = "<first text>"\n', encoding="utf-8")
    assert "<first text>" in known_placeholders(repo)
    template.write_text('goal = "<second longer text>"\n', encoding="utf-8")
    known = known_placeholders(repo)
    assert "<second longer text>" in known
    assert "<first text>" not in known


def test_placeholders_block_run_not_read(settings: Settings, repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(FILLED.replace('title = "Add the login endpoint"', 'title = "<task title>"'), encoding="utf-8")
    plan, problems = check(path, settings, repo)
    assert plan is not None
    assert plan.task("api") is not None
    assert len(problems) == 1
    with pytest.raises(PlanInvalid) as caught:
        load_plan(path, settings, repo)
    assert caught.value.exit_code == 2
    assert "placeholder '<task title>'" in str(caught.value)


def test_other_problems_hide_plan(settings: Settings, repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    text = FILLED.replace('title = "Add the login endpoint"', 'title = "<task title>"').replace('agent = "alice"', 'agent = "ghost"')
    path.write_text(text, encoding="utf-8")
    plan, problems = check(path, settings, repo)
    assert plan is None
    assert len(problems) == 2


def test_value_spans_are_mapped() -> None:
    text = 'title = "Login"\nfiles = ["a/**", \'b\']\ngoal = """\nx\n"""\n'
    positions = scan(text)
    assert positions.span(("title",)) == (positions.value(("title",)), positions.ends[("title",)])
    start, end = positions.span(("files", 1))
    assert (start.line, start.column, end.line, end.column) == (2, 18, 2, 21)
    start, end = positions.span(("goal",))
    assert (start.line, start.column, end.line, end.column) == (3, 8, 5, 4)
    assert positions.span(("missing",)) is None


@pytest.mark.parametrize("name", ["FPLAN", "MPLAN", "bugfix", "refactor"])
def test_fresh_template_reports_then_passes(repo: Path, settings: Settings, name: str) -> None:
    created = create_plan(Paths(repo), settings, name, "Add a login form", date="2026-01-02")
    text = created.path.read_text(encoding="utf-8")
    left = re.findall(r"<[^<>]+>", text.split("\ntitle = ", 1)[1])
    assert len(created.problems) == len(left)
    assert all("placeholder" in problem.message for problem in created.problems)

    filled = re.sub(r"<([^<>]+)>", lambda match: re.sub(r"\W+", "_", match.group(1)).strip("_").lower(), text)
    created.path.write_text(filled, encoding="utf-8")
    assert validate(created.path, settings, repo) == []
