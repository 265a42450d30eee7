"""The built-in ``hypervisors`` and ``domains`` groups, generated from the orchestrator's registry.

Each registry entry becomes a host (``ansible_host`` from its address unless the inventory
already sets one); domains also get the variable ``hypervisor``. Groups or hosts of the same
name already in the inventory are extended, so operators can give them vars in their inventory.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from orchestrator.errors import InvalidInput
from orchestrator.inventory.graph import GraphError, InventoryGraph
from orchestrator.inventory.loader import freeze
from orchestrator.inventory.model import Inventory
from orchestrator.inventory.varsdirs import load_entity_vars

# Names end up in host patterns, where ',' ':' '[' and spaces have meaning.
_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.@+\-]*$"


class HypervisorEntry(BaseModel):
    """A hypervisor of the registry, as an inventory host."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=_NAME, max_length=253)
    address: str | None = Field(default=None, min_length=1, max_length=253)


class DomainEntry(HypervisorEntry):
    """A domain (VM) of the registry, as an inventory host on its hypervisor."""

    hypervisor: str = Field(pattern=_NAME, max_length=253)


def registry_domains(hypervisors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The domains the hypervisors' heartbeats list, as ``domains`` group entries.

    A domain whose name cannot be a host in a pattern is left out rather than failing the
    whole inventory; its first address (from the network's DHCP leases) becomes its address.
    """
    entries = []
    for hypervisor in hypervisors:
        for domain in (hypervisor.get("capacity") or {}).get("domains") or []:
            if re.match(_NAME, domain.get("name", "")):
                address = next(iter(domain.get("addresses") or []), None)
                entries.append(
                    {"name": domain["name"], "hypervisor": hypervisor["name"], "address": address}
                )
    return entries


def with_builtin_groups(
    inventory: Inventory, hypervisors: list[dict[str, Any]], domains: list[dict[str, Any]]
) -> Inventory:
    """A copy of ``inventory`` with groups ``hypervisors`` and ``domains`` filled from the
    registry entries (``{"name", "address"?}`` and ``{"name", "hypervisor", "address"?}``)."""
    hv_entries = _validate(list[HypervisorEntry], hypervisors, "hypervisors")
    dom_entries = _validate(list[DomainEntry], domains, "domains")
    graph = _graph_of(inventory)
    try:
        _add_members(graph, "hypervisors", hv_entries)
        _add_members(graph, "domains", dom_entries)
        for domain in dom_entries:
            graph.set_variable(domain.name, "hypervisor", domain.hypervisor)
        graph.reconcile()
    except GraphError as exc:
        raise InvalidInput(str(exc), errors=[{"field": "inventory", "message": str(exc)}]) from None
    base = inventory.base_dir

    def file_vars(subdir: str, name: str) -> dict[str, Any]:
        known = inventory.groups if subdir == "group_vars" else inventory.hosts
        if name in known:
            return known[name].file_vars
        return load_entity_vars(base, subdir, name) if base is not None else {}

    return freeze(graph, inventory.source, base, file_vars)


def _validate(model: Any, value: list[dict[str, Any]], field: str) -> Any:
    try:
        return TypeAdapter(model).validate_python(value)
    except ValidationError as exc:
        errors = [
            {"field": ".".join([field, *map(str, e["loc"])]), "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidInput(f"invalid {field} for the built-in groups", errors=errors) from None


def _add_members(graph: InventoryGraph, group: str, entries: list[HypervisorEntry]) -> None:
    graph.add_group(group)
    if not graph.groups[group].parents:
        graph.add_child("all", group)
    for entry in entries:
        graph.add_host(entry.name, group)
        if entry.address and "ansible_host" not in graph.hosts[entry.name].vars:
            graph.set_variable(entry.name, "ansible_host", entry.address)


def _graph_of(inventory: Inventory) -> InventoryGraph:
    """A mutable graph holding the same hosts, groups and source variables."""
    graph = InventoryGraph()
    for name, group in inventory.groups.items():
        graph.add_group(name)
        graph.groups[name].vars = dict(group.vars)
        graph.groups[name].priority = group.priority
    for name, host in inventory.hosts.items():
        graph.add_host(name)
        graph.hosts[name].vars = dict(host.vars)
    for name, group in inventory.groups.items():
        for child in group.children:
            graph.add_child(name, child)
        graph.groups[name].hosts = dict.fromkeys(group.hosts)
    graph.warnings = list(inventory.warnings)
    return graph
