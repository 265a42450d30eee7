"""What must hold once a trial's jobs are final: each in a final state with its reason, none run
twice at once, SQL, Redis and the API agreeing, and libvirt holding exactly what succeeded."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import LiveState
from orchestrator.models import Job, JobEvent
from tests.chaos.client import CountingClient

# Each of these counts must be zero after a run.
MUST_BE_ZERO = (
    "lost",  # a job the API took that no record holds, or a succeeded VM libvirt lacks
    "duplicated",  # a job stored twice, or two attempts of one job running at once
    "orphaned",  # a domain in libvirt that no succeeded job made
    "stuck",  # a job not final when the wait ran out
    "unexplained",  # a final job without its result or its error's detail
    "disagreeing",  # SQL, Redis and the API telling different states or events
    "unexpected",  # a job failed under a fault that should fail none
    "crashed",  # a service that exited by itself after the fault (it is started again)
)


@dataclass(frozen=True)
class Finding:
    category: str
    fault: str
    trial: int
    job_id: str | None
    seen: str

    def __str__(self) -> str:
        job = f" job {self.job_id}" if self.job_id else ""
        return f"[{self.category}] {self.fault} trial {self.trial}{job}: {self.seen}"


@dataclass(frozen=True)
class Records:
    """Where the checks read the truth: SQL (the recorder's) and Redis (the live state)."""

    sessions: sessionmaker[Session]
    live: LiveState


@dataclass(frozen=True)
class Submitted:
    """One job the driver sent: its id, kind, and the domain or volume name it makes."""

    id: str
    kind: str
    domain: str | None = None
    volume: str | None = None


@dataclass(frozen=True)
class Allowed:
    """The jobs a fault may end other than succeeded: in ``states``, of ``kinds`` (None: any),
    on ``hypervisor`` (None: any), started before ``until`` (epoch seconds: the fault over)."""

    states: frozenset[str] = frozenset()
    kinds: frozenset[str] | None = None
    hypervisor: str | None = None
    until: float = 0.0

    def covers(self, kind: str, doc: dict[str, Any]) -> bool:
        return (
            doc["state"] in self.states
            and (self.kinds is None or kind in self.kinds)
            and (self.hypervisor is None or doc.get("hypervisor") == self.hypervisor)
            and _started(doc) <= self.until
        )

    def __str__(self) -> str:
        if not self.states:
            return "this fault should fail no job"
        where = f" on {self.hypervisor}" if self.hypervisor else ""
        kinds = f" {'/'.join(sorted(self.kinds))}" if self.kinds else ""
        return f"this fault may end{kinds} jobs{where} {'/'.join(sorted(self.states))}"


class TrialCheck:
    """The checks of one trial; each appends what it found to ``findings``."""

    def __init__(self, fault: str, trial: int) -> None:
        self.fault = fault
        self.trial = trial
        self.findings: list[Finding] = []

    def found(self, category: str, job_id: str | None, seen: str) -> None:
        self.findings.append(Finding(category, self.fault, self.trial, job_id, seen))

    def final_states(
        self, jobs: list[Submitted], docs: dict[str, dict[str, Any]], allowed: Allowed
    ) -> None:
        """Each job final, with its reason; other than succeeded only as ``allowed``."""
        for job in jobs:
            doc = docs.get(job.id)
            if doc is None:
                self.found("lost", job.id, "the API never answered for it again")
                continue
            state = JobState(doc["state"])
            detail = (doc.get("error") or {}).get("detail")
            if not state.is_terminal:
                self.found("stuck", job.id, f"still {state.value} at attempt {doc['attempt']}")
            elif state is JobState.SUCCEEDED and doc.get("result") is None:
                self.found("unexplained", job.id, "succeeded without a result")
            elif state is not JobState.SUCCEEDED and not detail:
                self.found("unexplained", job.id, f"{state.value} without error.detail")
            elif state is not JobState.SUCCEEDED and not allowed.covers(job.kind, doc):
                self.found(
                    "unexpected",
                    job.id,
                    f"{job.kind} on {doc.get('hypervisor')} ended {state.value} ({allowed}): "
                    f"{detail}",
                )

    def agreement(
        self, records: Records, client: CountingClient, jobs: list[Submitted], timeout: float
    ) -> None:
        """SQL (once the recorder caught up), Redis and the API tell each job's same state,
        attempt and events."""
        ids = [job.id for job in jobs]
        rows, lives = _recorded(records, ids, timeout)
        for job_id in ids:
            row, live = rows.get(job_id), lives.get(job_id)
            if row is None:
                self.found("lost", job_id, "no row in SQL")
                continue
            doc = client.job(job_id)
            said = {
                "SQL": (row.state, row.attempt),
                "Redis": (live["state"], live["attempt"]) if live else None,
                "API": (doc["state"], doc["attempt"]) if doc else None,
            }
            if len({value for value in said.values() if value is not None}) != 1 or not live:
                self.found("disagreeing", job_id, f"state, attempt: {said}")
            self._events_agree(records, job_id, row.last_seq)

    def _events_agree(self, records: Records, job_id: str, last_seq: int) -> None:
        with records.sessions() as session:
            stored = session.scalars(
                select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)
            ).all()
            recorded = [(e.seq, e.attempt, e.state) for e in stored]
        live = records.live.events(job_id)
        streamed = [(e.seq, e.attempt, e.state) for e in live] if live is not None else None
        seqs = [seq for seq, _, _ in recorded]
        if seqs != list(range(1, last_seq + 1)):
            self.found("disagreeing", job_id, f"SQL events {seqs} for last_seq {last_seq}")
        elif streamed is not None and streamed != recorded:
            self.found("disagreeing", job_id, f"SQL events {recorded} != Redis {streamed}")
        self._attempts_apart(job_id, recorded)

    def _attempts_apart(self, job_id: str, events: list[tuple[int, int, str | None]]) -> None:
        """Once attempt N wrote its first event, no earlier attempt writes again; no attempt
        starts running twice."""
        first_of: dict[int, int] = {}
        for seq, attempt, _ in events:
            first_of.setdefault(attempt, seq)
        for seq, attempt, _ in events:
            newer = [a for a, first in first_of.items() if a > attempt and first < seq]
            if newer:
                self.found(
                    "duplicated",
                    job_id,
                    f"attempt {attempt} wrote event {seq} after attempt {min(newer)} began",
                )
                return
        runs = Counter(attempt for _, attempt, state in events if state == "running")
        twice = [attempt for attempt, count in runs.items() if count > 1]
        if twice:
            self.found("duplicated", job_id, f"attempt {twice[0]} started running twice")

    def domains(
        self,
        client: CountingClient,
        expected: dict[str, set[str]],
        already: set[tuple[str, str]],
        timeout: float,
    ) -> None:
        """Every hypervisor's libvirt holds exactly the domains of ``expected`` (names of the
        succeeded VMs its current worker made), once its heartbeat has caught up.
        ``already`` holds the (hypervisor, name) findings of earlier trials."""
        seen = _domains_settled(client, expected, timeout)
        for hypervisor, names in expected.items():
            self.holds("domain", hypervisor, seen.get(hypervisor, set()), names, already)

    def holds(
        self,
        what: str,
        hypervisor: str,
        held: set[str],
        made: set[str],
        already: set[tuple[str, str]],
    ) -> None:
        """``held`` (what libvirt has) is exactly ``made`` (what succeeded jobs made)."""
        for name in sorted(held - made):
            if (hypervisor, name) not in already:
                already.add((hypervisor, name))
                self.found("orphaned", None, f"{what} {name} on {hypervisor}: no job made it")
        for name in sorted(made - held):
            if (hypervisor, name) not in already:
                already.add((hypervisor, name))
                self.found("lost", None, f"{what} {name} was made but {hypervisor} lacks it")


def _started(doc: dict[str, Any]) -> float:
    """When the job's last attempt started, as epoch seconds (0 when it never did)."""
    started = doc.get("started_at")
    return datetime.fromisoformat(started).timestamp() if started else 0.0


def duplicate_jobs(records: Records) -> dict[str, list[str]]:
    """VM names that more than one stored job provisions, with those jobs."""
    with records.sessions() as session:
        rows = session.execute(select(Job.id, Job.params).where(Job.kind == "vm.provision")).all()
    by_name: dict[str, list[str]] = {}
    for job_id, params in rows:
        by_name.setdefault(params["name"], []).append(job_id)
    return {name: ids for name, ids in by_name.items() if len(ids) > 1}


def _recorded(
    records: Records, ids: list[str], timeout: float
) -> tuple[dict[str, Job], dict[str, dict[str, Any] | None]]:
    """SQL rows and Redis states, once SQL holds each job's final Redis state (or at the
    timeout, as they are)."""
    deadline = time.monotonic() + timeout
    while True:
        with records.sessions() as session:
            rows = {row.id: row for row in session.scalars(select(Job).where(Job.id.in_(ids)))}
            session.expunge_all()
        lives = records.live.jobs(ids)
        if all(_caught_up(rows.get(i), lives.get(i)) for i in ids) or time.monotonic() > deadline:
            return rows, lives
        time.sleep(0.2)


def _caught_up(row: Job | None, live: dict[str, Any] | None) -> bool:
    return (
        row is not None
        and live is not None
        and JobState(row.state).is_terminal
        and row.state == live["state"]
        and row.last_seq == live.get("seq")
    )


def _domains_settled(
    client: CountingClient, expected: dict[str, set[str]], timeout: float
) -> dict[str, set[str]]:
    deadline = time.monotonic() + timeout
    seen: dict[str, set[str]] = {}
    while time.monotonic() < deadline:
        seen = client.hypervisor_domains() or seen
        if all(seen.get(name) == names for name, names in expected.items()):
            break
        time.sleep(0.3)
    return seen
