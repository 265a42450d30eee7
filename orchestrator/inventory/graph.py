"""The mutable host/group graph that format readers fill, with Ansible's ordering rules.

Readers call ``add_group``, ``add_host``, ``add_child`` and ``set_variable`` in file order;
``reconcile`` then applies Ansible's implicit rules (every group under ``all``, hostless hosts in
``ungrouped``). Insertion order is kept everywhere because Ansible's output depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class GraphError(ValueError):
    """Raised when a group or host operation breaks an inventory rule."""


@dataclass
class GroupNode:
    name: str
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    priority: int = 1


@dataclass
class HostNode:
    name: str
    vars: dict[str, Any] = field(default_factory=dict)


class InventoryGraph:
    """Hosts and groups being built; ``all`` and ``ungrouped`` exist from the start."""

    def __init__(self) -> None:
        self.groups: dict[str, GroupNode] = {}
        self.hosts: dict[str, HostNode] = {}
        self.warnings: list[str] = []
        self.add_group("all")
        self.add_group("ungrouped")
        self.add_child("all", "ungrouped")

    def add_group(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise GraphError(f"invalid group name {name!r}: expected a non-empty string")
        self.groups.setdefault(name, GroupNode(name))
        return name

    def add_host(self, name: str, group: str | None = None, port: int | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"invalid host name {name!r}: expected a non-empty string")
        if name not in self.hosts:
            self.hosts[name] = HostNode(name)
            # Ansible sets the port only when it first meets the host.
            if port:
                self.hosts[name].vars["ansible_port"] = int(port)
        if group is not None:
            members = self._group(group).hosts
            if name not in members:
                members.append(name)

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
        if child in self.ancestors(parent):
            raise GraphError(
                f"adding group {child!r} as child to {parent!r} creates a recursive dependency loop"
            )
        node.children.append(child)
        if parent not in self.groups[child].parents:
            self.groups[child].parents.append(parent)

    def set_variable(self, entity: str, key: Any, value: Any) -> None:
        if entity in self.groups:
            if key == "ansible_group_priority":
                self.groups[entity].priority = _priority(value)
            else:
                self.groups[entity].vars[key] = value
        elif entity in self.hosts:
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
                    ungrouped.hosts.remove(host)
            elif not mine or mine == {"all"}:
                ungrouped.hosts.append(host)
        for conflict in sorted(self.groups.keys() & self.hosts.keys()):
            warning = f"Found both group and host with same name: {conflict}"
            if warning not in self.warnings:
                self.warnings.append(warning)

    def memberships(self) -> dict[str, set[str]]:
        """Every group each host belongs to, directly or through a child group."""
        member_of: dict[str, set[str]] = {}
        for name, group in self.groups.items():
            if group.hosts:
                lineage = self.ancestors(name) | {name}
                for host in group.hosts:
                    member_of.setdefault(host, set()).update(lineage)
        return member_of

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
