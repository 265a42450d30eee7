"""The JSON document ``ansible-inventory -i FILE --list`` prints, so operators can diff the two."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.inventory.model import Inventory


def ansible_inventory_list(
    inventory: Inventory, limit: str | list[str] | None = None
) -> dict[str, Any]:
    """``{"_meta": {"hostvars": ...}, "all": {"children": [...]}, GROUP: {"hosts", "children"}}``.

    Groups without hosts and children are left out (but still named as children), hosts
    without variables have no ``hostvars`` entry, as in ansible-inventory.
    """
    available = inventory.select("all", limit)
    allowed = frozenset(available)
    result: dict[str, Any] = {}
    # Every group below "all" once; a stack rather than recursion, as chains may be long.
    seen = {"all"}
    todo = ["all"]
    while todo:
        name = todo.pop()
        group = inventory.groups[name]
        entry: dict[str, Any] = {}
        if name != "all":
            entry["hosts"] = [h for h in group.hosts if h in allowed]
        entry["children"] = list(group.children)
        todo.extend(child for child in group.children if child not in seen)
        seen.update(group.children)
        entry = {k: v for k, v in entry.items() if v}
        if entry:
            result[name] = entry
    hostvars = {h: v for h in available if (v := inventory.host_vars(h))}
    result["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
    return result


def dump_ansible_json(document: dict[str, Any]) -> str:
    """Serialise like ansible-inventory: sorted keys, four-space indent."""
    return json.dumps(document, sort_keys=True, indent=4, default=str)
