"""The read-only inventory: hosts, groups, and variables merged with Ansible's precedence.

Precedence, lowest first, as ansible-core's default ``VARIABLE_PRECEDENCE``: ``all`` vars from
the inventory source, other groups' vars from the source (by depth, then
``ansible_group_priority``, then name), ``group_vars/all``, ``group_vars/<group>`` in the same
group order, host vars from the source, ``host_vars/<host>``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import NotFound

if TYPE_CHECKING:
    from orchestrator.inventory.connection import HostConnection

# Variables Ansible computes itself and leaves out of ``ansible-inventory`` output.
INTERNAL_VARS = frozenset(
    {
        "ansible_async_path", "ansible_collection_name", "ansible_config_file",
        "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts", "ansible_forks",
        "ansible_inventory_sources", "ansible_limit", "ansible_play_batch", "ansible_play_hosts",
        "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
        "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
        "ansible_verbosity", "ansible_version", "group_names", "groups", "hostvars",
        "inventory_dir", "inventory_file", "inventory_hostname", "inventory_hostname_short",
        "play_hosts", "playbook_dir", "role_name", "role_names", "role_path", "role_uuid",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Group:
    """One group. ``hosts`` and ``children`` are direct members, in Ansible's order."""

    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    parents: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)  # from the inventory source
    file_vars: dict[str, Any] = field(default_factory=dict)  # from group_vars/
    priority: int = 1  # ansible_group_priority
    depth: int = 0  # longest path from ``all``


@dataclass(frozen=True)
class Host:
    """One host. ``groups`` are all groups holding it (directly or below), ``all`` first."""

    name: str
    vars: dict[str, Any] = field(default_factory=dict)  # from the inventory source
    file_vars: dict[str, Any] = field(default_factory=dict)  # from host_vars/
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inventory:
    """A parsed inventory. ``hosts`` and ``groups`` keep Ansible's declaration order."""

    source: str
    hosts: dict[str, Host]
    groups: dict[str, Group]
    warnings: tuple[str, ...] = ()
    base_dir: Path | None = None  # where group_vars/ and host_vars/ are read from
    format: str | None = None  # "ini" or "yaml" for text read by parse_inventory

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise NotFound(f"host {name!r} is not in inventory {self.source}") from None

    def group(self, name: str) -> Group:
        try:
            return self.groups[name]
        except KeyError:
            raise NotFound(f"group {name!r} is not in inventory {self.source}") from None

    def host_vars(self, name: str) -> dict[str, Any]:
        """All variables of host ``name``, merged as Ansible merges them."""
        host = self.host(name)
        everyone = self.groups["all"]
        ordered = [self.groups[g] for g in host.groups if g != "all"]
        merged = dict(everyone.vars)
        for group in ordered:
            merged |= group.vars
        merged |= everyone.file_vars
        for group in ordered:
            merged |= group.file_vars
        merged |= host.vars
        merged |= host.file_vars
        # A deep copy, so that a caller changing a nested value cannot change the inventory.
        return copy.deepcopy({k: v for k, v in merged.items() if k not in INTERNAL_VARS})

    def group_hosts(self, name: str) -> list[str]:
        """Hosts of group ``name`` and of every group below it, in Ansible's order."""
        hosts: dict[str, None] = {}
        for group in self._descendants(name):
            hosts.update(dict.fromkeys(self.groups[group].hosts))
        return list(hosts)

    def connection(self, name: str) -> HostConnection:
        """How to reach host ``name`` over SSH, from its merged variables."""
        from orchestrator.inventory.connection import connection_for

        return connection_for(name, self.host_vars(name), self.source)

    def select(self, pattern: str = "all", limit: str | list[str] | None = None) -> list[str]:
        """Host names matching an Ansible host pattern (and ``limit``), in Ansible's order."""
        from orchestrator.inventory.patterns import select_hosts

        return list(select_hosts(self, pattern, limit).hosts)

    def _descendants(self, name: str) -> list[str]:
        """``name``, its children, then deeper levels breadth-first (Ansible's walk).

        Ansible visits levels below the children in Python set order, which follows memory
        addresses; declaration order is used here instead, which is what Ansible prints
        whenever at most one group per level has children.
        """
        ordered = [name, *self.group(name).children]
        seen = set(ordered)
        level = list(dict.fromkeys(self.groups[name].children))
        while level:
            following: list[str] = []
            for group in level:
                for child in self.groups[group].children:
                    if child not in seen:
                        seen.add(child)
                        ordered.append(child)
                        following.append(child)
            level = following
        return ordered
