"""The SQL side of jobs, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.errors import InvalidInput
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.events import Event
from orchestrator.models import JobEvent, OutboxEntry


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    engine = make_engine(database_url)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def new_job(key: str | None = None, hypervisor: str = "hv") -> jobstore.NewJob:
    return jobstore.NewJob("ping", {"delay": 0}, hypervisor, "ci", key, True)


def event(job_id: str, seq: int, state: str | None = None, **extra: Any) -> Event:
    now = datetime.now(UTC)
    return Event(job_id, seq, now, "info", 1, f"event {seq}", state=state, **extra)


def test_a_job_is_stored_with_its_outbox_row_in_one_transaction(session: Session) -> None:
    job, created = jobstore.create_job(session, new_job())
    assert created and job.state == "pending" and job.attempt == 1
    assert session.scalars(select(OutboxEntry.job_id)).all() == [job.id]
    assert [j.id for j, _ in jobstore.due_outbox(session, older_than=0)] == [job.id]
    jobstore.clear_outbox(session, [(job.id, 1)])
    assert jobstore.due_outbox(session, older_than=0) == []


def test_an_idempotency_key_is_per_submitter_and_checks_the_body(session: Session) -> None:
    first, _ = jobstore.create_job(session, new_job("k1"))
    again, created = jobstore.create_job(session, new_job("k1"))
    assert again.id == first.id and not created
    with pytest.raises(InvalidInput, match="different request"):
        jobstore.create_job(session, new_job("k1", hypervisor="other"))


def test_events_are_stored_once_and_never_roll_the_state_back(session: Session) -> None:
    job, _ = jobstore.create_job(session, new_job())
    running = event(job.id, 2, "running", data={"worker": "hv/w1"})
    done = event(job.id, 3, "succeeded", result={"ok": True})
    jobstore.apply_events(session, [event(job.id, 1, "queued"), done])
    jobstore.apply_events(session, [running, done])  # late and duplicate delivery
    session.expire_all()
    stored = jobstore.get_job(session, job.id)
    assert stored.state == "succeeded" and stored.result == {"ok": True}
    assert stored.worker == "hv/w1"
    seqs = session.scalars(select(JobEvent.seq).where(JobEvent.job_id == job.id)).all()
    assert sorted(seqs) == [1, 2, 3]


def test_pages_follow_creation_order_newest_first(session: Session) -> None:
    ids = [jobstore.create_job(session, new_job())[0].id for _ in range(5)]
    page, cursor = jobstore.list_jobs(session, filters={}, cursor=None, limit=3)
    rest, end = jobstore.list_jobs(session, filters={}, cursor=cursor, limit=3)
    assert [j.id for j in page + rest] == list(reversed(ids)) and end is None
