"""The recorder's share of the hypervisors: write the heartbeats into the registry, and give
claims back when their jobs end.

Claims are released here, in the recorder, and nowhere else: it sees every job end (a worker's
finish, the API's cancel, its own verdict on a lost worker) as an event, and it reads the
heartbeats, so it alone can tell when a succeeded job's domain shows in what libvirt reports.
Releasing at the worker's finish instead would leave a window where the new domain counts
neither as claimed nor as allocated, and a concurrent placement could take its room."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.hypervisors import registry
from orchestrator.hypervisors.claims import Claim, ClaimBook
from orchestrator.jobs.events import Event
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import LiveState, job_key
from orchestrator.models import Job
from orchestrator.placement.heartbeats import listed_domains
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

# A claim the API made but never bound to a job (it died in between) is dropped after this.
UNBOUND_GRACE_SECONDS = 60.0
# A succeeded job's claim whose domain never shows (removed since, renamed) is dropped after this.
SUCCEEDED_GRACE_SECONDS = 300.0
_GIVES_BACK = frozenset({JobState.FAILED, JobState.CANCELLED, JobState.LOST})


class RegistryFeed:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], live: LiveState
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.live = live
        self.claims = ClaimBook(live.redis)
        self._declared = False

    def sync(self) -> int:
        """Declare the settings' hypervisors (once) and write what the heartbeats say."""
        with self.sessions() as session:
            if not self._declared:
                registry.declare(session, self.settings.hypervisors)
                self._declared = True
            return registry.record_beats(session, self.live.hypervisors())

    def jobs_ended(self, events: Iterable[Event]) -> None:
        """Give back the claims of jobs that just failed, were cancelled or lost; a succeeded
        job's claim only stops counting as provisioning (see :meth:`reconcile`)."""
        ended = [(e.job_id, JobState(e.state)) for e in events if e.state]
        failed = [job for job, state in ended if state in _GIVES_BACK]
        succeeded = [job for job, state in ended if state is JobState.SUCCEEDED]
        if failed:
            self.claims.finish_many(failed, release=True)
        if succeeded:
            self.claims.finish_many(succeeded, release=False)

    def reconcile(self) -> int:
        """Drop every claim whose room is accounted for elsewhere or no longer needed: its job
        ended and, when it succeeded, the hypervisor's heartbeat lists its domain; its job is
        gone; or it was never bound to a job. Returns how many were dropped."""
        claims = self.claims.all()
        if not claims:
            return 0
        states = self._job_states([c.job for c in claims if c.job])
        beats = {beat["name"]: beat for beat in self.live.hypervisors()}
        dropped = 0
        now = time.time()
        for claim in claims:
            if self._spent(claim, states, beats, now):
                self.claims.release(claim.id)
                dropped += 1
            elif claim.finished_at is None and states.get(claim.job or "") is JobState.SUCCEEDED:
                self.claims.finish(claim.id)  # the event went by before the claim was bound
        return dropped

    def _spent(
        self,
        claim: Claim,
        states: Mapping[str, JobState | None],
        beats: Mapping[str, Mapping[str, Any]],
        now: float,
    ) -> bool:
        if claim.job is None:
            return now - claim.created_at > UNBOUND_GRACE_SECONDS
        state = states.get(claim.job)
        if state is None:
            return now - claim.created_at > UNBOUND_GRACE_SECONDS  # no such job anywhere
        if state in _GIVES_BACK:
            return True
        if state is not JobState.SUCCEEDED:
            return False
        beat = beats.get(claim.host) or {}
        if not beat.get("alive"):
            return True  # a hypervisor that is down takes nothing; its allocation is unknown
        finished = claim.finished_at or now
        if now - finished > SUCCEEDED_GRACE_SECONDS:
            return True
        # A capacity read that began after the job ended counts the domain's room, or shows
        # that the domain is gone again (removed right after it was made).
        read_at = beat.get("capacity_at")
        interval = self.settings.heartbeat_interval
        if isinstance(read_at, int | float) and read_at > finished + interval:
            return True
        names = listed_domains(beat)
        return claim.domain is not None and names is not None and claim.domain in names

    def _job_states(self, job_ids: list[str]) -> dict[str, JobState | None]:
        """Each job's live state, else its SQL state, else None (no such job)."""
        pipe = self.live.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(job_key(job_id), "state")
        states: dict[str, JobState | None] = {
            job_id: JobState(raw) if raw else None
            for job_id, raw in zip(job_ids, pipe.execute(), strict=True)
        }
        missing = [job_id for job_id, state in states.items() if state is None]
        if missing:
            with self.sessions() as session:
                rows = session.execute(select(Job.id, Job.state).where(Job.id.in_(missing)))
                states.update({job_id: JobState(state) for job_id, state in rows})
        return states
