"""Asks ansible-core which hosts each pattern selects, as ``ansible PATTERN --list-hosts`` does.

Run as a script (one process per inventory, to pay ansible's start-up once): reads
``{"inventory": PATH, "queries": [[PATTERN, LIMIT_OR_NULL], ...]}`` on stdin and prints one
``{"hosts": [...], "warnings": [...]}`` or ``{"error": MESSAGE}`` per query. Each query gets a
fresh ``InventoryManager``, as each ``ansible`` run would, and goes through ``CLI.get_host_list``,
the function the ``ansible`` command calls.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def main() -> None:
    from ansible.cli import CLI
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.display import Display

    request = json.load(sys.stdin)
    warnings: list[str] = []

    def capture(self: Any, msg: str, *args: Any, **kwargs: Any) -> None:
        warnings.append(str(msg))

    Display.warning = capture
    loader = DataLoader()
    answers: list[dict[str, Any]] = []
    for pattern, limit in request["queries"]:
        inventory = InventoryManager(loader=loader, sources=[request["inventory"]])
        warnings.clear()
        try:
            hosts = [h.name for h in CLI.get_host_list(inventory, limit, pattern)]
        except AnsibleError as exc:
            if limit:
                answers.append({"error": str(exc)})
                continue
            # What the ansible command does when nothing matched and there is no --limit.
            hosts = []
        answers.append({"hosts": hosts, "warnings": list(warnings)})
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
