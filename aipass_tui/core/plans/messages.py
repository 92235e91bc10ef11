"""Wording of plan problems: how each field is written, and how values and places are named."""

from __future__ import annotations

from typing import Any

from aipass_tui.core.plans.toml_positions import Loc

# An example of each field, shown when the field is missing or has the wrong type.
EXAMPLES = {
    "title": 'title = "Add a login form"',
    "goal": 'goal = "Users can sign in with a password"',
    "success_criteria": 'success_criteria = ["pytest -q passes"]',
    "phases": "a [[phases]] table with name, goal and at least one [[phases.tasks]] table",
    "name": 'name = "Build"',
    "tasks": "a [[phases.tasks]] table below this phase",
    "id": 'id = "login-form"',
    "agent": 'agent = "<a configured agent>"',
    "prompt": 'prompt = """What to change, where, and how to check it"""',
    "files": 'files = ["src/login/**", "tests/test_login.py"]',
    "depends_on": 'depends_on = ["api"]',
    "checks": 'checks = ["pytest -q tests/test_login.py"]',
    "review": 'review = "manual" (or "auto")',
    "phase.goal": 'goal = "The API returns the new fields"',
}
FIELDS = {
    "plan": ("title", "goal", "success_criteria", "phases"),
    "phase": ("name", "goal", "tasks"),
    "task": ("id", "agent", "title", "prompt", "files", "depends_on", "checks", "review"),
}
BLANK_HINTS = {
    "title": "write one line that says what it delivers",
    "goal": "say what it achieves and how you will know",
    "name": "give the phase a short name",
    "prompt": "tell the agent what to change, in which files, and how to check that it is done",
}
# Replacement of a placeholder left from a template, keyed by "<owner>.<field>" (see ``owner``).
PLACEHOLDER_HINTS = {
    "plan.title": "one line that says what the plan delivers",
    "plan.goal": "what is true when the plan is done, seen from the user's side",
    "plan.success_criteria": "a check you can run or try by hand, or remove the item",
    "phase.name": "a short name for the phase",
    "phase.goal": "what this phase achieves",
    "task.title": "one line that says what the task delivers (the subject of its request and pull request)",
    "task.prompt": "the text it asks for, because the agent receives the prompt word for word",
    "task.files": "a real file or folder name, so that the glob matches the files this task may change",
    "task.checks": "the command to run, such as 'pytest -q'",
}


def listing(names: list[str], limit: int = 12) -> str:
    """Join at most ``limit`` names with commas and count the rest."""
    if not names:
        return "(no task has an id yet)"
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def owner(loc: Loc) -> str:
    """Return the kind of table the field at ``loc`` belongs to: plan, phase or task."""
    keys = [part for part in loc[:-1] if isinstance(part, str)]
    if keys[-2:] == ["phases", "tasks"] or (keys and keys[-1] == "tasks"):
        return "task"
    if keys and keys[-1] == "phases":
        return "phase"
    return "plan"


def field_of(loc: Loc) -> str:
    """Return the last key of ``loc``, skipping list indexes."""
    for part in reversed(loc):
        if isinstance(part, str):
            return part
    return ""


def describe(value: Any) -> str:
    """Name a TOML value in a message: "the string 'src'", "a list", "a table"."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__
