"""The claim and the event stream, against a real redis-server."""

import time
from collections.abc import Iterator

import pytest

from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import ClaimOutcome, LiveState


@pytest.fixture
def live(redis_server: str) -> Iterator[LiveState]:
    state = LiveState.from_url(redis_server)
    state.redis.flushall()
    yield state
    state.redis.flushall()


def test_only_the_first_delivery_of_an_attempt_runs(live: LiveState) -> None:
    live.mark_queued("j1", 1, "ping", "hv", "queued")
    assert live.claim("j1", 1, "w1", "i1") is ClaimOutcome.CLAIMED
    assert live.claim("j1", 1, "w2", "i2") is ClaimOutcome.DUPLICATE
    assert live.job("j1")["instance"] == "i1"


def test_a_stale_attempt_is_a_no_op_and_writes_nothing(live: LiveState) -> None:
    live.mark_queued("j1", 1, "ping", "hv", "queued")
    live.claim("j1", 1, "w1", "i1")
    live.mark_queued("j1", 2, "ping", "hv", "worker lost; attempt 2 queued")
    seq_before = live.job("j1")["seq"]
    assert live.claim("j1", 1, "w1", "i1") is ClaimOutcome.STALE
    assert live.event("j1", 1, "late output").seq is None
    assert live.finish("j1", 1, JobState.SUCCEEDED, "done", result={}).seq is None
    assert live.job("j1")["seq"] == seq_before
    assert live.claim("j1", 2, "w3", "i3") is ClaimOutcome.CLAIMED


def test_a_cancelled_job_is_refused_by_the_claim(live: LiveState) -> None:
    live.mark_queued("j1", 1, "ping", "hv", "queued")
    live.finish("j1", 1, JobState.CANCELLED, "cancelled")
    assert live.claim("j1", 1, "w1", "i1") is ClaimOutcome.REFUSED


def test_events_are_numbered_in_order_and_a_finished_job_stays_finished(live: LiveState) -> None:
    live.mark_queued("j1", 1, "ping", "hv", "queued")
    live.claim("j1", 1, "w1", "i1")
    live.event("j1", 1, "step one", data={"n": 1})
    live.finish("j1", 1, JobState.LOST, "lost")
    refused = live.finish("j1", 1, JobState.SUCCEEDED, "too late", result={"x": 1})
    assert refused.seq is None and refused.current_state == "lost"
    events = live.events("j1")
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert [e["state"] for e in events] == ["queued", "running", None, "lost"]
    assert events[2]["data"] == {"n": 1}
    assert live.job("j1")["state"] == "lost"


def test_a_waiter_returns_as_soon_as_the_job_ends(live: LiveState) -> None:
    import threading

    from orchestrator.jobs.completion import CompletionWaiter

    live.mark_queued("j1", 1, "ping", "hv", "queued")
    live.claim("j1", 1, "w1", "i1")
    threading.Timer(0.2, lambda: live.finish("j1", 1, JobState.SUCCEEDED, "ok", result=1)).start()
    started = time.monotonic()
    state = CompletionWaiter(live).wait("j1", timeout=10)
    assert state is not None and state["state"] == "succeeded" and state["result"] == 1
    assert time.monotonic() - started < 0.9  # woken by the finish, not by the 1 s re-read


def test_a_stopping_worker_withdraws_the_heartbeat_only_when_it_is_the_latest(
    live: LiveState,
) -> None:
    live.beat("hv", {"instance": "old"}, ttl=30)
    live.beat("hv", {"instance": "new"}, ttl=30)  # a second process, or a restart
    live.withdraw("hv", "old")
    assert not live.instance_alive("old") and live.instance_alive("new")
    assert live.heartbeat("hv")["instance"] == "new"
    live.withdraw("hv", "new")
    assert live.heartbeat("hv") is None
