"""Faults: a worker killed mid-job, Redis down at submit time, a recorder restarted."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from sqlalchemy import func, select

from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import GLOBAL_EVENTS, RECORDER_GROUP
from orchestrator.local.processes import ServiceProcess
from orchestrator.models import Job, JobEvent, OutboxEntry
from tests.support.services import RunningStack, redis_url, running_redis

TEST_URI = "test:///default"


def wait_for_state(stack: RunningStack, job_id: str, state: str, timeout: float = 20) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while (job := stack.api.job(job_id))["state"] != state:
        assert time.monotonic() < deadline, f"job stayed {job['state']}, wanted {state}"
        time.sleep(0.05)
    return job


def two_workers(make_stack) -> tuple[RunningStack, dict[int, ServiceProcess]]:  # type: ignore[no-untyped-def]
    """A stack whose hypervisor hv-a has two worker processes, by pid."""
    stack = make_stack({"hv-a": TEST_URI})
    second = stack.stack.launch(stack.stack.worker("hv-a", TEST_URI))
    second.wait_ready(60)
    first = stack.workers["hv-a"]
    return stack, {first.pid: first, second.pid: second}


def kill_worker_mid_job(stack: RunningStack, job_id: str) -> int:
    """SIGKILL the worker once it runs the job; returns the killed pid."""
    wait_for_state(stack, job_id, "running")
    worker = stack.workers["hv-a"]
    pid = worker.pid
    assert pid is not None
    worker.kill(signal.SIGKILL)
    worker.process.wait()  # type: ignore[union-attr]
    return pid


def test_a_job_whose_worker_is_killed_is_marked_lost_when_it_may_not_rerun(
    make_stack,  # type: ignore[no-untyped-def]
) -> None:
    # A short visibility timeout: the killed worker's unacknowledged message comes back while
    # the test watches (the limits stay below it, as the settings require).
    stack = make_stack(
        {"hv-a": TEST_URI}, visibility_timeout=4, task_soft_time_limit=2, task_time_limit=3
    )
    body = {"kind": "ping", "params": {"delay": 30}, "hypervisor": "hv-a", "on_worker_lost": "fail"}
    job = stack.api.submit(body)
    kill_worker_mid_job(stack, job["id"])

    lost = stack.api.wait(job["id"], timeout=20)
    assert lost["state"] == "lost"
    assert "stopped heartbeating" in lost["error"]["detail"]
    assert lost["attempt"] == 1

    fresh = stack.restart("worker-hv-a")
    # The broker hands the message to the new worker, whose claim turns it away.
    skipped = f"job {job['id']} attempt 1 not run: duplicate"
    deadline = time.monotonic() + 60
    while skipped not in fresh.log_path.read_text():
        assert time.monotonic() < deadline, "the message was never redelivered"
        time.sleep(0.2)
    events = stack.api.events(job["id"])
    assert [e["state"] for e in events if e["state"]] == ["queued", "running", "lost"]
    assert stack.wait_recorded(job["id"], "lost").error["detail"] == lost["error"]["detail"]


def test_a_kind_safe_to_rerun_runs_once_more_after_its_worker_dies_never_concurrently(
    make_stack,  # type: ignore[no-untyped-def]
) -> None:
    # (A worker that stalls rather than dies, and wakes up during the second attempt, is
    # test_a_stalled_workers_attempt_is_replaced_and_its_later_writes_are_refused.)
    stack = make_stack({"hv-a": TEST_URI})
    job = stack.submit("ping", "hv-a", delay=30)
    kill_worker_mid_job(stack, job["id"])
    requeued = wait_for_state(stack, job["id"], "queued")
    assert requeued["attempt"] == 2

    stack.workers["hv-a"] = stack.restart("worker-hv-a")
    running = wait_for_state(stack, job["id"], "running")
    assert running["attempt"] == 2
    stack.api.http.post(f"{stack.settings.resolved_api_url}/v1/jobs/{job['id']}/cancel")

    # In the job's own record: attempt 1 ran, was declared gone, and only then attempt 2 ran.
    events = stack.api.events(job["id"])
    states = [(e["attempt"], e["state"]) for e in events if e["state"]]
    assert states[:4] == [(1, "queued"), (1, "running"), (2, "queued"), (2, "running")]
    requeue = next(e for e in events if e["state"] == "queued" and e["attempt"] == 2)
    assert "stopped heartbeating" in requeue["message"]
    assert [e for e in events if e["seq"] > requeue["seq"] and e["attempt"] == 1] == []


def test_two_workers_on_one_hypervisor_keep_their_own_jobs_alive_and_only_those(
    make_stack,  # type: ignore[no-untyped-def]
) -> None:
    # Two processes beating for one hypervisor: a rolling restart, or a second worker.
    stack, workers = two_workers(make_stack)
    body = {
        "kind": "ping",
        "params": {"delay": 3},
        "hypervisor": "hv-a",
        "on_worker_lost": "fail",
    }
    # More than one worker's 4 threads, all queued at once: each worker takes at most 4 (prefetch
    # 1 per thread), so the other takes the rest while the first 4 still sleep, once it
    # consumes (a loaded machine may start it late: batches until both have served).
    served: set[int] = set()
    deadline = time.monotonic() + 120
    while served != set(workers):
        assert time.monotonic() < deadline, f"only {served} of {set(workers)} served jobs"
        with ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(lambda _: stack.api.submit(body), range(8)))
        done = [stack.api.wait(job["id"], timeout=60) for job in jobs]
        assert [job["state"] for job in done] == ["succeeded"] * 8
        served |= {job["result"]["pid"] for job in done}

    # Eight long jobs: four on each worker (each holds at most four), all running at once.
    long = [stack.api.submit({**body, "params": {"delay": 8}}) for _ in range(8)]
    running = [wait_for_state(stack, job["id"], "running") for job in long]
    runner = {job["id"]: int(job["worker"].rsplit(":", 1)[1]) for job in running}
    assert sorted(Counter(runner.values()).values()) == [4, 4]
    killed_pid = next(iter(workers))
    workers[killed_pid].kill(signal.SIGKILL)

    done = {job["id"]: stack.api.wait(job["id"], timeout=30) for job in long}
    for job_id, job in done.items():
        if runner[job_id] == killed_pid:
            assert job["state"] == "lost"
            assert "stopped or restarted during the job" in job["error"]["detail"]
        else:  # the surviving worker's jobs were never taken for lost
            assert (job["state"], job["attempt"]) == ("succeeded", 1), job["error"]
            assert job["result"]["pid"] == runner[job_id]


def test_a_job_posted_while_redis_is_down_is_published_once_redis_is_back(
    make_stack,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    with running_redis(tmp_path / "redis") as server:
        stack = make_stack({"hv-a": TEST_URI}, redis_url=redis_url(server))
        assert stack.run("ping", "hv-a")["state"] == "succeeded"
        server.stop()

        accepted = requests.post(
            f"{stack.settings.resolved_api_url}/v1/jobs",
            json={"kind": "ping", "hypervisor": "hv-a"},
            timeout=30,
        )
        assert accepted.status_code == 202
        job = accepted.json()
        assert job["state"] == "pending"
        with stack.session() as session:
            assert session.get(Job, job["id"]).state == "pending"

        server.start()
        done = stack.api.wait(job["id"], timeout=60)
        assert done["state"] == "succeeded"
        events = stack.api.events(job["id"])
        assert "queued by the recorder" in events[0]["message"]
        assert [e["state"] for e in events if e["state"]] == ["queued", "running", "succeeded"]
        stack.wait_recorded(job["id"], "succeeded", timeout=20)
        stack.stack.stop()


def test_restarting_the_recorder_loses_no_event(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack({"hv-a": TEST_URI})
    recorder = stack.service("recorder")
    jobs = [stack.submit("ping", "hv-a") for _ in range(20)]
    recorder.kill(signal.SIGKILL)
    jobs += [stack.submit("ping", "hv-a") for _ in range(20)]
    finished = [stack.api.wait(job["id"], timeout=60) for job in jobs]
    assert {job["state"] for job in finished} == {"succeeded"}
    stack.restart("recorder")

    for job in jobs:
        stack.wait_recorded(job["id"], "succeeded", timeout=30)
    with stack.session() as session:
        counts = dict(
            session.execute(select(JobEvent.job_id, func.count()).group_by(JobEvent.job_id)).all()
        )
        for job in jobs:
            seqs = session.scalars(
                select(JobEvent.seq).where(JobEvent.job_id == job["id"]).order_by(JobEvent.seq)
            ).all()
            assert list(seqs) == [1, 2, 3], (job["id"], seqs)
    assert len(counts) == 40


def test_a_recorder_killed_between_reading_events_and_acknowledging_them_replays_them(
    make_stack,  # type: ignore[no-untyped-def]
) -> None:
    stack = make_stack({"hv-a": TEST_URI})
    recorder = stack.service("recorder")
    recorder.kill(signal.SIGKILL)
    recorder.process.wait()  # type: ignore[union-attr]
    jobs = [stack.submit("ping", "hv-a") for _ in range(10)]
    assert {stack.api.wait(job["id"], timeout=60)["state"] for job in jobs} == {"succeeded"}
    # What the killed recorder would have left: every event delivered to it, none acknowledged
    # (read as its consumer, by the name it reads under).
    redis = stack.live.redis
    consumer = f"{socket.gethostname()}-recorder"
    read = redis.xreadgroup(RECORDER_GROUP, consumer, {GLOBAL_EVENTS: ">"})
    delivered = len(read[0][1])
    assert delivered >= 30  # queued, running, succeeded per job
    assert redis.xpending(GLOBAL_EVENTS, RECORDER_GROUP)["pending"] == delivered

    stack.restart("recorder")

    for job in jobs:
        stack.wait_recorded(job["id"], "succeeded", timeout=30)
    with stack.session() as session:
        for job in jobs:
            seqs = session.scalars(
                select(JobEvent.seq).where(JobEvent.job_id == job["id"]).order_by(JobEvent.seq)
            ).all()
            assert list(seqs) == [1, 2, 3], (job["id"], seqs)
    deadline = time.monotonic() + 10
    while redis.xpending(GLOBAL_EVENTS, RECORDER_GROUP)["pending"]:
        assert time.monotonic() < deadline, "the replayed entries were never acknowledged"
        time.sleep(0.1)


def test_a_vm_that_needs_placing_while_redis_is_down_is_a_503_and_stores_nothing(
    make_stack,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    # Placement claims room in Redis; without Redis it cannot promise a hypervisor, so it says
    # so rather than store a job that might overcommit one.
    with running_redis(tmp_path / "redis") as server:
        stack = make_stack({"hv-a": TEST_URI}, redis_url=redis_url(server))
        assert stack.run("ping", "hv-a")["state"] == "succeeded"
        before = len(stack.api.list_jobs({}))
        server.stop()
        body = {
            "kind": "vm.provision",
            "params": {
                "name": "web-01",
                "vcpus": 1,
                "memory_mib": 64,
                "disk": {"size": "1G", "pool": "default-pool"},
            },
        }
        answer = requests.post(f"{stack.settings.resolved_api_url}/v1/jobs", json=body, timeout=30)
        assert answer.status_code == 503, answer.text
        assert "Redis" in answer.json()["detail"]
        server.start()
        assert len(stack.api.list_jobs({})) == before


def test_jobs_redis_lost_are_queued_again_run_again_or_marked_lost_saying_why(
    make_stack,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    with running_redis(tmp_path / "redis") as server:
        stack = make_stack({"hv-a": TEST_URI}, redis_url=redis_url(server))
        # Four run at once (the worker's threads), three wait in the queue; one may not re-run.
        body = {"kind": "ping", "hypervisor": "hv-a", "params": {"delay": 4}}
        no_rerun = stack.api.submit({**body, "on_worker_lost": "fail"})
        rerunnable = [stack.api.submit(body) for _ in range(6)]
        deadline = time.monotonic() + 30
        while stack.live.state(no_rerun["id"]) is not JobState.RUNNING:
            assert time.monotonic() < deadline, "the job never ran"
            time.sleep(0.05)
        for job in (*rerunnable, no_rerun):
            stack.wait_recorded(job["id"], stack.live.state(job["id"]).value)  # type: ignore[union-attr]
        # Every job was handed to Redis and the recorder knows it (no outbox row left), so
        # what follows is Redis forgetting jobs, not the outbox sending them again.
        while True:
            with stack.session() as session:
                if not session.scalar(select(func.count()).select_from(OutboxEntry)):
                    break
            assert time.monotonic() < deadline + 30, "the outbox never emptied"
            time.sleep(0.1)

        stack.live.redis.flushall()  # Redis restarts without its data

        for job in rerunnable:
            assert stack.wait_recorded(job["id"], "succeeded", timeout=90).state == "succeeded"
        lost = stack.wait_recorded(no_rerun["id"], "lost", timeout=90)
        assert lost.error is not None
        assert lost.error["detail"] == "Redis lost the job's live state while it ran"


def test_a_stalled_workers_attempt_is_replaced_and_its_later_writes_are_refused(
    make_stack,  # type: ignore[no-untyped-def]
) -> None:
    # Two workers for one hypervisor; the one running the job stops (SIGSTOP: a starved or
    # frozen process) for longer than its heartbeat's TTL and the grace: the job runs again on
    # the other. Then the first wakes up and finishes its old attempt.
    stack, workers = two_workers(make_stack)
    job = stack.submit("ping", "hv-a", delay=6)
    running = wait_for_state(stack, job["id"], "running")
    stalled_pid = int(running["worker"].rsplit(":", 1)[1])
    other_pid = next(pid for pid in workers if pid != stalled_pid)

    os.kill(stalled_pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        while (current := stack.api.job(job["id"]))["attempt"] != 2 or current[
            "state"
        ] != "running":
            assert time.monotonic() < deadline, f"never re-run: {current['state']}"
            time.sleep(0.1)
    finally:
        os.kill(stalled_pid, signal.SIGCONT)
    done = stack.api.wait(job["id"], timeout=60)
    time.sleep(8)  # the woken attempt's 6 s sleep ends and it tries to report

    assert done["state"] == "succeeded"
    assert (done["attempt"], done["result"]["pid"]) == (2, other_pid)
    events = stack.api.events(job["id"])
    requeued = next(e["seq"] for e in events if e["state"] == "queued" and e["attempt"] == 2)
    assert [e for e in events if e["seq"] > requeued and e["attempt"] == 1] == []
    assert stack.api.job(job["id"])["result"]["pid"] == other_pid


def test_a_redis_restart_leaves_the_workers_serving_and_the_running_job_finishes(
    make_stack,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    # A clean Redis stop and start on its AOF (an upgrade, a host reboot): the worker reconnects
    # rather than exits, the job it was running ends as it would have, and new jobs run.
    with running_redis(tmp_path / "redis") as server:
        stack = make_stack({"hv-a": TEST_URI}, redis_url=redis_url(server))
        worker = stack.workers["hv-a"]
        job = stack.submit("ping", "hv-a", delay=4)
        wait_for_state(stack, job["id"], "running")

        server.stop()
        time.sleep(1)
        server.start()

        assert stack.api.wait(job["id"], timeout=60)["state"] == "succeeded"
        after = stack.run("ping", "hv-a")
        assert after["state"] == "succeeded"
        assert after["result"]["pid"] == worker.pid
        assert worker.process is not None
        log = worker.log_path.read_text()[-3000:]
        assert worker.process.poll() is None, f"the worker exited:\n{log}"
