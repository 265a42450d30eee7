"""The pipeline under load: 500 pings from 50 concurrent clients, a tenth of the POSTs sent
again under an earlier Idempotency-Key, then 1,000 queued while the workers are stopped and run
once they start again. Every job is accounted for in SQL and through the API, and no process's
memory grows with the job count. bench/load.py runs the same with 1,000 pings and a backlog of
10,000, and reports the rates."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from bench.load import (
    BACKLOG_SUBMITTER,
    BURST_SUBMITTER,
    MIB,
    STACK_SETTINGS,
    Clients,
    RssSampler,
    Sent,
    api_jobs,
    burst_plan,
    conflicts_naming_the_key,
    disagreements,
    job_ids,
    not_run_once,
    pid_of,
    ping,
    rows_per_key,
    start_workers,
    statuses,
    stop_workers,
    wait_for_state,
    wrong_repeats,
)
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.models import Job
from orchestrator.settings import Settings
from tests.support.services import RunningStack

TEST_URI = "test:///default"
JOBS = 500
CLIENTS = 50
BACKLOG = 1000
# Far above what each process holds here (about 100 MiB for a gunicorn worker or the recorder,
# 140 MiB for a worker), so only growth with the job count reaches it: a process keeping 700 KiB
# for each job it sees (half of these 1,500 at least) would; bench/load.py sees 11,000.
CEILING_BYTES = 600 * MIB
# Generous: the machine is shared. Nothing is timed; each wait ends on the state it waits for.
WAIT_SECONDS = 600
# The liveness the product ships with, not the tests' fast one: under this load a worker's
# heartbeat may come late, and a fast grace period would take a busy worker for a dead one.
SHIPPED_LIVENESS = {
    name: Settings.model_fields[name].default
    for name in (
        "heartbeat_interval",
        "heartbeat_ttl",
        "recorder_lost_check_interval",
        "outbox_grace_seconds",
        "lost_grace_seconds",
    )
}
MakeStack = Callable[..., RunningStack]


def _unanswered_or_5xx(sent: list[Sent]) -> list[Sent]:
    return [s for s in sent if s.status == 0 or s.status >= 500][:5]


@pytest.mark.timeout(1800)
def test_a_burst_and_a_backlog_lose_no_job_run_none_twice_and_keep_memory_bounded(
    make_stack: MakeStack,
) -> None:
    stack = make_stack({"hv-a": TEST_URI, "hv-b": TEST_URI}, **STACK_SETTINGS, **SHIPPED_LIVENESS)
    base = stack.settings.resolved_api_url
    sessions = make_sessionmaker(make_engine(stack.settings.resolved_database_url))
    hypervisors = tuple(stack.workers)
    watched = {service.name: pid_of(service) for service in stack.stack.services}

    with RssSampler(watched) as sampler:
        # The burst: every distinct key makes one job, a repeat answers with it.
        roles = burst_plan(JOBS, CLIENTS)
        burst = Clients(base, CLIENTS, BURST_SUBMITTER)
        burst.post_all(roles, lambda i: ping(i, hypervisors, "burst"), keyed=True)
        assert statuses(burst.sent) == Counter(
            {("new", 202): JOBS, ("repeat", 200): roles.count("repeat"), ("conflict", 422): 1}
        ), _unanswered_or_5xx(burst.sent)
        assert wrong_repeats(burst.sent) == []
        assert conflicts_naming_the_key(burst.sent) == [True]
        keys = {s.key for s in burst.sent if s.role == "new"}
        assert rows_per_key(sessions, BURST_SUBMITTER) == Counter(dict.fromkeys(keys, 1))
        answered = {s.job_id for s in burst.sent if s.role != "conflict"}
        assert job_ids(sessions, BURST_SUBMITTER) == answered
        states = wait_for_state(sessions, BURST_SUBMITTER, "succeeded", JOBS, WAIT_SECONDS)
        assert states == Counter(succeeded=JOBS)
        assert disagreements(sessions, base, BURST_SUBMITTER) == {}
        assert not_run_once(sessions, BURST_SUBMITTER) == {}

        # The backlog: queued while no worker runs, run once each when they are back.
        workers = list(stack.workers.values())
        assert stop_workers(workers) == {"worker-hv-a": 0, "worker-hv-b": 0}  # warm, not killed
        backlog = Clients(base, CLIENTS, BACKLOG_SUBMITTER)
        backlog.post_all(["new"] * BACKLOG, lambda i: ping(i, hypervisors, "backlog"), keyed=False)
        assert statuses(backlog.sent) == Counter({("new", 202): BACKLOG}), _unanswered_or_5xx(
            backlog.sent
        )
        queued = job_ids(sessions, BACKLOG_SUBMITTER)
        assert queued == {s.job_id for s in backlog.sent}
        states = wait_for_state(sessions, BACKLOG_SUBMITTER, "queued", BACKLOG, WAIT_SECONDS)
        assert states == Counter(queued=BACKLOG)
        assert Counter(doc["state"] for doc in api_jobs(base, queued).values()) == states
        start_workers(workers)
        states = wait_for_state(sessions, BACKLOG_SUBMITTER, "succeeded", BACKLOG, WAIT_SECONDS)
        assert states == Counter(succeeded=BACKLOG)
        assert disagreements(sessions, base, BACKLOG_SUBMITTER) == {}
        assert not_run_once(sessions, BACKLOG_SUBMITTER) == {}
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Job)) == JOBS + BACKLOG

    peaks = sampler.report()
    print(json.dumps(peaks, indent=2))
    assert len(peaks["api"]["processes_mib"]) == 1 + stack.settings.api_workers  # master, workers
    for name in ("worker-hv-a", "worker-hv-b"):
        assert len(peaks[name]["processes_mib"]) == 2  # sampled before the stop and after
    for name, peak in sampler.peaks.items():
        assert 0 < peak.largest_process < CEILING_BYTES, (name, peaks[name])
