"""Cycles in the dependency graph of a plan's tasks."""

from __future__ import annotations

from collections import deque


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Return one cycle per strongly connected component that has one, in the graph's order.

    ``graph`` maps a task id to the ids it depends on. Each cycle starts at the component's
    first task in graph order and is the shortest way back to it.
    """
    order = {node: n for n, node in enumerate(graph)}
    found = []
    for component in _components(graph):
        members = set(component)
        start = min(component, key=lambda n: order.get(n, len(order)))
        if len(component) == 1 and start not in graph.get(start, []):
            continue
        found.append(_shortest_cycle(graph, start, members))
    found.sort(key=lambda cycle: order.get(cycle[0], len(order)))
    return found


def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    # Tarjan's algorithm with an explicit stack, so a long chain of dependencies cannot exceed
    # Python's recursion limit.
    index_of: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index_of:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index_of[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            edges = graph.get(node, [])
            if position < len(edges):
                work.append((node, position + 1))
                nxt = edges[position]
                if nxt not in index_of:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index_of[nxt])
                continue
            if low[node] == index_of[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _shortest_cycle(graph: dict[str, list[str]], start: str, members: set[str]) -> list[str]:
    # Breadth-first search inside the component for the shortest way back to ``start``.
    parents: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, []):
            if nxt == start:
                path = [node]
                while parents[path[-1]] is not None:
                    path.append(parents[path[-1]])  # type: ignore[arg-type]
                return list(reversed(path))
            if nxt in members and nxt not in parents:
                parents[nxt] = node
                queue.append(nxt)
    return [start]
