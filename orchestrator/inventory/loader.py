"""Entry points: read an inventory from a file, a directory of files, or text.

Formats are chosen as Ansible chooses plugins: ``.yml``/``.yaml``/``.json`` are YAML, a file
without extension is YAML when it parses to a mapping and INI otherwise, anything else is INI.
``group_vars/`` and ``host_vars/`` are read from the inventory's directory.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from orchestrator.inventory.graph import GraphError, InventoryGraph
from orchestrator.inventory.ini import read_ini
from orchestrator.inventory.model import Group, Host, Inventory
from orchestrator.inventory.problems import inventory_error
from orchestrator.inventory.varsdirs import load_entity_vars
from orchestrator.inventory.yamlfile import YamlRefused, load_yaml, read_yaml

Format = Literal["ini", "yaml"]
YAML_EXTENSIONS = (".yml", ".yaml", ".json")
# Files ansible-core skips inside an inventory directory (INVENTORY_IGNORE_EXTS and always).
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$|"
    r"(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)


def load_inventory(path: str | Path) -> Inventory:
    """Read the inventory file (or directory of inventory files) at ``path``."""
    path = Path(path)
    if not path.exists():
        raise inventory_error(str(path), None, "inventory source does not exist")
    graph = InventoryGraph()
    files = sorted(_inventory_files(path)) if path.is_dir() else [path]
    for file in files:
        _read_file(file, graph)
    reconcile(graph, str(path))
    base = path if path.is_dir() else path.parent
    return _freeze(graph, str(path), base)


def parse_inventory(
    text: str,
    format: Format | None = None,
    *,
    source: str = "<inventory>",
    base_dir: str | Path | None = None,
) -> Inventory:
    """Read inventory ``text``; ``format=None`` detects YAML vs INI. ``base_dir``, when
    given, is where ``group_vars/`` and ``host_vars/`` are looked for."""
    if format not in (None, "ini", "yaml"):
        raise inventory_error(source, None, f"unknown inventory format {format!r}: use ini or yaml")
    graph = InventoryGraph()
    found = _read_text(text, format, graph, source)
    reconcile(graph, source)
    inventory = _freeze(graph, source, Path(base_dir) if base_dir is not None else None)
    return dataclasses.replace(inventory, format=found)


def reconcile(graph: InventoryGraph, source: str) -> None:
    """``graph.reconcile()``, a broken cap reported as bad input from ``source``."""
    try:
        graph.reconcile()
    except GraphError as exc:
        raise inventory_error(source, None, str(exc)) from None


def _inventory_files(folder: Path) -> list[Path]:
    found: list[Path] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if _IGNORED.search(entry.name):
            continue
        found.extend(_inventory_files(entry) if entry.is_dir() else [entry])
    return found


def _read_file(path: Path, graph: InventoryGraph) -> None:
    if path.suffix == ".toml":
        raise inventory_error(str(path), None, "TOML inventories are not supported")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise inventory_error(str(path), None, f"cannot read inventory: {exc}") from None
    fmt: Format | None = None
    if path.suffix in YAML_EXTENSIONS:
        fmt = "yaml"
    elif path.suffix:
        fmt = "ini"
    _read_text(text, fmt, graph, str(path))


def _read_text(text: str, fmt: Format | None, graph: InventoryGraph, source: str) -> Format:
    """Read ``text`` into ``graph``; the format it was read as."""
    if fmt == "yaml":
        read_yaml(load_yaml(text, source), graph, source)
    elif fmt == "ini":
        read_ini(text, graph, source)
    elif (data := _yaml_mapping(text, source)) is not None:
        read_yaml(data, graph, source)
        fmt = "yaml"
    else:
        read_ini(text, graph, source)
        fmt = "ini"
    return fmt


def _yaml_mapping(text: str, source: str) -> Any:
    """The parsed text when it reads as a YAML inventory (a non-empty mapping), else None.
    YAML that an inventory may not hold (an alias) is refused here: it is YAML all the same."""
    try:
        data = load_yaml(text, source)
    except YamlRefused:
        raise
    except Exception:
        return None
    return data if isinstance(data, dict) and data else None


def _freeze(graph: InventoryGraph, source: str, base: Path | None) -> Inventory:
    def file_vars(subdir: str, name: str) -> dict[str, Any]:
        return load_entity_vars(base, subdir, name) if base is not None else {}

    return freeze(graph, source, base, file_vars)


def freeze(
    graph: InventoryGraph,
    source: str,
    base: Path | None,
    file_vars: Callable[[str, str], dict[str, Any]],
) -> Inventory:
    """The read-only ``Inventory`` of a reconciled graph; ``file_vars(subdir, name)`` gives
    the ``group_vars``/``host_vars`` of each group and host."""
    try:
        member_of = graph.memberships()
    except GraphError as exc:
        raise inventory_error(source, None, str(exc)) from None
    depth = _depths(graph)

    groups = {
        name: Group(
            name=name,
            hosts=tuple(node.hosts),
            children=tuple(node.children),
            parents=tuple(node.parents),
            vars=node.vars,
            file_vars=file_vars("group_vars", name),
            priority=node.priority,
            depth=depth[name],
        )
        for name, node in graph.groups.items()
    }
    order = {name: (group.depth, group.priority, name) for name, group in groups.items()}
    hosts = {
        name: Host(
            name=name,
            vars=node.vars,
            file_vars=file_vars("host_vars", name),
            groups=tuple(sorted(member_of.get(name, ()), key=order.__getitem__)),
        )
        for name, node in graph.hosts.items()
    }
    return Inventory(
        source=source, hosts=hosts, groups=groups, warnings=tuple(graph.warnings), base_dir=base
    )


def _depths(graph: InventoryGraph) -> dict[str, int]:
    """Longest path from ``all`` to each group: the depth Ansible sorts group vars by.

    Iterative: a chain of a thousand groups would exhaust Python's recursion limit."""
    depth: dict[str, int] = {}
    for start in graph.groups:
        todo = [start]
        while todo:
            name = todo[-1]
            if name in depth:
                todo.pop()
                continue
            parents = graph.groups[name].parents
            waiting = [p for p in parents if p not in depth]
            if waiting:
                todo.extend(waiting)
                continue
            todo.pop()
            depth[name] = max((depth[p] + 1 for p in parents), default=0)
    return depth
