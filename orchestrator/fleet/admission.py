"""Resolving a fleet job's stored inventory at submit time: ``inventory_name`` (and optional
``inventory_version``) become the inline text of that version, so the worker, which never
reads SQL, gets everything in the job's parameters. The name and the exact version stay in the
parameters as a record of what ran."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orchestrator.errors import InvalidInput, NotFound
from orchestrator.fleet.inventories import get_inventory

FLEET_KINDS = frozenset({"fleet.run", "fleet.ping"})


def resolve_stored_inventory(session: Session, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with ``inventory_name`` replaced by the text of the stored version; other
    parameters are returned unchanged."""
    name = params.get("inventory_name")
    if name is None:
        return params
    if params.get("inventory") is not None:
        raise _invalid("params.inventory", "give inventory or inventory_name, not both")
    if not isinstance(name, str):
        raise _invalid("params.inventory_name", "must be a string")
    version = params.get("inventory_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise _invalid("params.inventory_version", "must be an integer")
    try:
        row = get_inventory(session, name, version)
    except NotFound as exc:
        raise _invalid("params.inventory_name", exc.detail) from None
    return {
        **params,
        "inventory": row.text,
        "inventory_format": row.format,
        "inventory_version": row.version,
    }


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"invalid parameters for a fleet job: {message}",
        errors=[{"field": field, "message": message}],
    )
