"""How inventory reading reports bad input: one ``InvalidInput`` naming file, line and rule."""

from __future__ import annotations

from orchestrator.errors import InvalidInput


def inventory_error(source: str, line: int | None, rule: str) -> InvalidInput:
    """An ``InvalidInput`` whose message reads ``FILE:LINE: RULE`` (line omitted if unknown)."""
    where = f"{source}:{line}" if line else source
    entry: dict[str, object] = {"field": "inventory", "file": source, "message": rule}
    if line:
        entry["line"] = line
    return InvalidInput(f"{where}: {rule}", errors=[entry])
