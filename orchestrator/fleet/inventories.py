"""Inventories stored through the API: each PUT adds a numbered version; reads pick the latest
or a given version. The text is checked by :mod:`orchestrator.fleet.inventory_rules` first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.errors import Conflict, NotFound
from orchestrator.fleet.inventory_rules import InventoryFormat, parse_api_inventory
from orchestrator.models import StoredInventory


@dataclass(frozen=True)
class NewInventory:
    name: str
    text: str
    format: InventoryFormat | None
    submitter: str


def store_inventory(session: Session, new: NewInventory) -> StoredInventory:
    """Validate ``new.text`` and store it as the next version of ``new.name``."""
    inventory = parse_api_inventory(new.text, new.format, f"inventory {new.name}", field="text")
    fmt = cast(InventoryFormat, new.format or inventory.format)
    latest = session.scalar(
        select(func.max(StoredInventory.version)).where(StoredInventory.name == new.name)
    )
    row = StoredInventory(
        name=new.name,
        version=(latest or 0) + 1,
        text=new.text,
        format=fmt,
        created_at=datetime.now(UTC),
        submitter=new.submitter,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(
            f"another version of inventory {new.name!r} was stored at the same time; retry"
        ) from None
    return row


def get_inventory(session: Session, name: str, version: int | None = None) -> StoredInventory:
    """Version ``version`` of inventory ``name`` (the latest when None); NotFound otherwise."""
    query = select(StoredInventory).where(StoredInventory.name == name)
    if version is not None:
        query = query.where(StoredInventory.version == version)
    row = session.scalars(query.order_by(StoredInventory.version.desc()).limit(1)).first()
    if row is None:
        which = f"version {version} of inventory" if version is not None else "inventory"
        raise NotFound(f"{which} {name!r} does not exist")
    return row


def latest_inventories(session: Session) -> list[StoredInventory]:
    """The latest version of every stored inventory, by name."""
    newest = (
        select(StoredInventory.name, func.max(StoredInventory.version).label("version"))
        .group_by(StoredInventory.name)
        .subquery()
    )
    query = (
        select(StoredInventory)
        .join(
            newest,
            (StoredInventory.name == newest.c.name) & (StoredInventory.version == newest.c.version),
        )
        .order_by(StoredInventory.name)
    )
    return list(session.scalars(query))


def inventory_document(row: StoredInventory, *, text: bool = True) -> dict[str, Any]:
    """A stored version as the API shows it."""
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    doc: dict[str, Any] = {
        "name": row.name,
        "version": row.version,
        "format": row.format,
        "created_at": created.isoformat(),
        "submitter": row.submitter,
        "links": {
            "self": f"/v1/inventories/{row.name}?version={row.version}",
            "hosts": f"/v1/inventories/{row.name}/hosts?version={row.version}",
        },
    }
    if text:
        doc["text"] = row.text
    return doc
