"""The recorder: publishes the outbox, persists what workers report, finds lost jobs, and keeps
the hypervisor registry and the placement claims in step with the heartbeats.

It is the only process that turns live state in Redis into durable rows in SQL. Every step is
safe to repeat, so a recorder that restarts (or two that run at once) loses and doubles nothing.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import redis
from celery import Celery
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.hypervisors.feed import RegistryFeed
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.events import Event
from orchestrator.jobs.lifecycle import JobState, next_attempt_after_loss
from orchestrator.jobs.livestate import GLOBAL_EVENTS, RECORDER_GROUP, LiveState
from orchestrator.jobs.publisher import TaskPublisher
from orchestrator.jobs.view import job_summary
from orchestrator.kinds import KINDS
from orchestrator.models import Job
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

# Entries another recorder read but never acknowledged are taken over after this long.
ABANDONED_AFTER_MS = 30_000
BATCH = 500
BATCH_PAUSE_SECONDS = 0.25


class Recorder:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        live: LiveState,
        celery: Celery,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.live = live
        self.publisher = TaskPublisher(celery, live)
        self.hypervisors = RegistryFeed(settings, sessions, live)
        self.consumer = f"{socket.gethostname()}-recorder"
        self._group_ready = False
        self._backlog = True  # after a restart, first re-read what was delivered but not acked
        self._next_lost_check = 0.0
        self._next_outbox_sweep = 0.0
        self._next_forgotten_check = 0.0
        # Running attempts seen without a live worker running them, and since when.
        self._adrift: dict[tuple[str, int], float] = {}

    def run(self, stop: threading.Event, block_ms: int = 500) -> None:
        """Loop until ``stop`` is set, riding out Redis and SQL outages."""
        while not stop.is_set():
            try:
                self.step(block_ms)
            except (redis.RedisError, SQLAlchemyError, OSError) as exc:
                log.warning("recorder step failed, retrying: %s", exc)
                self._group_ready = False
                stop.wait(1.0)

    def step(self, block_ms: int = 500) -> None:
        recorded = self.record_events(block_ms)
        now = time.monotonic()
        if now >= self._next_outbox_sweep:
            self.publish_outbox()
            self._next_outbox_sweep = now + min(self.settings.outbox_grace_seconds, 1.0)
        if now >= self._next_forgotten_check:
            self.reconcile_forgotten()
            self._next_forgotten_check = now + max(self.settings.lost_grace_seconds, 1.0)
        if now >= self._next_lost_check:
            self.reconcile_lost()
            self.hypervisors.sync()
            self.hypervisors.reconcile()
            self._next_lost_check = now + self.settings.recorder_lost_check_interval
        if 0 < recorded < BATCH:
            # Let a batch build up: one commit for many events costs the database (and the
            # API waiting on its lock) far less than one per event. The API reads live state
            # from Redis meanwhile, so nobody waits for this.
            time.sleep(BATCH_PAUSE_SECONDS)

    # --- outbox ------------------------------------------------------------------------------
    def publish_outbox(self) -> int:
        """Clear the outbox: drop rows of attempts that were sent, send the others.

        The others are attempts the API could not send (Redis was down, or it died mid-request).
        Returns how many attempts this call sent.
        """
        sent = 0
        with self.sessions() as session:
            due = jobstore.due_outbox(session, self.settings.outbox_grace_seconds)
            if not due:
                return 0
            published = self.live.published_attempts([job.id for job, _ in due])
            for job, attempt in due:
                if published.get(job.id, 0) < attempt and job.state != JobState.CANCELLED:
                    self._publish(session, job, attempt, "queued by the recorder")
                    sent += 1
            jobstore.clear_outbox(session, [(job.id, attempt) for job, attempt in due])
        return sent

    # --- events ------------------------------------------------------------------------------
    def record_events(self, block_ms: int) -> int:
        """Move one batch of reported events from Redis into SQL, then acknowledge them."""
        self._ensure_group()
        entries = self._read_batch(block_ms)
        if not entries:
            return 0
        events = [Event.from_stream(fields) for _, fields in entries]
        with self.sessions() as session:
            jobstore.apply_events(session, events)
        # Before the acknowledgement: a crash in between replays the events, and giving a
        # claim back twice is a no-op.
        self.hypervisors.jobs_ended(events)
        ids = [entry_id for entry_id, _ in entries]
        pipe = self.live.redis.pipeline()
        pipe.xack(GLOBAL_EVENTS, RECORDER_GROUP, *ids)
        pipe.xdel(GLOBAL_EVENTS, *ids)
        pipe.execute()
        return len(entries)

    def _read_batch(self, block_ms: int) -> list[tuple[str, dict[str, str]]]:
        client = self.live.redis
        if self._backlog:
            # Our own delivered-but-unacked entries first: a crash between SQL and XACK.
            pending = client.xreadgroup(
                RECORDER_GROUP, self.consumer, {GLOBAL_EVENTS: "0"}, count=BATCH
            )
            entries = pending[0][1] if pending else []
            if entries:
                return entries
            self._backlog = False
            _, claimed, *_ = client.xautoclaim(
                GLOBAL_EVENTS, RECORDER_GROUP, self.consumer, ABANDONED_AFTER_MS, count=BATCH
            )
            if claimed:
                self._backlog = True
                return list(claimed)
        fresh = client.xreadgroup(
            RECORDER_GROUP, self.consumer, {GLOBAL_EVENTS: ">"}, count=BATCH, block=block_ms
        )
        return fresh[0][1] if fresh else []

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.live.redis.xgroup_create(GLOBAL_EVENTS, RECORDER_GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True
        self._backlog = True

    # --- lost workers ------------------------------------------------------------------------
    def reconcile_lost(self) -> list[str]:
        """Finish every running job that no live worker runs, once it has been so for the
        grace period: re-run it or mark it lost. The grace outlasts a Redis restart (workers
        beat again within a few seconds) and a starved heartbeat."""
        handled = []
        now = time.monotonic()
        adrift: dict[tuple[str, int], float] = {}
        for live_job in self.live.running_jobs():
            reason = self._worker_gone(live_job)
            if reason is None:
                continue
            key = (live_job["id"], live_job["attempt"])
            adrift[key] = since = self._adrift.get(key, now)
            if now - since < self.settings.lost_grace_seconds:
                continue
            self._handle_lost(live_job, reason)
            handled.append(live_job["id"])
            del adrift[key]
        self._adrift = adrift
        return handled

    def reconcile_forgotten(self) -> list[str]:
        """Jobs SQL has as unfinished that Redis no longer knows (it lost its data: a restart
        without persistence, a failover): one not started is queued again; one that was
        running is re-run when its kind is safe to, else marked lost saying why."""
        handled = []
        with self.sessions() as session:
            jobs = jobstore.unfinished_and_settled(session, self.settings.lost_grace_seconds)
            lives = self.live.jobs([job.id for job in jobs]) if jobs else {}
            for job in jobs:
                if lives.get(job.id) is not None:
                    continue
                handled.append(job.id)
                reason = "Redis lost the job's live state"
                if job.state != JobState.RUNNING:
                    self._publish(session, job, job.attempt, f"{reason}; queued again")
                    continue
                kind = KINDS.get(job.kind)
                safe = bool(kind and kind.safe_to_rerun and job.rerun_on_loss)
                following = next_attempt_after_loss(
                    job.attempt, safe, self.settings.max_rerun_attempts
                )
                if following is None:
                    jobstore.mark_lost(session, job, f"{reason} while it ran")
                    continue
                jobstore.enqueue_attempt(session, job.id, following)
                self._publish(session, job, following, f"{reason}; attempt {following} queued")
                jobstore.clear_outbox(session, [(job.id, following)])
        return handled

    def _worker_gone(self, live_job: dict[str, Any]) -> str | None:
        # Liveness is per worker process: another process beating for the same hypervisor
        # (a second worker, or the new one of a rolling restart) keeps nobody else's job alive.
        hypervisor = live_job.get("hypervisor", "?")
        worker = live_job.get("worker", "?")
        instance = live_job.get("instance")
        running = self.live.instance_running(instance) if instance else None
        if running is not None:
            if (live_job["id"], live_job["attempt"]) in running or self._just_claimed(live_job):
                return None
            return (
                f"worker {worker} on hypervisor {hypervisor} is alive but no longer runs the "
                "job (its outcome never reached Redis)"
            )
        if self.live.heartbeat(hypervisor) is None:
            return f"worker {worker} on hypervisor {hypervisor} stopped heartbeating"
        return f"worker {worker} on hypervisor {hypervisor} stopped or restarted during the job"

    def _just_claimed(self, live_job: dict[str, Any]) -> bool:
        """Claimed after the worker's last beat could list it."""
        started = float(live_job.get("started_at") or 0)
        return time.time() - started < 2 * self.settings.heartbeat_interval

    def _handle_lost(self, live_job: dict[str, Any], reason: str) -> None:
        job_id, attempt = live_job["id"], live_job["attempt"]
        with self.sessions() as session:
            job = session.get(Job, job_id)
            if job is None:
                return
            kind = KINDS.get(job.kind)
            safe = bool(kind and kind.safe_to_rerun and job.rerun_on_loss)
            following = next_attempt_after_loss(attempt, safe, self.settings.max_rerun_attempts)
            if following is None:
                problem = {"type": "urn:orchestrator:problem:worker-lost", "status": 500}
                self.live.finish(
                    job_id,
                    attempt,
                    JobState.LOST,
                    f"lost: {reason}",
                    error={**problem, "detail": reason},
                )
                return
            jobstore.enqueue_attempt(session, job_id, following)
            self._publish(session, job, following, f"{reason}; attempt {following} queued")
            jobstore.clear_outbox(session, [(job_id, following)])

    def _publish(self, session: Session, job: Job, attempt: int, reason: str) -> None:
        family = jobstore.family_of(session, job)
        if family is not None:
            # The API stored the family but could not queue it: its parent is not live yet.
            self.live.open_family(*family, f"{family[1]} VMs queued by the recorder")
        self.publisher.publish(
            job_id=job.id,
            attempt=attempt,
            kind=job.kind,
            hypervisor=job.hypervisor,
            params=job.params,
            summary=job_summary(job),
            reason=reason,
            family=family,
        )
