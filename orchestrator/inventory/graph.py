"""The mutable host/group graph that format readers fill, with Ansible's ordering rules.

Readers call ``add_group``, ``add_host``, ``add_child`` and ``set_variable`` in file order;
``reconcile`` then applies Ansible's implicit rules (every group under ``all``, hostless hosts in
``ungrouped``). Insertion order is kept everywhere because Ansible's output depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.inventory.limits import (
    MAX_ASSIGNMENTS,
    MAX_GROUPS,
    MAX_HOST_NAME_CHARS,
    MAX_HOSTS,
    MAX_LINK_STEPS,
    MAX_MEMBERSHIPS,
)


class GraphError(ValueError):
    """Raised when a group or host operation breaks an inventory rule."""


# Members are dicts used as ordered sets: insertion order as Ansible's lists keep it, and a
# membership test that stays O(1) when a range adds 10,000 hosts to one group.
@dataclass
class GroupNode:
    name: str
    hosts: dict[str, None] = field(default_factory=dict)
    children: dict[str, None] = field(default_factory=dict)
    parents: dict[str, None] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass
class HostNode:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)


class InventoryGraph:
    """Hosts and groups being built; ``all`` and ``ungrouped`` exist from the start.

    Every operation counts against the caps of :mod:`orchestrator.inventory.limits`, so that
    no text can make reading it cost more than those allow."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupNode] = {}
        self.hosts: dict[str, HostNode] = {}
        self.warnings: list[str] = []
        self.assignments = 0
        self.link_steps = 0
        self.add_group("all")
        self.add_group("ungrouped")
        self.add_child("all", "ungrouped")

    def add_group(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise GraphError(f"invalid group name {name!r}: expected a non-empty string")
        if name not in self.groups:
            if len(self.groups) >= MAX_GROUPS:
                raise GraphError(f"more than {MAX_GROUPS} groups")
            self.groups[name] = GroupNode(name)
        return name

    def add_host(self, name: str, group: str | None = None, port: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"invalid host name {name!r}: expected a non-empty string")
        if name not in self.hosts:
            if len(name) > MAX_HOST_NAME_CHARS:
                raise GraphError(
                    f"host name {name[:40]!r}... is longer than {MAX_HOST_NAME_CHARS} characters"
                )
            if len(self.hosts) >= MAX_HOSTS:
                raise GraphError(f"more than {MAX_HOSTS} hosts in one inventory")
            self.hosts[name] = HostNode(name)
            # Ansible sets the port only when it first meets the host.
            if port:
                self.hosts[name].vars["ansible_port"] = int(port)
        if group is not None:
            members = self._group(group).hosts
            self._count_assignment()
            members.setdefault(name)

    def add_child(self, parent: str, child: str) -> None:
        """Make group ``child`` a child of ``parent`` (or add host ``child`` to it)."""
        if child not in self.groups:
            if child in self.hosts:
                self.add_host(child, parent)
                return
            raise GraphError(f"{child} is not a known host nor group")
        node = self._group(parent)
        if parent == child:
            raise GraphError(f"group {parent!r} cannot be a child of itself")
        if child in node.children:
            return
        if self._is_ancestor(child, parent):
            raise GraphError(
                f"adding group {child!r} as child to {parent!r} creates a recursive dependency loop"
            )
        self._count_assignment()
        node.children.setdefault(child)
        self.groups[child].parents.setdefault(parent)

    def set_variable(self, entity: str, key: Any, value: Any) -> None:
        if entity in self.groups:
            if key == "ansible_group_priority":
                self.groups[entity].priority = _priority(value)
            else:
                self.groups[entity].vars[key] = value
        elif entity in self.hosts:
            self._count_assignment()
            self.hosts[entity].vars[key] = value
        else:
            raise GraphError(f"could not identify group or host named {entity}")

    def ancestors(self, group: str) -> set[str]:
        found: set[str] = set()
        todo = list(self.groups[group].parents)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(self.groups[name].parents)
        return found

    def reconcile(self) -> None:
        """Apply Ansible's implicit rules, as ``InventoryData.reconcile_inventory`` does."""
        for name in list(self.groups):
            if name != "all" and not self.groups[name].parents:
                self.add_child("all", name)
        member_of = self.memberships()
        ungrouped = self.groups["ungrouped"]
        for host in self.hosts:
            mine = member_of.get(host, set())
            if "ungrouped" in mine:
                if mine - {"all", "ungrouped"} and host in ungrouped.hosts:
                    del ungrouped.hosts[host]
            elif not mine or mine == {"all"}:
                ungrouped.hosts.setdefault(host)
        for conflict in sorted(self.groups.keys() & self.hosts.keys()):
            warning = f"Found both group and host with same name: {conflict}"
            if warning not in self.warnings:
                self.warnings.append(warning)

    def memberships(self) -> dict[str, set[str]]:
        """Every group each host belongs to, directly or through a child group."""
        lineages = self._lineages()
        member_of: dict[str, set[str]] = {}
        work = 0
        for name, group in self.groups.items():
            lineage = lineages[name]
            work += len(group.hosts) * len(lineage)
            if work > MAX_MEMBERSHIPS:
                raise GraphError(
                    f"hosts are in more than {MAX_MEMBERSHIPS} groups in all (a host counts "
                    "once for each group it is listed in and for each group above that one)"
                )
            for host in group.hosts:
                member_of.setdefault(host, set()).update(lineage)
        return member_of

    def _lineages(self) -> dict[str, frozenset[str]]:
        """Each group with all its ancestors, each group's set built once from its parents'."""
        done: dict[str, frozenset[str]] = {}
        for start in self.groups:
            todo = [start]
            while todo:
                name = todo[-1]
                if name in done:
                    todo.pop()
                    continue
                parents = self.groups[name].parents
                waiting = [p for p in parents if p not in done]
                if waiting:
                    todo.extend(waiting)
                    continue
                todo.pop()
                done[name] = frozenset({name}.union(*(done[p] for p in parents)))
        return done

    def _is_ancestor(self, group: str, of: str) -> bool:
        """Whether ``group`` is above ``of``: the walk up from ``of`` is counted, because a
        text that links many groups could make these walks cost minutes."""
        if not self.groups[group].children:
            return False  # a group with no children is above no group
        found: set[str] = set()
        todo = list(self.groups[of].parents)
        while todo:
            name = todo.pop()
            self.link_steps += 1
            if self.link_steps > MAX_LINK_STEPS:
                raise GraphError(
                    f"the links between groups are too tangled to check for loops (more than "
                    f"{MAX_LINK_STEPS} steps)"
                )
            if name == group:
                return True
            if name not in found:
                found.add(name)
                todo.extend(self.groups[name].parents)
        return False

    def _count_assignment(self) -> None:
        self.assignments += 1
        if self.assignments > MAX_ASSIGNMENTS:
            raise GraphError(
                f"more than {MAX_ASSIGNMENTS} host entries and variables once host ranges are "
                "expanded (each host a line or range names counts, and each variable set on it)"
            )

    def _group(self, name: str) -> GroupNode:
        try:
            return self.groups[name]
        except KeyError:
            raise GraphError(f"{name} is not a known group") from None


def _priority(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise GraphError(f"ansible_group_priority must be an integer, got {value!r}") from None
