"""The registry in SQL: every hypervisor declared in settings or seen beating, the operator's
state and labels, and the last capacity its heartbeat reported.

Only the recorder writes heartbeat facts here (workers never touch SQL); the API writes the
operator's changes. The two touch different columns, so neither undoes the other."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFound
from orchestrator.models import Hypervisor
from orchestrator.placement import HostState
from orchestrator.settings import DeclaredHypervisor

# A live hypervisor's capacity columns are rewritten at most this often: its heartbeat (in
# Redis) is what placement reads; these columns are what is shown once the worker is gone.
REFRESH_SECONDS = 10.0


class AdminState(StrEnum):
    UP = "up"  # takes new work while its worker beats
    DISABLED = "disabled"  # taken out by an operator: takes nothing new
    DRAINING = "draining"  # finishes the jobs it has and takes nothing new


def effective_state(admin_state: str, alive: bool) -> HostState:
    """What placement sees: the operator's state, else ``up`` or ``down`` by the heartbeat."""
    if admin_state != AdminState.UP:
        return HostState(admin_state)
    return HostState.UP if alive else HostState.DOWN


def entries(session: Session) -> list[Hypervisor]:
    return list(session.scalars(select(Hypervisor).order_by(Hypervisor.name)))


def declare(session: Session, declared: Iterable[DeclaredHypervisor]) -> None:
    """List the hypervisors of the settings. Their declared labels are set over the stored ones
    (labels an operator added under other keys stay); a heartbeat's URI wins over a declared
    one, being what the worker actually uses."""
    for item in declared:
        row = session.get(Hypervisor, item.name) or _new_row(session, item.name)
        row.declared = True
        row.labels = {**(row.labels or {}), **item.labels}
        if row.libvirt_uri is None:
            row.libvirt_uri = item.libvirt_uri
        row.updated_at = _now()
    session.commit()


def record_beats(session: Session, beats: Iterable[Mapping[str, Any]]) -> int:
    """Upsert what the heartbeats say (``LiveState.hypervisors()`` items); returns how many rows
    were written. A row is written when the hypervisor is new, its liveness or URI changed, or
    its stored capacity is older than ``REFRESH_SECONDS``."""
    rows = {row.name: row for row in entries(session)}
    written = 0
    for beat in beats:
        row = rows.get(beat["name"])
        if row is None:
            row = _new_row(session, beat["name"])
        elif not _stale(row, beat):
            continue
        _apply_beat(row, beat)
        written += 1
    if written:
        session.commit()
    return written


def change(
    session: Session,
    name: str,
    state: AdminState | None,
    labels: Mapping[str, str] | None,
    seen_beating: bool,
) -> Hypervisor:
    """The operator's change: a new admin state and/or a new set of labels (replacing the old).
    A hypervisor only seen in a heartbeat (the recorder has not written it yet) gets its row
    now; one never seen nor declared is NotFound."""
    row = session.get(Hypervisor, name)
    if row is None:
        if not seen_beating:
            raise NotFound(f"no hypervisor {name!r} is declared or has ever reported")
        row = _new_row(session, name)
    if state is not None:
        row.admin_state = state.value
    if labels is not None:
        row.labels = dict(labels)
    row.updated_at = _now()
    session.commit()
    return row


def _new_row(session: Session, name: str) -> Hypervisor:
    now = _now()
    row = Hypervisor(
        name=name,
        labels={},
        admin_state=AdminState.UP.value,
        alive=False,
        declared=False,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    return row


def _stale(row: Hypervisor, beat: Mapping[str, Any]) -> bool:
    if row.alive != bool(beat.get("alive")):
        return True
    if beat.get("libvirt_uri") and row.libvirt_uri != beat["libvirt_uri"]:
        return True
    if not row.alive:
        return False  # a dead worker's last report is already stored
    age = _now() - _as_utc(row.updated_at)
    return age.total_seconds() >= REFRESH_SECONDS


def _apply_beat(row: Hypervisor, beat: Mapping[str, Any]) -> None:
    row.alive = bool(beat.get("alive"))
    row.libvirt_uri = beat.get("libvirt_uri") or row.libvirt_uri
    capacity = beat.get("capacity")
    if isinstance(capacity, Mapping):
        # The domain list is the inventory's, and long: the registry keeps the amounts.
        row.capacity = {k: v for k, v in capacity.items() if k != "domains"}
    if isinstance(beat.get("allocated"), Mapping):
        row.allocated = dict(beat["allocated"])
    if isinstance(beat.get("cpu_modes"), list):
        row.cpu_modes = [str(mode) for mode in beat["cpu_modes"]]
    if isinstance(beat.get("last_seen"), int | float):
        row.last_seen = datetime.fromtimestamp(beat["last_seen"], UTC)
    row.updated_at = _now()


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=UTC)
