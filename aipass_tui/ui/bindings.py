"""The one registry of cockpit actions: binding id, keys, description and where each applies.

Screens take their ``BINDINGS`` from here, the command palette lists the actions of the current
screen from here, the help screen prints this table, and ``settings.ui.keys`` remaps keys by
binding id (Textual keymaps). An id may appear in several scopes when it means the same thing
there (``back``, ``stop``), so one remapping changes it everywhere.

A widget with keys of its own names its scope in ``BINDING_SCOPE``. ``FocusedWidgetCommands``
lists that scope's actions in the palette while the widget or one of its children has the focus.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Iterable

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.keys import format_key
from textual.widget import Widget

APP = "app"
MAIN = "main"
ZOOM = "zoom"
QUEUE = "queue"
DISPATCH = "dispatch"
TRANSCRIPT = "transcript"
CONFIRM = "confirm"
QUIT = "quit"
PICKER = "picker"
HELP = "help"
PLANS = "plans"
PLAN_EDITOR = "plan_editor"
PLAN_OUTLINE = "plan_outline"
PLAN_FORM = "plan_form"
PLAN_PROGRESS = "plan_progress"
REVIEW = "review"
PULL = "pull"
DIFF = "diff"
FILES = "files"
COMMENT = "comment"
CHECKS = "checks"
AUTOMATION = "automation"

SCOPE_TITLES = {
    APP: "Everywhere",
    MAIN: "Agents",
    ZOOM: "Zoomed agent",
    QUEUE: "Queue",
    TRANSCRIPT: "Transcript (zoomed agent)",
    DISPATCH: "New request dialog",
    CONFIRM: "Confirmation",
    QUIT: "Quit dialog",
    PICKER: "Agent picker",
    HELP: "This keys screen",
    PLANS: "Plan list",
    PLAN_EDITOR: "Plan editor",
    PLAN_OUTLINE: "Plan outline (plan editor)",
    PLAN_FORM: "File globs (plan editor)",
    PLAN_PROGRESS: "Plan progress",
    REVIEW: "Pull requests",
    PULL: "Pull request",
    DIFF: "Diff (pull request)",
    FILES: "Changed files (pull request)",
    COMMENT: "Comment dialog",
    CHECKS: "Checks",
    AUTOMATION: "Automation",
}


@dataclass(frozen=True)
class CockpitAction:
    """One action: ``id`` is the binding id used in ``[ui.keys]``; ``action`` the Textual action."""

    id: str
    keys: str
    action: str
    description: str
    scope: str
    help: str
    show: bool = True
    priority: bool = False
    palette: bool = True


ACTIONS: tuple[CockpitAction, ...] = (
    CockpitAction("quit", "ctrl+q", "app.request_quit", "Quit", APP,
                  "Quit, choosing whether the agents keep running", priority=True),
    CockpitAction("help", "f1,question_mark", "app.help", "Keys", APP, "Show every key and what it does"),
    CockpitAction("dispatch", "n", "dispatch", "New request", MAIN, "Send a new request to an agent"),
    CockpitAction("zoom", "enter", "zoom", "Zoom", MAIN, "Open the selected agent full screen"),
    CockpitAction("queue", "q", "app.show_queue", "Queue", MAIN, "Show every request and its status"),
    CockpitAction("fleet", "t", "toggle_fleet", "Fleet table", MAIN, "Switch between agent panes and the fleet table"),
    CockpitAction("stop", "x", "stop", "Stop run", MAIN, "Stop the selected agent's run (asks first)"),
    CockpitAction("retry", "r", "retry", "Retry", MAIN, "Queue the selected agent's last failed request again"),
    CockpitAction("review", "p", "app.show_review", "Pull requests", MAIN,
                  "Review the agents' pull requests: files, diffs, comments, merge"),
    CockpitAction("focus_left", "left,h", "focus_neighbour('left')", "Left", MAIN, "Select the agent to the left",
                  show=False, palette=False),
    CockpitAction("focus_right", "right,l", "focus_neighbour('right')", "Right", MAIN,
                  "Select the agent to the right", show=False, palette=False),
    CockpitAction("focus_up", "up,k", "focus_neighbour('up')", "Up", MAIN, "Select the agent above",
                  show=False, palette=False),
    CockpitAction("focus_down", "down,j", "focus_neighbour('down')", "Down", MAIN, "Select the agent below",
                  show=False, palette=False),
    CockpitAction("back", "escape", "back", "Back", ZOOM, "Return to the agents"),
    CockpitAction("follow", "f", "toggle_follow", "Follow", ZOOM, "Follow new output, or pause to read"),
    CockpitAction("search", "slash", "search", "Search", ZOOM, "Search the transcript"),
    CockpitAction("search_next", "n", "search_next", "Next match", ZOOM, "Go to the next search match"),
    CockpitAction("search_previous", "N", "search_previous", "Previous match", ZOOM,
                  "Go to the previous search match"),
    CockpitAction("side_panel", "s", "toggle_side", "Side panel", ZOOM, "Show or hide todo, sub-agents and runs"),
    CockpitAction("stop", "x", "stop", "Stop run", ZOOM, "Stop this agent's run (asks first)"),
    CockpitAction("back", "escape", "back", "Back", QUEUE, "Return to the agents"),
    CockpitAction("cancel", "c", "cancel", "Cancel", QUEUE, "Cancel the selected request (asks first when running)"),
    CockpitAction("priority_up", "plus,equals_sign", "priority(1)", "Priority +", QUEUE,
                  "Raise the selected request's priority"),
    CockpitAction("priority_down", "minus", "priority(-1)", "Priority −", QUEUE,
                  "Lower the selected request's priority"),
    CockpitAction("retry", "r", "retry", "Retry", QUEUE, "Queue a failed or cancelled request again"),
    CockpitAction("move", "m", "move", "Move", QUEUE, "Move a waiting request to another agent"),
    CockpitAction("dispatch", "n", "dispatch", "New request", QUEUE, "Send a new request to an agent"),
    CockpitAction("submit", "ctrl+s", "submit", "Send", DISPATCH, "Send the request"),
    CockpitAction("back", "escape", "back", "Cancel", DISPATCH, "Close the dialog without sending"),
    CockpitAction("transcript_up", "up", "cursor(-1)", "Up", TRANSCRIPT, "Select the previous event",
                  show=False, palette=False),
    CockpitAction("transcript_down", "down", "cursor(1)", "Down", TRANSCRIPT, "Select the next event",
                  show=False, palette=False),
    CockpitAction("transcript_page_up", "pageup", "page(-1)", "Page up", TRANSCRIPT, "Go one page up",
                  show=False, palette=False),
    CockpitAction("transcript_page_down", "pagedown", "page(1)", "Page down", TRANSCRIPT, "Go one page down",
                  show=False, palette=False),
    CockpitAction("transcript_first", "home", "first", "First", TRANSCRIPT, "Go to the first event",
                  show=False, palette=False),
    CockpitAction("transcript_last", "end", "last", "Last", TRANSCRIPT, "Go to the newest event and follow",
                  show=False, palette=False),
    CockpitAction("confirm_yes", "y", "choose(True)", "Yes", CONFIRM, "Confirm", palette=False),
    CockpitAction("confirm_no", "n,escape", "choose(False)", "No", CONFIRM, "Do not do it", palette=False),
    CockpitAction("quit_leave", "l", "choose('leave')", "Leave running", QUIT,
                  "Quit and leave the agents running; the next start re-attaches", palette=False),
    CockpitAction("quit_stop", "s", "choose('stop')", "Stop all", QUIT, "Stop every run, then quit", palette=False),
    CockpitAction("quit_stay", "escape", "choose(None)", "Stay", QUIT, "Do not quit", palette=False),
    CockpitAction("picker_cancel", "escape", "cancel", "Cancel", PICKER, "Close the picker", palette=False),
    CockpitAction("help_close", "escape,f1,question_mark", "close", "Close", HELP, "Close the keys screen",
                  palette=False),
    CockpitAction("review_open", "enter", "open_pull", "Open", REVIEW, "Open the selected pull request: files and diff"),
    CockpitAction("back", "escape", "back", "Back", REVIEW, "Return to the agents"),
    CockpitAction("checks", "t", "show_checks", "Checks", REVIEW, "Show the check results and their output"),
    CockpitAction("review_reload", "ctrl+r", "reload", "Reload", REVIEW, "Read the pull requests from disk again"),
    CockpitAction("back", "escape", "back", "Back", PULL, "Return to the pull request list"),
    CockpitAction("next_file", "right_square_bracket", "next_file", "Next file", PULL, "Open the next changed file"),
    CockpitAction("next_hunk", "n", "next_hunk", "Next hunk", PULL, "Go to the next hunk, then to the next file"),
    CockpitAction("comment", "c", "comment", "Comment", PULL, "Comment on the line under the cursor"),
    CockpitAction("viewed", "v", "toggle_viewed", "Viewed", PULL,
                  "Mark the file viewed or not; the mark resets when the file changes again"),
    CockpitAction("split", "s", "toggle_split", "Split", PULL, "Switch between the unified and the side-by-side diff"),
    CockpitAction("merge", "m", "merge", "Merge", PULL, "Approve and merge into the target branch (asks first)"),
    CockpitAction("request_changes", "R", "request_changes", "Request changes", PULL,
                  "Send the comments back to the agent as a new request on the same branch"),
    CockpitAction("checks", "t", "show_checks", "Checks", PULL, "Show the check results and their output"),
    CockpitAction("rebase_request", "b", "rebase_request", "Rebase request", PULL,
                  "Ask the agent to rebase its branch onto the target and resolve the conflicts"),
    CockpitAction("full_file", "f", "load_full", "Whole file", PULL, "Load the whole diff of a file too large to show at once"),
    CockpitAction("approve", "a", "approve", "Approve", PULL, "Approve the pull request without merging it"),
    CockpitAction("close_pull", "x", "close_pull", "Close", PULL, "Close without merging (asks first); the branch is kept"),
    CockpitAction("previous_file", "left_square_bracket", "previous_file", "Previous file", PULL,
                  "Open the previous changed file", show=False),
    CockpitAction("previous_hunk", "N", "previous_hunk", "Previous hunk", PULL,
                  "Go to the previous hunk, then to the previous file", show=False),
    CockpitAction("comment_hunk", "C", "comment_hunk", "Comment hunk", PULL, "Comment on the hunk under the cursor",
                  show=False),
    CockpitAction("diff_up", "up,k", "cursor(-1)", "Up", DIFF, "Move the cursor one line up", show=False, palette=False),
    CockpitAction("diff_down", "down,j", "cursor(1)", "Down", DIFF, "Move the cursor one line down", show=False, palette=False),
    CockpitAction("diff_page_up", "pageup", "page(-1)", "Page up", DIFF, "Go one page up", show=False, palette=False),
    CockpitAction("diff_page_down", "pagedown", "page(1)", "Page down", DIFF, "Go one page down", show=False, palette=False),
    CockpitAction("diff_first", "home", "first", "First", DIFF, "Go to the first line", show=False, palette=False),
    CockpitAction("diff_last", "end", "last", "Last", DIFF, "Go to the last line", show=False, palette=False),
    CockpitAction("diff_left", "left,h", "shift(-1)", "Left", DIFF, "Show the start of long lines again", show=False,
                  palette=False),
    CockpitAction("diff_right", "right,l", "shift(1)", "Right", DIFF, "Show more of long lines", show=False, palette=False),
    CockpitAction("files_up", "up,k", "cursor(-1)", "Up", FILES, "Select the previous file", show=False, palette=False),
    CockpitAction("files_down", "down,j", "cursor(1)", "Down", FILES, "Select the next file", show=False, palette=False),
    CockpitAction("files_page_up", "pageup", "page(-1)", "Page up", FILES, "Go one page of files up", show=False,
                  palette=False),
    CockpitAction("files_page_down", "pagedown", "page(1)", "Page down", FILES, "Go one page of files down", show=False,
                  palette=False),
    CockpitAction("files_first", "home", "first", "First", FILES, "Select the first file", show=False, palette=False),
    CockpitAction("files_last", "end", "last", "Last", FILES, "Select the last file", show=False, palette=False),
    CockpitAction("files_open", "enter", "select", "Open", FILES, "Move to the diff of the selected file", show=False,
                  palette=False),
    CockpitAction("submit", "ctrl+s", "submit", "Send", COMMENT, "Save the comment or send the request"),
    CockpitAction("back", "escape", "back", "Cancel", COMMENT, "Close the dialog without saving"),
    CockpitAction("back", "escape", "back", "Back", CHECKS, "Return to the pull request"),
    CockpitAction("plans", "P", "app.show_plans", "Plans", MAIN, "Open a plan, or create one from a template"),
    CockpitAction("automation", "a", "app.show_automation", "Automation", MAIN,
                  "Show the automation rules and recent automation events"),
    CockpitAction("back", "escape", "back", "Back", AUTOMATION, "Return to the agents"),
    CockpitAction("automation_toggle", "space", "toggle_rule", "On/off", AUTOMATION, "Enable or disable the selected rule"),
    CockpitAction("automation_fire", "f", "fire_rule", "Fire now", AUTOMATION,
                  "Fire the selected rule at once, as if its trigger happened"),
    CockpitAction("picker_cancel", "escape", "cancel", "Cancel", PLANS, "Close the plan list", palette=False),
    CockpitAction("plan_new", "ctrl+n", "new_plan", "New plan", PLANS, "Move to the template and title of a new plan"),
    CockpitAction("plan_progress", "f9", "progress", "Progress", PLANS, "Show the highlighted plan's progress"),
    CockpitAction("plan_save", "ctrl+s", "save", "Save", PLAN_EDITOR,
                  "Write the plan file, keeping its comments and layout"),
    CockpitAction("plan_run", "f5", "run_plan", "Run", PLAN_EDITOR, "Save the plan and run it in the orchestrator"),
    CockpitAction("plan_next_problem", "f8", "next_problem", "Next problem", PLAN_EDITOR,
                  "Jump to the next problem in the TOML source"),
    CockpitAction("plan_previous_problem", "shift+f8", "previous_problem", "Previous problem", PLAN_EDITOR,
                  "Jump to the previous problem in the TOML source", show=False),
    CockpitAction("plan_toggle_view", "f4", "toggle_view", "Form/TOML", PLAN_EDITOR,
                  "Switch between the form and the TOML source when the screen is too narrow for both"),
    CockpitAction("plan_outline", "f3", "focus_outline", "Outline", PLAN_EDITOR, "Move to the outline of phases and tasks"),
    CockpitAction("plan_undo", "ctrl+z", "undo", "Undo", PLAN_EDITOR, "Undo the last edit, made in the form or the TOML",
                  show=False),
    CockpitAction("plan_redo", "ctrl+y", "redo", "Redo", PLAN_EDITOR, "Redo the last undone edit", show=False),
    CockpitAction("plan_progress", "f9", "progress", "Progress", PLAN_EDITOR,
                  "Show the plan's progress: task statuses, pull requests, phases"),
    CockpitAction("plan_open", "ctrl+o", "open_plans", "Open", PLAN_EDITOR, "Open another plan or create one"),
    CockpitAction("back", "escape", "back", "Back", PLAN_EDITOR, "Close the editor (asks first if there are unsaved edits)"),
    CockpitAction("plan_add_task", "a", "screen.add_task", "Add task", PLAN_OUTLINE,
                  "Add a task after the selected one, or at the end of the selected phase"),
    CockpitAction("plan_add_phase", "p", "screen.add_phase", "Add phase", PLAN_OUTLINE,
                  "Add a phase after the selected one"),
    CockpitAction("plan_rename", "r,f2", "screen.rename", "Rename", PLAN_OUTLINE,
                  "Rename the selected phase, or change the selected task's id (its dependents follow)"),
    CockpitAction("plan_delete", "d,delete", "screen.delete", "Delete", PLAN_OUTLINE,
                  "Delete the selected phase or task (ctrl+z undoes it)"),
    CockpitAction("plan_duplicate", "c", "screen.duplicate", "Duplicate", PLAN_OUTLINE,
                  "Copy the selected phase or task below itself, with new task ids"),
    CockpitAction("plan_move_up", "K,ctrl+up", "screen.move(-1)", "Move up", PLAN_OUTLINE,
                  "Move the selected phase or task up (a first task goes to the phase before)"),
    CockpitAction("plan_move_down", "J,ctrl+down", "screen.move(1)", "Move down", PLAN_OUTLINE,
                  "Move the selected phase or task down (a last task goes to the next phase)"),
    CockpitAction("plan_remove_glob", "delete,backspace", "remove_highlighted", "Remove", PLAN_FORM,
                  "Remove the highlighted glob"),
    CockpitAction("back", "escape", "back", "Back", PLAN_PROGRESS, "Return to the previous screen"),
    CockpitAction("plan_retry_task", "r", "retry_task", "Retry task", PLAN_PROGRESS,
                  "Dispatch the selected failed task again, with the plan file as it is now"),
    CockpitAction("plan_skip_task", "s", "skip_task", "Skip task", PLAN_PROGRESS,
                  "Skip the selected task: its phase and the tasks depending on it go on without it"),
    CockpitAction("plan_abort", "x", "abort_plan", "Abort plan", PLAN_PROGRESS,
                  "Stop dispatching this plan's tasks (asks first); queued and running requests go on"),
    CockpitAction("plan_edit", "e", "edit_plan", "Edit", PLAN_PROGRESS, "Open the plan in the editor"),
    CockpitAction("plan_run", "f5", "run_plan", "Run", PLAN_PROGRESS, "Start or resume the plan"),
)


def actions(scope: str) -> list[CockpitAction]:
    return [action for action in ACTIONS if action.scope == scope]


def bindings(scope: str) -> list[Binding]:
    """Return Textual bindings for a scope, each carrying its binding id."""
    return [
        Binding(
            action.keys,
            action.action,
            action.description,
            show=action.show,
            priority=action.priority,
            id=action.id,
            tooltip=action.help,
        )
        for action in actions(scope)
    ]


def binding_ids() -> set[str]:
    return {action.id for action in ACTIONS}


def check_keymap(keys: dict[str, str]) -> list[str]:
    """Return one message per unknown binding id or empty key in a ``[ui.keys]`` table."""
    problems: list[str] = []
    known = binding_ids()
    for binding_id, key in keys.items():
        if binding_id not in known:
            problems.append(
                f"unknown binding id {binding_id!r} in [ui.keys]; known ids: {', '.join(sorted(known))}"
            )
        elif not key.strip():
            problems.append(f"empty key for binding id {binding_id!r} in [ui.keys]; set a key such as 'ctrl+n'")
    return problems


def display_keys(keys: str) -> str:
    """Format a comma-separated key list for people: ``f1,question_mark`` -> ``f1 ?``."""
    return " ".join(format_key(key.strip()) for key in keys.split(",") if key.strip())


def effective_keys(action: CockpitAction, keymap: dict[str, str]) -> str:
    return keymap.get(action.id, action.keys)


def help_rows(keymap: dict[str, str]) -> Iterable[tuple[str, str, str, str]]:
    """Yield ``(scope title, keys, description, binding id)`` for every action, in registry order."""
    for action in ACTIONS:
        yield SCOPE_TITLES[action.scope], display_keys(effective_keys(action, keymap)), action.help, action.id


class FocusedWidgetCommands(Provider):
    """Command palette provider of the focused widget's actions.

    It walks from the focused widget up to its screen and lists the palette actions of each
    ``BINDING_SCOPE`` on the way. The screen's own scope is left out, because the app lists it.
    Each action runs on the widget that declared its scope, as its key would.
    """

    def _commands(self) -> list[tuple[CockpitAction, Widget]]:
        commands: list[tuple[CockpitAction, Widget]] = []
        seen: set[str] = set()
        node = self.focused
        while isinstance(node, Widget) and node is not self.screen:
            scope = getattr(node, "BINDING_SCOPE", None)
            if scope and scope not in seen:
                seen.add(scope)
                commands += [(action, node) for action in actions(scope) if action.palette]
            node = node.parent
        return commands

    async def discover(self) -> Hits:
        for action, widget in self._commands():
            yield DiscoveryHit(action.description, partial(widget.run_action, action.action), help=action.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action, widget in self._commands():
            score = matcher.match(action.description)
            if score > 0:
                yield Hit(score, matcher.highlight(action.description), partial(widget.run_action, action.action), help=action.help)
