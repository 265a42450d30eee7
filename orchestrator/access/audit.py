"""The audit trail: one row per write and per refused request, never a token or a body."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, insert, select
from sqlalchemy.orm import Session

from orchestrator.access.tokens import as_utc, parse_duration, utcnow
from orchestrator.errors import InvalidInput
from orchestrator.models import AuditEntry, Base

REFUSED = frozenset({401, 403, 429})
OUTCOMES = ("ok", "refused", "failed")
ANONYMOUS = "anonymous"

_INSERT = insert(Base.metadata.tables["audit_log"])


@dataclass(frozen=True)
class AuditRecord:
    actor: str
    method: str
    route: str
    path: str
    status: int
    remote_addr: str | None = None
    job_id: str | None = None
    kind: str | None = None
    reason: str | None = None
    # When it happened, not when it was written: entries are written in batches.
    time: datetime = field(default_factory=utcnow)


def record(session: Session, entry: AuditRecord) -> None:
    """Write one entry, as a single insert of its own."""
    record_many(session, [entry])


def record_many(session: Session, entries: list[AuditRecord]) -> None:
    """Write ``entries`` in one transaction, in their order."""
    rows = [_row(entry) for entry in entries]
    session.connection().execute(_INSERT, rows)
    session.commit()


def _row(entry: AuditRecord) -> dict[str, Any]:
    # A shallow copy: asdict() deep-copies every value, which cost as much as inserting the row.
    values = dict(vars(entry))
    values.update(path=entry.path[:1024], reason=_clip(entry.reason, 255))
    return values


def outcome_of(status: int) -> str:
    if status in REFUSED:
        return "refused"
    return "ok" if status < 400 else "failed"


def list_entries(
    session: Session,
    *,
    actor: str | None = None,
    since: datetime | None = None,
    outcome: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditEntry], str | None]:
    """Newest first; the page and the cursor of the next one (None at the end)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if since:
        query = query.where(AuditEntry.time >= since)
    if outcome:
        query = _with_outcome(query, outcome)
    if cursor:
        query = query.where(AuditEntry.id < _decode_cursor(cursor))
    rows = list(session.scalars(query))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], str(rows[limit - 1].id)


def parse_since(text: str) -> datetime:
    """An ISO 8601 time, or a duration back from now (``15m``, ``24h``, ``7d``)."""
    if text[:1].isdigit() and text[-1:] in "smhdw":
        try:
            return utcnow() - parse_duration(text)
        except (InvalidInput, OverflowError):  # OverflowError: before year 1
            pass
    try:
        return as_utc(datetime.fromisoformat(text)).astimezone(UTC)
    except ValueError:
        message = "must be an ISO 8601 time or a duration such as 15m, 24h or 7d"
        raise InvalidInput.of("since", f"since {text!r} {message}") from None


def entry_document(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "time": as_utc(row.time).isoformat(),
        "actor": row.actor,
        "method": row.method,
        "route": row.route,
        "path": row.path,
        "job_id": row.job_id,
        "kind": row.kind,
        "remote_addr": row.remote_addr,
        "status": row.status,
        "outcome": outcome_of(row.status),
        "reason": row.reason,
    }


def _with_outcome(query: Select[tuple[AuditEntry]], outcome: str) -> Select[tuple[AuditEntry]]:
    status = AuditEntry.status
    if outcome == "ok":
        return query.where(status < 400)
    if outcome == "refused":
        return query.where(status.in_(REFUSED))
    if outcome == "failed":
        return query.where(status >= 400, status.not_in(REFUSED))
    raise InvalidInput.of("outcome", f"outcome {outcome!r} must be one of: {', '.join(OUTCOMES)}")


def _decode_cursor(cursor: str) -> int:
    if not cursor.isdigit():
        raise InvalidInput.of("cursor", "cursor must be a next_cursor value from a page")
    return int(cursor)


def _clip(text: str | None, length: int) -> str | None:
    return text[:length] if text else text
