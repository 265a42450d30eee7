"""A job event: one record type for what a worker reports, what SQL keeps and what the API shows.

Workers append events to Redis streams (:mod:`orchestrator.jobs.livestate`), the recorder copies
them into the ``job_events`` table (:mod:`orchestrator.jobs.store`), and the API reads them from
either place (:mod:`orchestrator.jobs.view`). Each of those goes through :class:`Event`, so a
field added here reaches all of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # workers read events from Redis and never load the SQL models
    from orchestrator.models import JobEvent


@dataclass(frozen=True, slots=True)
class Event:
    """One numbered event of a job attempt."""

    job_id: str
    seq: int  # per job, from 1, gapless: readers resume "after seq N"
    time: datetime  # aware, UTC
    level: str
    attempt: int
    message: str
    host: str | None = None  # the fleet host it is about, if any
    state: str | None = None  # the state the job moved to, on state changes only
    data: Any = None
    # Only on the event that ends an attempt; SQL keeps them on the job row, not the event.
    result: Any = None
    error: Any = None

    @classmethod
    def from_stream(cls, fields: dict[str, str]) -> Event:
        """An entry of a Redis event stream (``data``, ``result`` and ``error`` are JSON)."""
        return cls(
            job_id=fields["job"],
            seq=int(fields["seq"]),
            time=datetime.fromtimestamp(float(fields["time"]), UTC),
            level=fields["level"],
            attempt=int(fields["attempt"]),
            message=fields["message"],
            host=fields.get("host"),
            state=fields.get("state"),
            data=_json_field(fields, "data"),
            result=_json_field(fields, "result"),
            error=_json_field(fields, "error"),
        )

    @classmethod
    def from_row(cls, row: JobEvent) -> Event:
        return cls(
            job_id=row.job_id,
            seq=row.seq,
            time=as_utc(row.time),
            level=row.level,
            attempt=row.attempt,
            message=row.message,
            host=row.host,
            state=row.state,
            data=row.data,
        )

    def row_values(self) -> dict[str, Any]:
        """The ``job_events`` columns, for an insert run with many parameter sets."""
        return {
            "job_id": self.job_id,
            "seq": self.seq,
            "time": self.time,
            "level": self.level,
            "attempt": self.attempt,
            "host": self.host,
            "state": self.state,
            "message": self.message,
            "data": self.data,
        }

    def document(self) -> dict[str, Any]:
        """The event as ``GET /v1/jobs/<id>/events`` shows it: its columns but the job's id."""
        document = self.row_values()
        del document["job_id"]
        document["time"] = self.time.isoformat()
        return document


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _json_field(fields: dict[str, str], name: str) -> Any:
    return json.loads(fields[name]) if name in fields else None
