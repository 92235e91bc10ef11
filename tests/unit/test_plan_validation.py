"""Plan validation: each rule with a broken plan file, its exact message and its position."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aipass_tui.config import Settings
from aipass_tui.core.plans import PlanInvalid, check, load_plan, validate
from tests.conftest import git

AGENTS = {"alice": {"kind": "command", "command": ["true"]}, "bob": {"kind": "command", "command": ["true"]}}

HEAD = '''\
title = "Login"
goal = "Users sign in"

[[phases]]
name = "Build"
goal = "It works"
'''


def task(task_id: str, agent: str, files: str, extra: str = "") -> str:
    return f'''
[[phases.tasks]]
id = "{task_id}"
agent = "{agent}"
title = "Task {task_id}"
prompt = "Do {task_id}"
files = {files}
{extra}'''


@pytest.fixture
def settings() -> Settings:
    return Settings(agents=AGENTS)


@pytest.fixture
def tracked_repo(repo: Path) -> Path:
    for name in ("src/api/login.py", "src/ui/form.py", "docs/index.md"):
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "files")
    return repo


def problems_of(text: str, settings: Settings, repo: Path | None, tmp_path: Path) -> list[str]:
    plan = tmp_path / "plan.toml"
    plan.write_text(text, encoding="utf-8")
    return [str(p).replace(str(plan), "plan.toml") for p in validate(plan, settings, repo)]


def test_valid_plan_has_no_problems(settings: Settings, tracked_repo: Path, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/api/**"]') + task("ui", "bob", '["src/ui/**"]', 'depends_on = ["api"]\nreview = "auto"\nchecks = ["pytest -q"]')
    assert problems_of(text, settings, tracked_repo, tmp_path) == []
    plan, problems = check(tmp_path / "plan.toml", settings, tracked_repo)
    assert problems == []
    assert plan is not None
    assert [t.id for _, _, t in plan.tasks()] == ["api", "ui"]
    assert plan.phases[0].tasks[1].review == "auto"


def test_toml_syntax_error(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/**"]').replace('agent = "alice"', "agent = alice")
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:10:9: invalid TOML: Invalid value: fix the syntax at this position"
    ]


def test_toml_error_at_end_of_document(settings: Settings, tmp_path: Path) -> None:
    assert problems_of('title = "x"\nfiles = ["a",\n', settings, None, tmp_path) == [
        "plan.toml:3:1: invalid TOML: Invalid value: fix the syntax at this position"
    ]


def test_toml_duplicate_key(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/**"]', 'agent = "bob"')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:14:1: invalid TOML: phases[0].tasks[0].agent is defined twice: remove or rename one of them"
    ]


def test_file_not_utf8(settings: Settings, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_bytes(b'title = "ok"\ngoal = "caf\xe9"\n')
    assert [str(p) for p in validate(plan, settings, None)] == [
        f"{plan}:2:12: invalid TOML: the file is not UTF-8 text: save it as UTF-8"
    ]


def test_unknown_agent(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "carol", '["src/**"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:10:9: phases[0].tasks[0].agent: unknown agent 'carol': use one of alice, bob, or add [agents.carol] to .aipass/config.toml"
    ]


def test_unknown_agent_without_agents(tmp_path: Path) -> None:
    text = HEAD + task("api", "carol", '["src/**"]')
    assert problems_of(text, Settings(), None, tmp_path) == [
        "plan.toml:10:9: phases[0].tasks[0].agent: unknown agent 'carol': no agents are configured: add one under "
        "[agents.<name>] in .aipass/config.toml (aipass-tui init adds the CLIs it finds)"
    ]


def test_absolute_and_escaping_globs(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/**", "/etc/hosts", "../other/**"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:13:20: phases[0].tasks[0].files[1]: glob '/etc/hosts' is absolute: write it relative to the repository root, for example 'etc/hosts'",
        "plan.toml:13:34: phases[0].tasks[0].files[2]: glob '../other/**' leaves the repository through '..': write the path from the repository root without '..'",
    ]


def test_glob_naming_a_folder(settings: Settings, tracked_repo: Path, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/api"]')
    assert problems_of(text, settings, tracked_repo, tmp_path) == [
        "plan.toml:13:10: phases[0].tasks[0].files[0]: glob 'src/api' names a folder, not a file: write 'src/api/**' to include the files below it"
    ]


def test_empty_files(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", "[]")
    assert problems_of(text, settings, None, tmp_path) == [
        'plan.toml:13:9: phases[0].tasks[0].files: no files: list the globs this task may change, for example ["src/login/**"]'
    ]


def test_overlap_with_existing_file(settings: Settings, tracked_repo: Path, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/**"]') + task("ui", "bob", '["docs/**", "src/api/*.py"]')
    assert problems_of(text, settings, tracked_repo, tmp_path) == [
        "plan.toml:20:21: phases[0].tasks[1].files[1]: tasks 'api' (agent alice) and 'ui' (agent bob) in phase 'Build' "
        "both own files matching 'src/**' and 'src/api/*.py' (for example src/api/login.py): tasks of one phase run "
        "in parallel, so give them separate files or move one to another phase"
    ]


def test_overlap_without_existing_file(settings: Settings, tracked_repo: Path, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["lib/**"]') + task("ui", "bob", '["lib/new.py"]')
    assert problems_of(text, settings, tracked_repo, tmp_path) == [
        "plan.toml:20:10: phases[0].tasks[1].files[0]: tasks 'api' (agent alice) and 'ui' (agent bob) in phase 'Build' "
        "both own files matching 'lib/**' and 'lib/new.py' (no file matches both yet, but lib/new.py would): tasks of "
        "one phase run in parallel, so give them separate files or move one to another phase"
    ]


@pytest.mark.parametrize(
    ("first", "second", "second_agent"),
    [
        ('["src/*.py"]', '["src/x/*"]', "bob"),  # look alike, but never match the same path
        ('["src/**"]', '["src/a.py"]', "alice"),  # the same agent runs its tasks one after another
    ],
)
def test_no_overlap_problem(settings: Settings, tmp_path: Path, first: str, second: str, second_agent: str) -> None:
    text = HEAD + task("api", "alice", first) + task("ui", second_agent, second)
    assert problems_of(text, settings, None, tmp_path) == []


def test_overlap_in_different_phases_is_allowed(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["src/**"]') + '\n[[phases]]\nname = "Two"\ngoal = "g"\n' + task("ui", "bob", '["src/a.py"]')
    assert problems_of(text, settings, None, tmp_path) == []


def test_dependency_cycle(settings: Settings, tmp_path: Path) -> None:
    text = (
        HEAD
        + task("a", "alice", '["a/**"]', 'depends_on = ["c"]')
        + task("b", "bob", '["b/**"]', 'depends_on = ["a"]')
        + task("c", "alice", '["c/**"]', 'depends_on = ["b"]')
    )
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:14:14: phases[0].tasks[0].depends_on: dependency cycle a -> c -> b -> a: remove one of these dependencies"
    ]


def test_self_dependency(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("a", "alice", '["a/**"]', 'depends_on = ["a"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:14:14: phases[0].tasks[0].depends_on: dependency cycle a -> a: remove one of these dependencies"
    ]


def test_unknown_dependency(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]') + task("ui", "bob", '["b/**"]', 'depends_on = ["api", "apii"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:21:22: phases[0].tasks[1].depends_on[1]: unknown task 'apii': depend on one of api, ui"
    ]


def test_dependency_on_later_phase(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]', 'depends_on = ["docs"]') + '\n[[phases]]\nname = "Docs"\ngoal = "g"\n' + task("docs", "bob", '["d/**"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:14:15: phases[0].tasks[0].depends_on[0]: task 'docs' runs in a later phase ('Docs'): phases run "
        "in order, so move 'docs' to this phase or an earlier one, or remove the dependency"
    ]


def test_empty_prompt_and_title(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]').replace('prompt = "Do api"', 'prompt = """\n   \n"""').replace('title = "Task api"', 'title = ""')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:11:9: phases[0].tasks[0].title: empty title: write one line that says what it delivers",
        "plan.toml:12:10: phases[0].tasks[0].prompt: empty prompt: tell the agent what to change, in which files, and how to check that it is done",
    ]


def test_long_dependency_chain(settings: Settings) -> None:
    tasks = "".join(
        task(f"t{n}", "alice", f'["f{n}.txt"]', f'depends_on = ["t{n - 1}"]' if n else "") for n in range(1500)
    )
    assert validate(HEAD + tasks, settings, None, tracked=[]) == []
    looped = HEAD + tasks.replace('id = "t0"', 'id = "t0"\ndepends_on = ["t1499"]', 1)
    problems = validate(looped, settings, None, tracked=[])
    assert len(problems) == 1
    assert problems[0].message.startswith("phases[0].tasks[0].depends_on: dependency cycle t0 -> t1499 -> t1498")


def test_duplicate_ids(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]') + task("api", "bob", '["b/**"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:16:6: phases[0].tasks[1].id: duplicate task id 'api', already used at line 9: give each task its own id"
    ]


def test_invalid_task_id(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("my task", "alice", '["a/**"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:9:6: phases[0].tasks[0].id: invalid task id 'my task': use letters, digits, '.', '_' or '-' (at most 64), for example 'login-form'"
    ]


def test_missing_required_field(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]').replace('prompt = "Do api"\n', "")
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:8:1: phases[0].tasks[0]: missing required field 'prompt': add prompt = \"\"\"What to change, where, and how to check it\"\"\""
    ]


def test_missing_phases_and_goal(settings: Settings, tmp_path: Path) -> None:
    assert problems_of('title = "Only a title"\n', settings, None, tmp_path) == [
        "plan.toml:1:1: missing required field 'goal': add goal = \"Users can sign in with a password\"",
        "plan.toml:1:1: missing required field 'phases': add a [[phases]] table with name, goal and at least one [[phases.tasks]] table",
    ]


def test_wrong_types(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '"src/**"', 'review = "later"\ndepends_on = "ui"')
    assert problems_of(text, settings, None, tmp_path) == [
        'plan.toml:13:9: phases[0].tasks[0].files: input should be a valid list, got the string \'src/**\': write files = ["src/login/**", "tests/test_login.py"]',
        'plan.toml:14:10: phases[0].tasks[0].review: input should be \'manual\' or \'auto\', got the string \'later\': write review = "manual" (or "auto")',
        'plan.toml:15:14: phases[0].tasks[0].depends_on: input should be a valid list, got the string \'ui\': write depends_on = ["api"]',
    ]


def test_unknown_field(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]', 'depends-on = ["x"]')
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:14:1: phases[0].tasks[0].depends-on: unknown field 'depends-on': check its spelling (the fields of a "
        "task are id, agent, title, prompt, files, depends_on, checks, review)"
    ]


def test_phase_without_tasks(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]') + '\n[[phases]]\nname = "Docs"\ngoal = "g"\ntasks = []\n'
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:18:9: phases[1].tasks: phase 'Docs' has no tasks: add a [[phases.tasks]] table below it or remove the phase"
    ]


def test_plan_without_phases(settings: Settings, tmp_path: Path) -> None:
    assert problems_of('title = "t"\ngoal = "g"\nphases = []\n', settings, None, tmp_path) == [
        "plan.toml:3:10: phases: the plan has no phases: add a [[phases]] table with name, goal and at least one [[phases.tasks]] table"
    ]


def test_check_with_unclosed_quote(settings: Settings, tmp_path: Path) -> None:
    text = HEAD + task("api", "alice", '["a/**"]', "checks = ['pytest -k \"login']")
    assert problems_of(text, settings, None, tmp_path) == [
        "plan.toml:14:11: phases[0].tasks[0].checks[0]: check 'pytest -k \"login' cannot be split into arguments "
        "(No closing quotation): close the quote or escape it"
    ]


def test_every_problem_at_once(settings: Settings, tracked_repo: Path, tmp_path: Path) -> None:
    text = (
        HEAD
        + task("api", "carol", '["/abs", "src/**"]', 'depends_on = ["nope"]')
        + task("api", "bob", '["src/ui/form.py"]').replace('prompt = "Do api"', 'prompt = ""')
    )
    found = problems_of(text, settings, tracked_repo, tmp_path)
    assert [line.split(": ")[1] for line in found] == [
        "phases[0].tasks[0].agent",
        "phases[0].tasks[0].files[0]",
        "phases[0].tasks[0].depends_on[0]",
        "phases[0].tasks[1].id",
        "phases[0].tasks[1].prompt",
        "phases[0].tasks[1].files[0]",
    ]
    assert "for example src/ui/form.py" in found[-1]


def test_text_is_validated_under_its_name(settings: Settings) -> None:
    text = HEAD + task("api", "carol", '["a/**"]')
    problems = validate(text, settings, None, filename="draft.toml")
    assert [p.loc for p in problems] == [("phases", 0, "tasks", 0, "agent")]
    assert str(problems[0]).startswith("draft.toml:10:9: ")


def test_load_plan_raises_with_every_problem(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(HEAD + task("api", "carol", '["/a"]'))
    with pytest.raises(PlanInvalid) as caught:
        load_plan(path, settings, None)
    assert len(caught.value.problems) == 2
    assert caught.value.exit_code == 2


def test_missing_file_is_a_problem(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert [str(p) for p in validate(path, settings, None)] == [
        f"{path}:1:1: cannot read the plan file: No such file or directory"
    ]


def test_dedent_helper_keeps_positions() -> None:
    # The expected positions above count lines of HEAD + task(): HEAD has 6 lines, a blank line
    # follows, each task starts with its [[phases.tasks]] header on line 8 and 15 and has its
    # files on the header's line + 5.
    lines = (HEAD + task("api", "alice", "[]") + task("ui", "bob", "[]")).splitlines()
    assert lines[7] == "[[phases.tasks]]"
    assert lines[14] == "[[phases.tasks]]"
    assert lines[19].startswith("files = ")
    assert textwrap.dedent(HEAD) == HEAD
