"""The recorder's share: claims given back when their jobs fail, once a succeeded job's domain
shows in its hypervisor's heartbeat, and when their job is gone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.hypervisors import feed as feed_module
from orchestrator.hypervisors.claims import Limits
from orchestrator.hypervisors.feed import RegistryFeed
from orchestrator.jobs.events import Event
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import LiveState, job_key
from orchestrator.placement import Resources
from orchestrator.settings import Settings


@pytest.fixture
def feed(redis_server: str, database_url: str, tmp_path: Path) -> Iterator[RegistryFeed]:
    live = LiveState.from_url(redis_server)
    live.redis.flushall()
    settings = Settings(var_dir=tmp_path, database_url=database_url, redis_url=redis_server)
    yield RegistryFeed(settings, make_sessionmaker(make_engine(database_url)), live)
    live.redis.flushall()
    live.redis.close()


def _ended(job_id: str, state: JobState) -> Event:
    return Event(job_id, 3, datetime.now(UTC), "info", 1, state.value, state=state.value)


def _claimed(feed: RegistryFeed, job_id: str, domain: str) -> None:
    claim = feed.claims.claim("hv1", Resources(2, 1024), Limits(), domain=domain)
    feed.claims.bind(claim, job_id)
    feed.live.redis.hset(job_key(job_id), "state", JobState.RUNNING.value)


def _held(feed: RegistryFeed) -> tuple[Resources, int]:
    claims = feed.claims.per_host(["hv1"])["hv1"]
    return claims.claimed, claims.provisioning


def test_a_failed_cancelled_or_lost_job_gives_its_claim_back_at_once(feed: RegistryFeed) -> None:
    for index, state in enumerate([JobState.FAILED, JobState.CANCELLED, JobState.LOST]):
        _claimed(feed, f"job-{index}", f"vm-{index}")
        feed.jobs_ended([_ended(f"job-{index}", state)])
        assert _held(feed) == (Resources(0, 0), 0)
    assert feed.claims.all() == []


def test_a_succeeded_jobs_claim_lasts_until_the_heartbeat_lists_its_domain(
    feed: RegistryFeed,
) -> None:
    _claimed(feed, "job-1", "web-01")
    feed.live.beat("hv1", {"capacity": {"domains": [{"name": "other"}]}}, ttl=60)
    feed.jobs_ended([_ended("job-1", JobState.SUCCEEDED)])
    feed.live.redis.hset(job_key("job-1"), "state", JobState.SUCCEEDED.value)
    assert _held(feed) == (Resources(2, 1024), 0)  # no longer provisioning, still claimed
    assert feed.reconcile() == 0
    feed.live.beat("hv1", {"capacity": {"domains": [{"name": "web-01"}]}}, ttl=60)
    assert feed.reconcile() == 1
    assert _held(feed) == (Resources(0, 0), 0)


def test_claims_whose_job_never_came_or_is_gone_are_dropped_after_a_grace(
    feed: RegistryFeed, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed.claims.claim("hv1", Resources(1, 512), Limits())  # the API died before binding it
    _claimed(feed, "job-1", "web-01")
    feed.live.redis.delete(job_key("job-1"))  # expired from Redis, never stored in SQL
    assert feed.reconcile() == 0
    monkeypatch.setattr(feed_module, "UNBOUND_GRACE_SECONDS", 0.0)
    assert feed.reconcile() == 2
    assert _held(feed) == (Resources(0, 0), 0)
