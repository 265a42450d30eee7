"""SQLAlchemy models: the durable record of jobs, their events, the outbox, stored inventories,
API tokens, the audit trail and the hypervisor registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Job(Base):
    __tablename__ = "jobs"

    # Time-ordered UUIDv7 strings: sorting by id is sorting by creation (cursor pagination).
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Whether a new attempt may run when the worker vanished (only kinds safe to re-run).
    rerun_on_loss: Mapped[bool] = mapped_column(Boolean, default=False)
    hypervisor: Mapped[str] = mapped_column(String(64), index=True)
    submitter: Mapped[str] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    worker: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Highest event sequence applied to this row: events arriving late never roll state back.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Set on the children of a count request: the parent job runs nowhere and summarizes them.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE", name="fk_jobs_parent_id"), index=True
    )
    # The domain a domain.* or vm.provision job makes or acts on: whose job made a domain is
    # whose it is (orchestrator.access.domain_owners).
    domain: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        UniqueConstraint("submitter", "idempotency_key", name="uq_jobs_idempotency"),
        Index("ix_jobs_hypervisor_domain", "hypervisor", "domain"),
    )


class JobEvent(Base):
    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer)
    host: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str | None] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (UniqueConstraint("job_id", "seq", name="uq_job_events_seq"),)


class OutboxEntry(Base):
    """A job attempt written with its job, waiting to be published to the broker."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_outbox_created", "created_at"),
        Index("ix_outbox_job", "job_id", "attempt"),
    )


class StoredInventory(Base):
    """One version of an inventory stored through the API; a PUT adds a version, never edits."""

    __tablename__ = "inventories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
    submitter: Mapped[str] = mapped_column(String(128))

    __table_args__ = (UniqueConstraint("name", "version", name="uq_inventories_version"),)


class ApiToken(Base):
    """A bearer token made by ``orchestrator tokens create``; only the secret's SHA-256 is kept.

    Rows are revoked, never deleted: once one exists the API requires tokens, and removing the
    last row must not quietly open it again.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Hex SHA-256 of the secret: the secret has 256 bits of entropy, so a fast hash suffices.
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """One write or refused request: who, what, when, from where, and how it ended."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    method: Mapped[str] = mapped_column(String(8))
    route: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    job_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str | None] = mapped_column(String(64))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    # Why a request was refused (a missing scope, an expired token); never the token itself.
    reason: Mapped[str | None] = mapped_column(String(255))


class Hypervisor(Base):
    """One hypervisor the orchestrator knows: declared in settings or seen beating.

    ``admin_state`` is the operator's word (``up``, ``disabled``, ``draining``); whether its
    worker beats is ``alive``. The capacity columns keep the last heartbeat's report, so a
    hypervisor whose worker stopped still shows what it had."""

    __tablename__ = "hypervisors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    libvirt_uri: Mapped[str | None] = mapped_column(String(1024))
    labels: Mapped[dict[str, Any]] = mapped_column(JSON)
    admin_state: Mapped[str] = mapped_column(String(16))
    alive: Mapped[bool] = mapped_column(Boolean, default=False)
    declared: Mapped[bool] = mapped_column(Boolean, default=False)
    capacity: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    allocated: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cpu_modes: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_seen: Mapped[datetime | None]
