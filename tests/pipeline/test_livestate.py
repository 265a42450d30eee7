"""The claim and the event stream, against a real redis-server."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from orchestrator.jobs.completion import CompletionWaiter
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import ClaimOutcome, LiveState, done_channel


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
    assert events is not None
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.state for e in events] == ["queued", "running", None, "lost"]
    assert events[2].data == {"n": 1}
    assert live.job("j1")["state"] == "lost"


class ReadRecordingLiveState(LiveState):
    """The real live state, noting each state read so a test knows when a waiter has looked."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(client)
        self.reads: list[JobState | None] = []
        self.read_once = threading.Event()

    def state(self, job_id: str) -> JobState | None:
        state = super().state(job_id)
        self.reads.append(state)
        self.read_once.set()
        return state


def test_a_waiter_blocked_on_a_running_job_returns_when_it_ends_not_at_its_timeout(
    live: LiveState,
) -> None:
    recording = ReadRecordingLiveState(live.redis)
    live.mark_queued("j1", 1, "ping", "hv", "queued")
    live.claim("j1", 1, "w1", "i1")
    returned: list[dict[str, Any] | None] = []
    waiter = threading.Thread(
        target=lambda: returned.append(CompletionWaiter(recording).wait("j1", timeout=3600)),
        daemon=True,
    )
    waiter.start()
    assert recording.read_once.wait(60), "the waiter never read the job"

    live.finish("j1", 1, JobState.SUCCEEDED, "ok", result=1)
    # A waiter that only gave up at its timeout would still be blocked here.
    waiter.join(60)

    assert not waiter.is_alive()
    assert recording.reads[0] is JobState.RUNNING and recording.reads[-1] is JobState.SUCCEEDED
    (state,) = returned
    assert state is not None and state["state"] == "succeeded" and state["result"] == 1


def test_finishing_a_job_announces_it_on_its_done_channel(live: LiveState) -> None:
    live.mark_queued("j1", 1, "ping", "hv", "queued")
    live.claim("j1", 1, "w1", "i1")
    subscription = live.redis.pubsub(ignore_subscribe_messages=True)
    subscription.subscribe(done_channel("j1"))
    try:
        live.finish("j1", 1, JobState.SUCCEEDED, "ok", result=1)
        message = None
        deadline = time.monotonic() + 60
        while message is None and time.monotonic() < deadline:
            message = subscription.get_message(timeout=1.0)
    finally:
        subscription.close()

    assert message is not None, "the finish was never announced"
    assert message["channel"] == done_channel("j1")


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
