"""``aipass-tui plan`` as real subprocesses, with real orchestrators and ``command`` agents."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import git, wait_until, write_config


def cli(repo: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aipass_tui", *args, "--repo", str(repo)],
        cwd=repo, capture_output=True, text=True, timeout=timeout,
    )


def start(repo: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aipass_tui", *args, "--repo", str(repo)],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def agents(repo: Path, commands: dict[str, list[str]], isolation: str = "shared") -> None:
    text = ""
    for name, argv in commands.items():
        text += f'[agents.{name}]\nkind = "command"\ncommand = {json.dumps(argv)}\nisolation = "{isolation}"\n\n'
    write_config(repo, text)
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text(exclude.read_text() + "\n.aipass/\n")


def write_plan(repo: Path, text: str, name: str = "FPLAN-0001_test.toml") -> Path:
    folder = repo / ".aipass" / "plans"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def plan_state(repo: Path, plan_id: str = "FPLAN-0001") -> dict:
    path = repo / ".aipass" / "state" / "plans" / f"{plan_id}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def requests_per_task(repo: Path) -> dict[str, int]:
    state = json.loads((repo / ".aipass" / "state" / "orchestrator.json").read_text())
    counts: dict[str, int] = {}
    for request in state["requests"].values():
        if request.get("plan_task"):
            counts[request["plan_task"]] = counts.get(request["plan_task"], 0) + 1
    return counts


TWO_PHASES = '''\
    title = "Release"
    goal = "Three parts, then notes"

    [[phases]]
    name = "Parts"
    goal = "Each part exists"

    [[phases.tasks]]
    id = "a"
    agent = "alpha"
    title = "Part a"
    prompt = "Write part a"
    files = ["a.txt"]

    [[phases.tasks]]
    id = "b"
    agent = "beta"
    title = "Part b"
    prompt = "Write part b"
    files = ["b.txt"]

    [[phases.tasks]]
    id = "c"
    agent = "gamma"
    title = "Part c"
    prompt = "Write part c"
    files = ["c.txt"]
    depends_on = ["a"]

    [[phases]]
    name = "Notes"
    goal = "Release notes"

    [[phases.tasks]]
    id = "notes"
    agent = "alpha"
    title = "Notes"
    prompt = "Write the notes"
    files = ["NOTES.md"]
'''

WRITERS = {
    "alpha": ["sh", "-c", "echo alpha >> a.txt"],
    "beta": ["sh", "-c", "echo beta >> b.txt"],
    "gamma": ["sh", "-c", "echo gamma >> c.txt"],
}


# new, list, show, check


def test_new_list_show_check(repo: Path) -> None:
    agents(repo, {"alpha": ["true"], "beta": ["true"]})
    created = cli(repo, "plan", "new", "FPLAN", "Add a login form")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created .aipass/plans/FPLAN-0001_add-a-login-form.toml (plan FPLAN-0001, template FPLAN)\n")
    assert ".aipass/plans/FPLAN-0001_add-a-login-form.toml:17:1: goal: placeholder '<Who can do what when" in created.stdout
    assert "the new plan has 11 problem(s), listed above: fix them before running it" in created.stdout

    second = cli(repo, "plan", "new", "bugfix", "Crash on empty input")
    assert second.returncode == 0, second.stderr

    listing = cli(repo, "plan", "list")
    assert listing.returncode == 0
    assert listing.stdout.splitlines() == [
        "BUGFIX-0001  not started  0/2 tasks    Crash on empty input  (11 problem(s): aipass-tui plan check BUGFIX-0001)",
        "FPLAN-0001   not started  0/3 tasks    Add a login form  (11 problem(s): aipass-tui plan check FPLAN-0001)",
    ]
    records = json.loads(cli(repo, "plan", "list", "--json").stdout)
    assert [r["id"] for r in records] == ["BUGFIX-0001", "FPLAN-0001"]

    # A plan that still contains placeholders can be read, but neither passes the check nor runs.
    shown = cli(repo, "plan", "show", "FPLAN-0001")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("FPLAN-0001: Add a login form\nfile: .aipass/plans/FPLAN-0001_add-a-login-form.toml\nstatus: not started\n")
    assert "phase 1/1: Build" in shown.stdout
    assert "[pending] core (alpha)" in shown.stdout

    plan_file = ".aipass/plans/FPLAN-0001_add-a-login-form.toml"
    untouched = cli(repo, "plan", "check", plan_file)
    assert untouched.returncode == 2
    lines = untouched.stdout.splitlines()
    assert len(lines) == 11
    assert all(": placeholder '<" in line or "still contains the placeholder" in line for line in lines)
    assert lines[3] == (
        f"{plan_file}:54:10: phases[0].tasks[0].title: placeholder '<Implement the feature in the application code>' "
        "is still in the plan: replace it with one line that says what the task delivers (the subject of its request and pull request)"
    )
    assert untouched.stderr == f"aipass-tui: {plan_file}: 11 problem(s)\n"

    rejected = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert rejected.returncode == 2
    assert "placeholder '<Implement the feature in the application code>'" in rejected.stderr
    assert "the plan has 11 problem(s): fix them, then run the command again" in rejected.stderr
    assert plan_state(repo) == {}

    path = repo / plan_file
    path.write_text(re.sub(r"<([^<>]+)>", lambda match: re.sub(r"\W+", "_", match.group(1)).strip("_"), path.read_text()))
    checked = cli(repo, "plan", "check", plan_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout == f"{plan_file}: OK (1 phase(s), 3 task(s))\n"


def test_check_prints_every_problem_and_exits_2(repo: Path) -> None:
    agents(repo, {"alpha": ["true"], "beta": ["true"]})
    path = write_plan(repo, TWO_PHASES.replace('agent = "gamma"', 'agent = "delta"').replace('files = ["b.txt"]', 'files = ["../b.txt"]'))
    result = cli(repo, "plan", "check", str(path))
    assert result.returncode == 2
    assert result.stdout.splitlines() == [
        f"{path}:20:10: phases[0].tasks[1].files[0]: glob '../b.txt' leaves the repository through '..': write the path from the repository root without '..'",
        f"{path}:24:9: phases[0].tasks[2].agent: unknown agent 'delta': use one of alpha, beta, or add [agents.delta] to .aipass/config.toml",
    ]
    assert result.stderr == f"aipass-tui: {path}: 2 problem(s)\n"


def test_bad_input_exits_2(repo: Path, tmp_path: Path) -> None:
    agents(repo, {"alpha": ["true"]})
    unknown = cli(repo, "plan", "new", "nope", "Title")
    assert unknown.returncode == 2
    assert "unknown plan template 'nope': use one of FPLAN, MPLAN, bugfix, refactor" in unknown.stderr
    missing = cli(repo, "plan", "show", "FPLAN-0042")
    assert missing.returncode == 2
    assert "plan 'FPLAN-0042' not found" in missing.stderr
    outside = subprocess.run([sys.executable, "-m", "aipass_tui", "plan", "list", "--repo", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert outside.returncode == 2
    assert "is not inside a git repository" in outside.stderr


def test_plan_commands_need_a_config(repo: Path) -> None:
    result = cli(repo, "plan", "list")
    assert result.returncode == 2
    assert "run `aipass-tui init` there first" in result.stderr


# run


def test_run_headless_two_phases(repo: Path) -> None:
    agents(repo, WRITERS)
    write_plan(repo, TWO_PHASES)
    result = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "FPLAN-0001: started: Release (4 tasks in 2 phases)"
    assert lines[-1] == "FPLAN-0001: completed (4 of 4 tasks done)"
    assert lines.index("FPLAN-0001: phase 2/2 'Notes' started") > max(i for i, line in enumerate(lines) if "task c succeeded" in line)
    assert lines.index(next(line for line in lines if line.startswith("FPLAN-0001: task c dispatched"))) > lines.index(
        "FPLAN-0001: task a succeeded (shared checkout, nothing to merge)"
    )
    assert (repo / "a.txt").read_text() == "alpha\nalpha\n"
    assert (repo / "c.txt").read_text() == "gamma\n"
    assert requests_per_task(repo) == {"FPLAN-0001:a": 1, "FPLAN-0001:b": 1, "FPLAN-0001:c": 1, "FPLAN-0001:notes": 1}
    again = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert (again.returncode, again.stdout) == (0, "FPLAN-0001: already completed\n")


def test_failed_task_stops_the_run_and_is_retried(repo: Path) -> None:
    commands = dict(WRITERS, beta=["sh", "-c", "test -f go || { echo 'no go file' >&2; exit 3; }; echo beta >> b.txt"])
    agents(repo, commands)
    write_plan(repo, TWO_PHASES)
    first = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert first.returncode == 1, first.stdout + first.stderr
    assert "FPLAN-0001: task b failed: run " in first.stdout
    assert "FPLAN-0001: paused: retry with 'aipass-tui plan retry FPLAN-0001 b'" in first.stdout
    assert plan_state(repo)["status"] == "paused"

    (repo / "go").write_text("")
    retry = cli(repo, "plan", "retry", "FPLAN-0001", "b")
    assert retry.returncode == 0, retry.stderr
    assert retry.stdout.startswith("FPLAN-0001: running, ")

    second = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert second.returncode == 0, second.stdout + second.stderr
    assert (repo / "b.txt").read_text() == "beta\n"
    assert requests_per_task(repo)["FPLAN-0001:b"] == 2
    assert plan_state(repo)["tasks"]["b"]["attempts"] == 2


def test_restart_in_the_middle_of_a_phase(repo: Path) -> None:
    commands = dict(WRITERS, beta=["sh", "-c", "while [ ! -f release ]; do sleep 0.05; done; echo beta >> b.txt"])
    agents(repo, commands)
    write_plan(repo, TWO_PHASES)
    runner = start(repo, "plan", "run", "FPLAN-0001", "--headless")
    try:
        wait_until(lambda: plan_state(repo).get("tasks", {}).get("c", {}).get("status") == "succeeded", timeout=60, message="task c to succeed")
        assert plan_state(repo)["tasks"]["b"]["status"] == "running"
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()

    (repo / "release").write_text("")
    result = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert result.returncode == 0, result.stdout + result.stderr
    assert requests_per_task(repo) == {"FPLAN-0001:a": 1, "FPLAN-0001:b": 1, "FPLAN-0001:c": 1, "FPLAN-0001:notes": 1}
    assert (repo / "b.txt").read_text() == "beta\n"
    assert (repo / "a.txt").read_text() == "alpha\nalpha\n"


def test_run_hands_over_to_a_running_orchestrator(repo: Path) -> None:
    agents(repo, WRITERS)
    write_plan(repo, TWO_PHASES)
    work = start(repo, "work")
    try:
        wait_until(lambda: (repo / ".aipass" / "state" / "orchestrator.json").exists(), timeout=30, message="work to start")
        result = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "FPLAN-0001: running in the running orchestrator (work, pid" in result.stdout
        assert "FPLAN-0001: task notes succeeded" in result.stdout
        assert result.stdout.splitlines()[-1] == "FPLAN-0001: completed"
        assert plan_state(repo)["status"] == "completed"
    finally:
        work.send_signal(signal.SIGINT)
        try:
            work.wait(timeout=30)
        except subprocess.TimeoutExpired:
            work.kill()
            work.wait()


def test_skip_and_abort_from_the_command_line(repo: Path) -> None:
    commands = dict(WRITERS, alpha=["sh", "-c", "exit 4"])
    agents(repo, commands)
    write_plan(repo, TWO_PHASES)
    assert cli(repo, "plan", "run", "FPLAN-0001", "--headless").returncode == 1
    skipped = cli(repo, "plan", "skip", "FPLAN-0001", "a")
    assert skipped.returncode == 0, skipped.stderr
    wrong = cli(repo, "plan", "skip", "FPLAN-0001", "zzz")
    assert wrong.returncode == 2
    assert "plan FPLAN-0001 has no task 'zzz'" in wrong.stderr
    aborted = cli(repo, "plan", "abort", "FPLAN-0001")
    assert aborted.returncode == 0, aborted.stderr
    assert aborted.stdout.startswith("FPLAN-0001: aborted, ")
    again = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert again.returncode == 1
    assert "plan FPLAN-0001 was aborted" in again.stderr


def test_worktree_agents_with_automatic_review(repo: Path) -> None:
    agents(repo, {"alpha": ["sh", "-c", "echo alpha > a.txt"], "beta": ["sh", "-c", "echo beta > b.txt"]}, isolation="worktree")
    write_plan(repo, '''\
        title = "Two files"
        goal = "Both merged"

        [[phases]]
        name = "Write"
        goal = "Files exist"

        [[phases.tasks]]
        id = "a"
        agent = "alpha"
        title = "File a"
        prompt = "Write a.txt"
        files = ["a.txt"]
        review = "auto"

        [[phases.tasks]]
        id = "b"
        agent = "beta"
        title = "File b"
        prompt = "Write b.txt"
        files = ["b.txt"]
        review = "auto"
        depends_on = ["a"]
    ''')
    result = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FPLAN-0001: task a merged (pull request 1)" in result.stdout
    assert "FPLAN-0001: task b merged (pull request 2)" in result.stdout
    assert git(repo, "show", "main:a.txt") == "alpha\n"
    assert git(repo, "show", "main:b.txt") == "beta\n"
    state = plan_state(repo)
    assert (state["tasks"]["a"]["pull"], state["tasks"]["b"]["pull"]) == ("1", "2")


def test_manual_review_waits_for_pr_merge(repo: Path) -> None:
    agents(repo, {"alpha": ["sh", "-c", "echo alpha > a.txt"]}, isolation="worktree")
    write_plan(repo, '''\
        title = "One file"
        goal = "Merged by hand"

        [[phases]]
        name = "Write"
        goal = "File exists"

        [[phases.tasks]]
        id = "a"
        agent = "alpha"
        title = "File a"
        prompt = "Write a.txt"
        files = ["a.txt"]
        review = "manual"
    ''')
    runner = start(repo, "plan", "run", "FPLAN-0001", "--headless")
    try:
        wait_until(lambda: plan_state(repo).get("tasks", {}).get("a", {}).get("pull") == "1", timeout=60, message="the pull request")
        merged = cli(repo, "pr", "merge", "1")
        assert merged.returncode == 0, merged.stdout + merged.stderr
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    assert runner.returncode == 0, out + err
    assert "FPLAN-0001: task a waits for review: merge pull request 1 (aipass-tui pr merge 1)" in out
    assert out.splitlines()[-1] == "FPLAN-0001: completed (1 of 1 tasks done)"


def test_stray_file_stops_the_run(repo: Path) -> None:
    agents(repo, {"alpha": ["sh", "-c", "echo alpha > a.txt; echo oops > stray.txt"]}, isolation="worktree")
    write_plan(repo, '''\
        title = "One file"
        goal = "a.txt only"

        [[phases]]
        name = "Write"
        goal = "File exists"

        [[phases.tasks]]
        id = "a"
        agent = "alpha"
        title = "File a"
        prompt = "Write a.txt and nothing else"
        files = ["a.txt"]
        review = "auto"
    ''')
    result = cli(repo, "plan", "run", "FPLAN-0001", "--headless")
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "FPLAN-0001: task a failed: pull request 1 changes files outside the task's globs (stray.txt): review it "
        "and merge with aipass-tui pr merge 1 --allow-violations, or retry the task"
    ) in result.stdout
    assert "a.txt" not in git(repo, "ls-tree", "--name-only", "main")
