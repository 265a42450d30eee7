"""Deadlines hold whatever the pool, and a Redis stall does not strand a job: with real Redis,
real workers (Celery's thread pool, which ignores Celery's own time limits) and the worker's
job runner."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.jobs.ids import new_job_id
from orchestrator.jobs.lifecycle import JobState
from orchestrator.kinds.basic import PingParams
from orchestrator.settings import Settings
from tests.support import services
from tests.support.services import redis_url, running_redis
from workers import runner
from workers.context import JobContext
from workers.runner import WorkerRuntime, run_attempt


def test_a_job_past_its_deadline_fails_on_time_with_celerys_thread_pool(
    tmp_path: Path, redis_server: str
) -> None:
    with services.test_stack(
        tmp_path,
        redis_server,
        {"hv1": "test:///default"},
        task_soft_time_limit=3,
        task_time_limit=5,
    ) as stack:
        done = stack.run("ping", "hv1", delay=12)

        assert done["state"] == "failed"
        assert done["error"]["type"] == "urn:orchestrator:problem:timeout"
        assert done["error"]["detail"].startswith("deadline of 3s exceeded")
        started = time.mktime(time.strptime(done["started_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        finished = time.mktime(time.strptime(done["finished_at"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert finished - started < 12  # stopped at its deadline, not after its 12 s
        events = stack.api.events(done["id"])
        assert events[-1]["state"] == "failed"


@pytest.fixture
def runtime(tmp_path: Path, redis_server: str) -> Iterator[WorkerRuntime]:
    settings = Settings(
        hypervisor="hv1",
        libvirt_uri="test:///default",
        redis_url=redis_server,
        var_dir=tmp_path / "var",
        task_soft_time_limit=1,
        task_time_limit=2,
        visibility_timeout=60,
    )
    built = WorkerRuntime.from_settings(settings)
    built.live.redis.flushall()
    yield built
    built.connector.close()


def test_a_thread_stuck_past_the_hard_deadline_is_abandoned_and_fenced(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()
    removed: list[str] = []

    def stuck(ctx: JobContext, params: PingParams) -> dict[str, Any]:
        # A call that ignores the cancel flag (a hung libvirt call or SSH read).
        ctx.created("volume made before hanging", lambda: removed.append("volume"))
        released.wait(30)
        ctx.event("written by the abandoned thread")
        return {"too": "late"}

    monkeypatch.setitem(runner.HANDLERS, "ping", stuck)
    job_id = new_job_id()
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(run_attempt(runtime, job_id, 1, "ping", {}))
    )
    thread.start()
    deadline = time.monotonic() + 30
    while runtime.live.state(job_id) is not JobState.FAILED:
        assert time.monotonic() < deadline, "the hard deadline never failed the job"
        time.sleep(0.05)
    failed = runtime.live.job(job_id)
    assert failed is not None
    assert "was abandoned" in failed["error"]["detail"]

    released.set()
    thread.join(30)

    assert outcome == {"state": "failed"}
    assert removed == ["volume"]  # what the attempt made is removed once its thread returns
    messages = [e.message for e in runtime.live.events(job_id) or []]
    assert "written by the abandoned thread" not in messages
    assert runtime.live.job(job_id)["state"] == "failed"  # type: ignore[index]


def test_a_redis_stall_while_a_job_runs_delays_its_outcome_but_does_not_strand_it(
    tmp_path: Path,
) -> None:
    with (
        running_redis(tmp_path / "redis") as server,
        services.test_stack(tmp_path, redis_url(server), {"hv1": "test:///default"}) as stack,
    ):
        job = stack.submit("ping", "hv1", delay=3)
        deadline = time.monotonic() + 30
        while stack.live.state(job["id"]) is not JobState.RUNNING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert server.process is not None
        # Longer than the clients' 10 s socket timeout: their calls fail, then Redis is back.
        os.kill(server.process.pid, signal.SIGSTOP)
        time.sleep(14)
        os.kill(server.process.pid, signal.SIGCONT)

        done = stack.api.wait(job["id"], timeout=90)

        assert done["state"] == "succeeded", done["error"]
        assert stack.wait_recorded(job["id"], "succeeded", timeout=60).state == "succeeded"


def test_a_stale_attempt_that_fails_leaves_what_it_made_to_the_newer_attempt(
    runtime: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    removed: list[str] = []
    job_id = new_job_id()

    def superseded(ctx: JobContext, params: PingParams) -> dict[str, Any]:
        ctx.created("disk the newer attempt also reports", lambda: removed.append("disk"))
        # Meanwhile the recorder declared this attempt lost and queued attempt 2.
        ctx.live.redis.hset(f"orch:job:{job_id}", "attempt", 2)
        raise RuntimeError("libvirt connection reset")

    monkeypatch.setitem(runner.HANDLERS, "ping", superseded)
    assert run_attempt(runtime, job_id, 1, "ping", {}) == {"state": "failed"}

    assert removed == []
