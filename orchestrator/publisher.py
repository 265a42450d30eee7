"""Hands a stored job attempt to its hypervisor's queue, with ``task_id`` = job id."""

from __future__ import annotations

from typing import Any

from celery import Celery

from orchestrator.celery_app import RUN_JOB_TASK
from orchestrator.livestate import LiveState
from orchestrator.settings import queue_for


def publish_attempt(
    celery: Celery,
    live: LiveState,
    *,
    job_id: str,
    attempt: int,
    kind: str,
    hypervisor: str,
    params: dict[str, Any],
    reason: str = "queued",
) -> None:
    """Mark the attempt queued in Redis, send it, then note in Redis that it was sent.

    Marking first keeps the event order (queued before running). The outbox row stays in SQL
    until the recorder sees the "sent" note (then it only deletes the row) or, without one,
    sends the attempt again. A second send of the same attempt is harmless: the worker's claim
    turns it into a no-op.
    """
    live.mark_queued(job_id, attempt, kind, hypervisor, f"{reason} on {queue_for(hypervisor)}")
    celery.send_task(
        RUN_JOB_TASK,
        args=[job_id, attempt, kind, params],
        task_id=job_id,
        queue=queue_for(hypervisor),
        retry=False,  # fail fast: the outbox row, not a blocked caller, carries the retry
    )
    live.mark_published(job_id, attempt)
