"""Plan templates and numbering: rendering, lookup order, and numbers never reused."""

from __future__ import annotations

import json
import multiprocessing
import re
import tomllib
from pathlib import Path

import pytest

from aipass_tui.config import Settings
from aipass_tui.core.plans import PlanError, create_plan, list_templates, validate
from aipass_tui.core.plans.templates import allocate_number, render, slugify, template_dirs
from aipass_tui.core.store import Paths

AGENTS = {"alice": {"kind": "command", "command": ["true"]}, "bob": {"kind": "command", "command": ["true"]}}
SHIPPED = ["FPLAN", "MPLAN", "bugfix", "refactor"]


def fill_placeholders(text: str) -> str:
    """Replace each ``<...>`` of a rendered template with words a user could have written."""
    return re.sub(r"<([^<>]+)>", lambda match: re.sub(r"\W+", "_", match.group(1)).strip("_").lower(), text)


@pytest.fixture
def paths(repo: Path) -> Paths:
    return Paths(repo)


@pytest.fixture
def settings() -> Settings:
    return Settings(agents=AGENTS)


def test_shipped_templates_are_found(paths: Paths) -> None:
    templates = list_templates(paths)
    assert sorted(t.name for t in templates.values()) == sorted(SHIPPED)
    assert {t.source for t in templates.values()} <= {"installed", "source checkout"}


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("agents", [AGENTS, {"solo": {"kind": "command", "command": ["true"]}}])
def test_templates_render_and_validate(paths: Paths, name: str, agents: dict) -> None:
    settings = Settings(agents=agents)
    created = create_plan(paths, settings, name, 'Fix "quoted" \\ title', date="2026-01-02")
    assert created.problems
    assert all("placeholder" in problem.message for problem in created.problems)
    created.path.write_text(fill_placeholders(created.path.read_text()))
    assert validate(created.path, settings, paths.repo) == []
    data = tomllib.loads(created.path.read_text())
    assert data["title"] == 'Fix "quoted" \\ title'
    text = created.path.read_text()
    assert f"{created.plan_id}: " in text
    assert "2026-01-02" in text
    assert "{" + "agent" not in text
    assert {task["agent"] for phase in data["phases"] for task in phase["tasks"]} <= set(agents)


@pytest.mark.parametrize("name", SHIPPED)
def test_templates_teach_how_to_write_tasks(paths: Paths, name: str) -> None:
    text = list_templates(paths)[name.lower()].path.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#")).lower()
    assert "prompt" in comments
    assert "review" in comments
    assert "glob" in comments or "files" in comments


def test_fplan_has_one_phase_and_mplan_several(paths: Paths, settings: Settings) -> None:
    single = tomllib.loads(create_plan(paths, settings, "FPLAN", "One").path.read_text())
    master = tomllib.loads(create_plan(paths, settings, "MPLAN", "Many").path.read_text())
    assert len(single["phases"]) == 1
    assert len(master["phases"]) >= 3


def test_template_name_is_case_insensitive(paths: Paths, settings: Settings) -> None:
    created = create_plan(paths, settings, "fplan", "Lower case")
    assert created.plan_id == "FPLAN-0001"
    assert created.path.name == "FPLAN-0001_lower-case.toml"


def test_new_plan_without_agents_names_the_problem(paths: Paths) -> None:
    created = create_plan(paths, Settings(), "FPLAN", "No agents yet")
    agents = [p.message for p in created.problems if "placeholder" not in p.message]
    assert len(agents) == 3
    assert all("unknown agent 'AGENT-NAME': no agents are configured" in message for message in agents)


def test_repository_template_wins_and_adds_a_type(paths: Paths, settings: Settings) -> None:
    folder = paths.plans / "templates"
    folder.mkdir(parents=True)
    (folder / "FPLAN.toml").write_text(
        'title = "{title}"\ngoal = "local {id} {number}"\n[[phases]]\nname = "Only"\ngoal = "g"\n'
        '[[phases.tasks]]\nid = "t"\nagent = "{agent}"\ntitle = "t"\nprompt = "p"\nfiles = ["a/**"]\n'
    )
    (folder / "spike.toml").write_text((folder / "FPLAN.toml").read_text())
    templates = list_templates(paths)
    assert templates["fplan"].source == "repository"
    assert templates["spike"].source == "repository"
    created = create_plan(paths, settings, "spike", "Try it")
    assert created.plan_id == "SPIKE-0001"
    assert tomllib.loads(created.path.read_text())["goal"] == "local SPIKE-0001 0001"


def test_unknown_template_lists_the_others(paths: Paths, settings: Settings) -> None:
    with pytest.raises(PlanError) as caught:
        create_plan(paths, settings, "nope", "Title")
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        f"unknown plan template 'nope': use one of FPLAN, MPLAN, bugfix, refactor, or add nope.toml to {paths.plans / 'templates'}"
    )
    assert not list(paths.plans.glob("*.toml"))


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("   ", "empty plan title: give the plan a title, for example 'Add a login form'"),
        ("two\nlines", "invalid plan title: write it on one line"),
        ("x" * 201, "plan title is 201 characters long: keep it under 200 and put details in the goal"),
    ],
)
def test_bad_titles(paths: Paths, settings: Settings, title: str, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        create_plan(paths, settings, "FPLAN", title)
    assert str(caught.value) == message
    assert not (paths.state / "plans" / "counters.json").exists()


def test_numbers_increase_per_prefix(paths: Paths, settings: Settings) -> None:
    ids = [create_plan(paths, settings, name, "Work").plan_id for name in ("FPLAN", "FPLAN", "MPLAN", "FPLAN", "bugfix")]
    assert ids == ["FPLAN-0001", "FPLAN-0002", "MPLAN-0001", "FPLAN-0003", "BUGFIX-0001"]


def test_numbers_are_not_reused_after_deletion(paths: Paths, settings: Settings) -> None:
    first = create_plan(paths, settings, "FPLAN", "First")
    second = create_plan(paths, settings, "FPLAN", "Second")
    second.path.unlink()
    first.path.unlink()
    assert create_plan(paths, settings, "FPLAN", "Third").plan_id == "FPLAN-0003"


def test_counter_file_lost_still_skips_existing_files(paths: Paths, settings: Settings) -> None:
    create_plan(paths, settings, "FPLAN", "First")
    (paths.plans / "FPLAN-0041_by-hand.toml").write_text("")
    (paths.plan_state / "counters.json").unlink()
    assert create_plan(paths, settings, "FPLAN", "Next").plan_id == "FPLAN-0042"


def test_deleted_plan_with_state_keeps_its_number(paths: Paths, settings: Settings) -> None:
    created = create_plan(paths, settings, "FPLAN", "Ran once")
    (paths.plan_state / f"{created.plan_id}.json").write_text(json.dumps({"schema_version": 1, "plan": created.plan_id, "path": str(created.path)}))
    created.path.unlink()
    (paths.plan_state / "counters.json").unlink()
    assert create_plan(paths, settings, "FPLAN", "After").plan_id == "FPLAN-0002"


def test_counter_file_is_json_with_schema_version(paths: Paths, settings: Settings) -> None:
    create_plan(paths, settings, "MPLAN", "x")
    data = json.loads((paths.plan_state / "counters.json").read_text())
    assert data == {"schema_version": 1, "counters": {"MPLAN": 1}}


def test_corrupt_counter_file_is_moved_aside(paths: Paths, settings: Settings) -> None:
    create_plan(paths, settings, "FPLAN", "First")
    counter = paths.plan_state / "counters.json"
    counter.write_text("{not json")
    with pytest.raises(PlanError) as caught:
        create_plan(paths, settings, "FPLAN", "Second")
    assert caught.value.exit_code == 1
    assert "Run the command again" in str(caught.value)
    assert list(paths.plan_state.glob("counters.json.corrupt-*"))
    assert create_plan(paths, settings, "FPLAN", "Second").plan_id == "FPLAN-0002"


def _allocate(repo: str, count: int, queue: "multiprocessing.Queue[int]") -> None:
    paths = Paths(Path(repo))
    for _ in range(count):
        queue.put(allocate_number(paths, "FPLAN"))


def test_parallel_allocation_never_shares_a_number(paths: Paths) -> None:
    paths.ensure()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_allocate, args=(str(paths.repo), 15, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    numbers = [queue.get(timeout=60) for _ in range(60)]
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(numbers) == list(range(1, 61))


def test_render_leaves_other_braces() -> None:
    text = 'title = "{title}"\nmeta = { owner = "{agent}", other = "{unknown}" }\n'
    rendered = render(text, title="T", plan_id="X-0001", number=1, agents=["a"], date="2026-01-01")
    assert rendered == 'title = "T"\nmeta = { owner = "a", other = "{unknown}" }\n'


@pytest.mark.parametrize(
    ("title", "slug"),
    [("Add a login form!", "add-a-login-form"), ("  ", "plan"), ("Ünïcode only ÄÖ", "n-code-only"), ("x" * 60, "x" * 40)],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_source_checkout_folder_is_last(paths: Paths) -> None:
    sources = [source for source, _ in template_dirs(paths)]
    assert sources[0] == "repository"
    assert sources[1] == "installed"


def test_rendered_plan_validates_as_text(paths: Paths, settings: Settings) -> None:
    template = list_templates(paths)["mplan"]
    text = render(template.path.read_text(), title="T", plan_id="MPLAN-0009", number=9, agents=list(AGENTS))
    problems = validate(text, settings, paths.repo, filename="draft.toml")
    assert problems
    assert all(str(problem).startswith("draft.toml:") and "placeholder" in problem.message for problem in problems)
    assert validate(fill_placeholders(text), settings, paths.repo, filename="draft.toml") == []
