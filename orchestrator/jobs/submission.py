"""Accepting a job: validate it, place it, store it with its outbox row, and publish it."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import redis
from celery import Celery
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import InvalidInput
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import LiveState
from orchestrator.jobs.publisher import TaskPublisher
from orchestrator.jobs.view import job_summary
from orchestrator.kinds import get_kind, parse_params
from orchestrator.kinds.registry import validation_errors
from orchestrator.models import Job
from orchestrator.placement import choose_hypervisor
from orchestrator.settings import Settings

log = logging.getLogger(__name__)


class JobRequest(BaseModel):
    """The body of ``POST /v1/jobs``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="A job kind; GET /v1/kinds lists them.")
    params: dict[str, Any] = Field(default_factory=dict, description="The kind's parameters.")
    hypervisor: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$",
        description="Where to run; omitted means the live hypervisor with most free memory.",
    )
    on_worker_lost: Literal["rerun", "fail"] | None = Field(
        None,
        description="What to do when the worker dies mid-job: run a new attempt (only for kinds "
        "safe to re-run; their default) or mark the job lost (default for other kinds).",
    )

    @classmethod
    def parse(cls, body: Any) -> JobRequest:
        if not isinstance(body, dict):
            raise InvalidInput(
                "the body must be a JSON object",
                errors=[{"field": "", "message": "must be an object"}],
            )
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise InvalidInput("invalid job request", errors=validation_errors(exc)) from None


class Submitter:
    """What the API (and anything else accepting jobs) needs to take one in."""

    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], live: LiveState, celery: Celery
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.live = live
        self.publisher = TaskPublisher(celery, live)
        self._registry: list[dict[str, Any]] = []
        self._registry_read_at = -1e9

    def submit(
        self, request: JobRequest, submitter: str, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """Store and publish the job; returns (job, created). Nothing is stored on bad input."""
        kind = get_kind(request.kind)
        params = parse_params(kind, request.params).model_dump(mode="json")
        rerun = _rerun_on_loss(request, kind.safe_to_rerun)
        hypervisor = choose_hypervisor(
            request.hypervisor, self._hypervisors(), self.settings.hypervisor
        )
        new = jobstore.NewJob(kind.name, params, hypervisor, submitter, idempotency_key, rerun)
        with self.sessions() as session:
            job, created = jobstore.create_job(session, new)
            if created:
                self._publish(session, job)
        return job, created

    def _publish(self, session: Session, job: Job) -> None:
        # The fast path. The outbox row stays either way: the recorder deletes it once it sees
        # the job was sent, or sends the job itself when the broker was unreachable here.
        try:
            self.publisher.publish(
                job_id=job.id,
                attempt=1,
                kind=job.kind,
                hypervisor=job.hypervisor,
                params=job.params,
                summary=job_summary(job),
            )
        except (redis.RedisError, OperationalError, OSError) as exc:
            log.warning("job %s stays pending, broker unreachable: %s", job.id, exc)
            return
        # The returned object (never attached to a session) shows the state it reached; the
        # row says so once the recorder has stored the queued event.
        job.state = JobState.QUEUED.value

    def _hypervisors(self) -> list[dict[str, Any]]:
        # The registry changes when workers come and go; a second-old view places jobs as well
        # and spares two Redis round trips per submission.
        now = time.monotonic()
        if now - self._registry_read_at > 1.0:
            try:
                self._registry = self.live.hypervisors()
            except redis.RedisError:
                self._registry = []
            self._registry_read_at = now
        return self._registry


def _rerun_on_loss(request: JobRequest, safe_to_rerun: bool) -> bool:
    if request.on_worker_lost == "rerun" and not safe_to_rerun:
        raise InvalidInput(
            f"job kind {request.kind!r} is not safe to re-run",
            errors=[{"field": "on_worker_lost", "message": "'rerun' needs a kind safe to re-run"}],
        )
    if request.on_worker_lost is None:
        return safe_to_rerun
    return request.on_worker_lost == "rerun"
