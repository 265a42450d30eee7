"""SQL side of jobs: create with outbox, read and page, and apply the events workers report."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.errors import InvalidInput, NotFound
from orchestrator.jobs.events import Event
from orchestrator.jobs.ids import new_job_id
from orchestrator.jobs.lifecycle import JobState
from orchestrator.models import Base, Job, JobEvent, OutboxEntry


@dataclass(frozen=True)
class NewJob:
    kind: str
    params: dict[str, Any]
    hypervisor: str
    submitter: str
    idempotency_key: str | None = None
    rerun_on_loss: bool = False
    # Placement chose ``hypervisor``: a retry of the request may be placed elsewhere, so the
    # hypervisor is no part of what makes it the same request.
    placed: bool = False
    # The domain the job makes or acts on (orchestrator.access.domain_owners.domain_of).
    domain: str | None = None


def repeated_request(session: Session, new: NewJob) -> Job | None:
    """The earlier job with ``new``'s idempotency key, if any (a 422 if it was a different
    request). Asked before placing, so that a retry neither claims room again nor is refused
    for want of the room its first attempt took."""
    if new.idempotency_key is None or (earlier := _by_idempotency_key(session, new)) is None:
        return None
    return _same_request(earlier, new)


def create_job(session: Session, new: NewJob) -> tuple[Job, bool]:
    """Store the job and its outbox row in one transaction; returns (job, created).

    A repeated idempotency key returns the earlier job when the request is the same, and is
    a 422 when it is not (draft-ietf-httpapi-idempotency-key-header).
    """
    parent, _children, created = create_family(session, new, [])
    return parent, created


def create_family(
    session: Session, new: NewJob, children: list[NewJob]
) -> tuple[Job, list[Job], bool]:
    """Store a job, or a parent job and its children, in one transaction; returns (job,
    children, created). With children, the parent runs nowhere (no outbox row) and each child
    gets one; without, the job itself does. An earlier job with the same idempotency key
    answers as in :func:`create_job`, with no children returned."""
    if new.idempotency_key is not None and (earlier := _by_idempotency_key(session, new)):
        return _same_request(earlier, new), [], False
    now = utcnow()
    job = _new_row(new, now, parent_id=None)
    rows = [job, *(_new_row(child, now, parent_id=job.id) for child in children)]
    runs = rows[1:] if children else rows
    # Table inserts with bound parameters on the session's connection: their compiled form is
    # cached, while the ORM's unit of work (or even Session.execute) costs more than the rows
    # they write.
    connection = session.connection()
    try:
        connection.execute(_JOB_INSERT, [_row_values(row) for row in rows])
        connection.execute(
            _OUTBOX_INSERT, [{"job_id": row.id, "attempt": 1, "created_at": now} for row in runs]
        )
        session.commit()
    except IntegrityError:  # a concurrent request with the same idempotency key won
        session.rollback()
        earlier = _by_idempotency_key(session, new)
        if earlier is None:
            raise
        return _same_request(earlier, new), [], False
    return job, rows[1:], True


def _new_row(new: NewJob, now: datetime, parent_id: str | None) -> Job:
    return Job(
        id=new_job_id(),
        kind=new.kind,
        params=new.params,
        state=JobState.PENDING.value,
        attempt=1,
        rerun_on_loss=new.rerun_on_loss,
        hypervisor=new.hypervisor,
        submitter=new.submitter,
        idempotency_key=new.idempotency_key,
        created_at=now,
        updated_at=now,
        last_seq=0,
        parent_id=parent_id,
        domain=new.domain,
    )


def family_of(session: Session, job: Job) -> tuple[str, int] | None:
    """(parent id, number of children) of a count request's child; None for any other job."""
    if job.parent_id is None:
        return None
    parent = session.get(Job, job.parent_id)
    count = int((parent.params if parent else {}).get("count") or 0)
    return job.parent_id, count


def children_of(session: Session, parent_id: str) -> list[Job]:
    """A parent's children, in index order (they were created in it)."""
    return list(session.scalars(select(Job).where(Job.parent_id == parent_id).order_by(Job.id)))


_JOBS = Base.metadata.tables["jobs"]
_OUTBOX = Base.metadata.tables["outbox"]
_EVENTS = Base.metadata.tables["job_events"]
_JOB_INSERT = insert(_JOBS)
_OUTBOX_INSERT = insert(_OUTBOX)
# Executed with many parameter sets at once; the SET columns come from the parameters' keys.
_DELETE_OUTBOX_ROW = delete(_OUTBOX).where(
    _OUTBOX.c.job_id == bindparam("b_job"), _OUTBOX.c.attempt == bindparam("b_attempt")
)
_MOVE_JOB = update(_JOBS).where(
    _JOBS.c.id == bindparam("b_id"), _JOBS.c.last_seq < bindparam("b_seq")
)
_KEEP_RUNNER = update(_JOBS).where(
    _JOBS.c.id == bindparam("b_id"), _JOBS.c.attempt <= bindparam("b_attempt")
)


def _row_values(job: Job) -> dict[str, Any]:
    return {column.key: getattr(job, column.key) for column in Job.__table__.columns}


def unfinished_and_settled(session: Session, older_than: float, limit: int = 500) -> list[Job]:
    """Jobs SQL has as not finished, unchanged for ``older_than`` seconds, with no outbox row
    (so they were handed to Redis) and not a count request's parent (which runs nowhere)."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    waiting = [JobState.PENDING.value, JobState.QUEUED.value, JobState.RUNNING.value]
    query = (
        select(Job)
        .outerjoin(OutboxEntry, OutboxEntry.job_id == Job.id)
        .where(
            Job.state.in_(waiting),
            Job.updated_at <= cutoff,
            Job.hypervisor != "",
            OutboxEntry.id.is_(None),
        )
        .order_by(Job.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def mark_lost(session: Session, job: Job, reason: str) -> None:
    """End ``job`` as lost in SQL alone, with an event saying why (its live state is gone)."""
    now = utcnow()
    error = {"type": "urn:orchestrator:problem:worker-lost", "status": 500, "detail": reason}
    # After the last event recorded, whether it moved the state (last_seq) or not.
    recorded = session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job.id))
    seq = max(job.last_seq, recorded or 0) + 1
    session.add(
        JobEvent(
            job_id=job.id,
            seq=seq,
            time=now,
            level="error",
            attempt=job.attempt,
            host=None,
            state=JobState.LOST.value,
            message=f"lost: {reason}",
            data=None,
        )
    )
    session.execute(
        update(Job)
        .where(Job.id == job.id, Job.last_seq == job.last_seq)
        .values(
            state=JobState.LOST.value,
            error=error,
            finished_at=now,
            updated_at=now,
            last_seq=seq,
        )
    )
    session.commit()


def enqueue_attempt(session: Session, job_id: str, attempt: int) -> None:
    """Write the outbox row for a re-run attempt (the recorder publishes it)."""
    session.add(OutboxEntry(job_id=job_id, attempt=attempt, created_at=utcnow()))
    session.execute(update(Job).where(Job.id == job_id).values(attempt=attempt))
    session.commit()


def cancel_pending(session: Session, *job_ids: str) -> None:
    """Cancel in SQL jobs not yet running (Redis may be down: the outbox then skips them)."""
    waiting = [JobState.PENDING.value, JobState.QUEUED.value]
    session.execute(
        update(Job)
        .where(Job.id.in_(job_ids), Job.state.in_(waiting))
        .values(state=JobState.CANCELLED.value, finished_at=utcnow(), updated_at=utcnow())
    )
    session.commit()


def clear_outbox(session: Session, attempts: list[tuple[str, int]]) -> None:
    """Delete the outbox rows of these (job id, attempt) pairs, in one transaction."""
    if attempts:
        rows = [{"b_job": job_id, "b_attempt": attempt} for job_id, attempt in attempts]
        session.connection().execute(_DELETE_OUTBOX_ROW, rows)
    session.commit()


def due_outbox(session: Session, older_than: float, limit: int = 500) -> list[tuple[Job, int]]:
    """Outbox rows older than ``older_than`` seconds, with their jobs, oldest first."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    rows = session.execute(
        select(Job, OutboxEntry.attempt)
        .join(OutboxEntry, OutboxEntry.job_id == Job.id)
        .where(OutboxEntry.created_at <= cutoff)
        .order_by(OutboxEntry.id)
        .limit(limit)
    ).all()
    return [(job, attempt) for job, attempt in rows]


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id!r}")
    return job


def list_jobs(
    session: Session,
    *,
    filters: dict[str, str],
    cursor: str | None,
    limit: int,
    states: Collection[str] | None = None,
) -> tuple[list[Job], str | None]:
    """Newest first; returns the page and the cursor of the next page (None at the end).
    ``states``: only jobs whose recorded state is one of these."""
    query = select(Job).order_by(Job.id.desc()).limit(limit + 1)
    for name, value in filters.items():
        query = query.where(getattr(Job, name) == value)
    if states is not None:
        query = query.where(Job.state.in_(list(states)))
    if cursor:
        query = query.where(Job.id < decode_cursor(cursor))
    jobs = list(session.scalars(query))
    if len(jobs) <= limit:
        return jobs, None
    return jobs[:limit], encode_cursor(jobs[limit - 1].id)


def list_events(session: Session, job_id: str, after: int, limit: int) -> list[JobEvent]:
    query = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.seq > after)
        .order_by(JobEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(query))


def apply_events(session: Session, events: Iterable[Event]) -> int:
    """Persist reported events (duplicates ignored) and move job rows forward; one commit.

    The batch costs three statements, each run once with many parameter sets: insert the
    events, move each job to its latest state, keep who ran it. The write transaction stays
    short, so API writes waiting on the database lock (SQLite has a single one) wait rarely
    and briefly.
    """
    batch = sorted(events, key=lambda e: e.seq)
    job_ids = {event.job_id for event in batch}
    known = set(session.scalars(select(Job.id).where(Job.id.in_(job_ids)))) if job_ids else set()
    # An event for a job without a row (a foreign or purged job) is dropped.
    rows = [event.row_values() for event in batch if event.job_id in known]
    # Core statements run once with many parameter sets (executemany): the ORM's bulk paths
    # and a freshly built statement per job cost more than the rows they write.
    connection = session.connection()
    if rows:
        connection.execute(_insert_ignoring_duplicates(session), rows)
    # Only events that change the state (``state`` set) move a job row.
    latest_state: dict[str, Event] = {}
    starts: dict[str, Event] = {}
    for event in batch:
        if event.job_id in known and event.state:
            latest_state[event.job_id] = event
            if event.state == JobState.RUNNING:
                starts[event.job_id] = event
    if latest_state:
        connection.execute(_MOVE_JOB, [_state_values(event) for event in latest_state.values()])
    if starts:
        # Who ran an attempt is kept even when its event arrives after the job moved on; the
        # guard leaves a job that has gone on to a later attempt alone.
        connection.execute(_KEEP_RUNNER, [_start_values(start) for start in starts.values()])
    session.commit()
    return len(rows)


def encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        job_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return str(uuid.UUID(job_id))
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not one this API issued",
            errors=[{"field": "cursor", "message": "must be a next_cursor value from a page"}],
        ) from None


def utcnow() -> datetime:
    return datetime.now(UTC)


def _by_idempotency_key(session: Session, new: NewJob) -> Job | None:
    return session.scalar(
        select(Job).where(
            Job.submitter == new.submitter, Job.idempotency_key == new.idempotency_key
        )
    )


def _same_request(earlier: Job, new: NewJob) -> Job:
    hypervisors_differ = not new.placed and earlier.hypervisor != new.hypervisor
    if (earlier.kind, earlier.params) != (new.kind, new.params) or hypervisors_differ:
        raise InvalidInput(
            f"Idempotency-Key {new.idempotency_key!r} was used for a different request "
            f"(job {earlier.id})",
            errors=[{"field": "Idempotency-Key", "message": "reused with a different body"}],
        )
    return earlier


def _insert_ignoring_duplicates(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(_EVENTS).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(_EVENTS).on_conflict_do_nothing()
    raise NotImplementedError(f"no duplicate-ignoring insert for {dialect}")


def _state_values(event: Event) -> dict[str, Any]:
    """Parameters of _MOVE_JOB: the job moves to ``event``'s state unless SQL holds a newer one."""
    state = JobState(str(event.state))
    return {
        "b_id": event.job_id,
        "b_seq": event.seq,
        "state": state.value,
        "attempt": event.attempt,
        "last_seq": event.seq,
        "updated_at": event.time,
        "finished_at": event.time if state.is_terminal else None,
        "result": event.result if state.is_terminal else None,
        "error": event.error if state.is_terminal else None,
    }


def _start_values(start: Event) -> dict[str, Any]:
    """Parameters of _KEEP_RUNNER, from a ``running`` event."""
    return {
        "b_id": start.job_id,
        "b_attempt": start.attempt,
        "started_at": start.time,
        "worker": (start.data or {}).get("worker"),
    }
