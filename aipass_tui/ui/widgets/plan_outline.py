"""The plan editor's outline: the plan, its phases and their tasks, as a tree.

The keys that change the structure (add, rename, delete, duplicate, move) are bound here, so
they act only while the outline has the focus, and the command palette lists them then. The
editor screen carries out each action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from aipass_tui.ui import bindings
from aipass_tui.ui.plan_document import PhaseEntry
from aipass_tui.ui.widgets.color_mode import mark_standard_colors

PROBLEM_MARK = "! "


@dataclass(frozen=True)
class OutlineKey:
    """The entry a node of the outline stands for: the plan, phase ``phase``, or task ``task`` of it."""

    kind: Literal["plan", "phase", "task"]
    phase: int = -1
    task: int = -1

    @classmethod
    def of_loc(cls, loc: tuple[str | int, ...]) -> "OutlineKey":
        """Return the node of a problem's location, such as ``("phases", 1, "tasks", 0, "agent")``."""
        if len(loc) >= 4 and loc[0] == "phases" and isinstance(loc[1], int) and loc[2] == "tasks" and isinstance(loc[3], int):
            return cls("task", loc[1], loc[3])
        if len(loc) >= 2 and loc[0] == "phases" and isinstance(loc[1], int):
            return cls("phase", loc[1])
        return cls("plan")


PLAN = OutlineKey("plan")


class PlanOutline(Tree[OutlineKey]):
    """Phases and tasks of the plan being edited; a ``!`` marks an entry with a problem."""

    BINDINGS = bindings.bindings(bindings.PLAN_OUTLINE)
    BINDING_SCOPE = bindings.PLAN_OUTLINE

    DEFAULT_CSS = """
    PlanOutline.-standard-colors:focus > .tree--cursor { color: $background; }
    """
    """With 16 colours the focused cursor line becomes bright white on cyan, so its text takes the background colour."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("Plan", data=PLAN, id=id)
        self.auto_expand = False
        self.guide_depth = 2
        self._shape: tuple[int, ...] | None = None

    def on_mount(self) -> None:
        mark_standard_colors(self)

    @property
    def selected(self) -> OutlineKey:
        node = self.cursor_node
        return node.data if node is not None and node.data is not None else PLAN

    def show(self, title: str, phases: list[PhaseEntry], marked: set[OutlineKey], select: OutlineKey | None = None) -> None:
        """Show the plan; keep the cursor on ``select``, or on the selected entry when it still exists."""
        target = select or self.selected
        shape = tuple(len(phase.tasks) for phase in phases)
        if shape != self._shape:
            self._rebuild(phases)
            self._shape = shape
            # clear() keeps the old cursor node; unselect so the move below reads the new nodes.
            self.unselect()
        self._label_all(title, phases, marked)
        self.select_key(target)

    def select_key(self, key: OutlineKey) -> None:
        """Move the cursor to ``key``, or to its closest existing parent."""
        line = self._line_of(key)
        if line is not None and line != self.cursor_line:
            self.move_cursor_to_line(line)

    def _rebuild(self, phases: list[PhaseEntry]) -> None:
        self.clear()
        for phase_index, phase in enumerate(phases):
            node = self.root.add("", data=OutlineKey("phase", phase_index), expand=True)
            for task_index in range(len(phase.tasks)):
                node.add_leaf("", data=OutlineKey("task", phase_index, task_index))
        self.root.expand()

    def _label_all(self, title: str, phases: list[PhaseEntry], marked: set[OutlineKey]) -> None:
        _relabel(self.root, title or "(untitled plan)", PLAN in marked)
        for phase_index, (node, phase) in enumerate(zip(self.root.children, phases)):
            key = OutlineKey("phase", phase_index)
            _relabel(node, f"{phase_index + 1}. {phase.name or '(no name)'}", key in marked)
            for task_index, (leaf, task) in enumerate(zip(node.children, phase.tasks)):
                task_key = OutlineKey("task", phase_index, task_index)
                _relabel(leaf, f"{task.id or '(no id)'} · {task.agent or '(no agent)'}", task_key in marked)

    def _line_of(self, key: OutlineKey) -> int:
        """Return the tree line of ``key``, or of its closest existing parent (the root is line 0)."""
        phases = list(self.root.children)
        if key.kind == "plan" or not phases:
            return 0
        phase_index = min(key.phase, len(phases) - 1)
        line = 0
        for index, node in enumerate(phases):
            line += 1
            if index == phase_index:
                break
            if node.is_expanded:
                line += len(node.children)
        node = phases[phase_index]
        if key.kind == "task" and key.phase == phase_index and node.is_expanded and node.children:
            line += 1 + min(key.task, len(node.children) - 1)
        return line


def _relabel(node: TreeNode[OutlineKey], text: str, marked: bool) -> None:
    """Set a node's label when it changed (setting one redraws the tree)."""
    label = PROBLEM_MARK + text if marked else text
    if node.label.plain != label:
        # Text, not markup: names and ids come from the user's file and may contain brackets.
        node.set_label(Text(label, no_wrap=True, overflow="ellipsis"))
