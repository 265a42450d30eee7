"""Jobs through the real stack: HTTP API, Redis, recorder, Celery workers on test:///default."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import select

from orchestrator.models import JobEvent
from tests.support.services import RunningStack

TEST_URI = "test:///default"


@pytest.fixture
def two_hypervisors(make_stack) -> RunningStack:  # type: ignore[no-untyped-def]
    return make_stack({"hv-a": TEST_URI, "hv-b": TEST_URI})  # type: ignore[no-any-return]


def test_a_ping_goes_pending_queued_running_succeeded_with_ordered_events(
    two_hypervisors: RunningStack,
) -> None:
    stack = two_hypervisors
    accepted = requests.post(
        f"{stack.settings.resolved_api_url}/v1/jobs",
        json={"kind": "ping", "params": {"delay": 0.2}, "hypervisor": "hv-a"},
        timeout=10,
    )
    assert accepted.status_code == 202
    job = accepted.json()
    assert accepted.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in {"pending", "queued"}

    done = stack.api.wait(job["id"], timeout=30)
    assert done["state"] == "succeeded"
    assert done["result"]["hypervisor"] == "hv-a"
    assert done["result"]["pid"] == stack.workers["hv-a"].pid

    events = stack.api.events(job["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    states = [e["state"] for e in events if e["state"]]
    assert states == ["queued", "running", "succeeded"]
    assert any("waiting 0.2s" in e["message"] for e in events)

    row = stack.wait_recorded(job["id"], "succeeded")
    assert row.result == done["result"] and row.worker and row.started_at and row.finished_at
    with stack.session() as session:
        stored = session.scalars(
            select(JobEvent.seq).where(JobEvent.job_id == job["id"]).order_by(JobEvent.seq)
        ).all()
    assert list(stored) == [e["seq"] for e in events]
    # The result lives in the job's record only: Celery's result backend is not written (no
    # second copy kept a day in Redis, and no write before the job starts that a Redis blip
    # could fail, leaving the job queued forever with its message gone).
    assert list(stack.live.redis.scan_iter("celery-task-meta-*")) == []


def test_post_with_wait_answers_once_the_job_finished(two_hypervisors: RunningStack) -> None:
    url = f"{two_hypervisors.settings.resolved_api_url}/v1/jobs"
    done = requests.post(
        url, params={"wait": 30}, json={"kind": "ping", "hypervisor": "hv-a"}, timeout=40
    )
    assert done.status_code == 200
    assert done.json()["state"] == "succeeded"
    assert done.json()["result"]["message"] == "pong"
    assert done.headers["Location"] == f"/v1/jobs/{done.json()['id']}"
    slow = {"kind": "ping", "params": {"delay": 5}, "hypervisor": "hv-a"}
    going = requests.post(url, params={"wait": 0.3}, json=slow, timeout=10)
    assert going.status_code == 202
    assert going.json()["state"] in {"queued", "running"}
    requests.post(f"{url}/{going.json()['id']}/cancel", timeout=10)


def test_each_worker_receives_only_its_own_hypervisors_jobs(two_hypervisors: RunningStack) -> None:
    stack = two_hypervisors
    jobs = [stack.submit("ping", hv) for hv in ["hv-a", "hv-b"] * 5]
    results = [stack.api.wait(job["id"], timeout=30) for job in jobs]
    for job, result in zip(jobs, results, strict=True):
        assert result["state"] == "succeeded"
        assert result["result"]["hypervisor"] == job["hypervisor"]
        assert result["result"]["pid"] == stack.workers[job["hypervisor"]].pid


def test_hypervisors_report_capacity_from_libvirt(two_hypervisors: RunningStack) -> None:
    items = {hv["name"]: hv for hv in two_hypervisors.api.get("/v1/hypervisors")["items"]}
    assert set(items) == {"hv-a", "hv-b"}
    for hv in items.values():
        assert hv["alive"] is True
        assert hv["libvirt_uri"] == TEST_URI
        assert hv["capacity"]["cpus"] == 16 and hv["capacity"]["memory_mib"] > 0
        assert hv["up_since"] <= hv["last_seen"]


def test_facts_come_from_the_hypervisor_the_job_ran_on(two_hypervisors: RunningStack) -> None:
    done = two_hypervisors.run("hypervisor.facts", "hv-b")
    assert done["state"] == "succeeded"
    facts = done["result"]
    assert facts["driver"] == "TEST"
    assert facts["cpu"]["count"] == 16
    assert [d["name"] for d in facts["domains"]] == ["test"]
    assert [p["name"] for p in facts["storage_pools"]] == ["default-pool"]


def test_health_checks_sql_and_redis(two_hypervisors: RunningStack) -> None:
    health = two_hypervisors.api.get("/v1/health")
    assert health["status"] == "ok"
    assert health["checks"]["sql"]["ok"] and health["checks"]["redis"]["ok"]


def test_listing_filters_and_pages_with_a_cursor(two_hypervisors: RunningStack) -> None:
    stack = two_hypervisors
    ids = [stack.run("ping", "hv-a")["id"] for _ in range(5)]
    stack.run("ping", "hv-b")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"hypervisor": "hv-a", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = requests.get(f"{stack.settings.resolved_api_url}/v1/jobs", params=params).json()
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))


def test_an_idempotency_key_returns_the_first_job(two_hypervisors: RunningStack) -> None:
    stack = two_hypervisors
    body = {"kind": "ping", "hypervisor": "hv-a"}
    first = stack.api.submit(body, **{"Idempotency-Key": "ci-run-42"})
    again = requests.post(
        f"{stack.settings.resolved_api_url}/v1/jobs",
        json=body,
        headers={"Idempotency-Key": "ci-run-42"},
        timeout=10,
    )
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    other = requests.post(
        f"{stack.settings.resolved_api_url}/v1/jobs",
        json={**body, "hypervisor": "hv-b"},
        headers={"Idempotency-Key": "ci-run-42"},
        timeout=10,
    )
    assert other.status_code == 422
    assert "Idempotency-Key" in other.json()["detail"]
    # A blank key (an unset variable in a CI script) or one too long to store is refused.
    for bad in ("", "k" * 256):
        refused = requests.post(
            f"{stack.settings.resolved_api_url}/v1/jobs",
            json=body,
            headers={"Idempotency-Key": bad},
            timeout=10,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_requests_with_one_idempotency_key_make_one_job(
    two_hypervisors: RunningStack,
) -> None:
    url = f"{two_hypervisors.settings.resolved_api_url}/v1/jobs"

    def post(_: int) -> requests.Response:
        body = {"kind": "ping", "hypervisor": "hv-a"}
        return requests.post(url, json=body, headers={"Idempotency-Key": "race"}, timeout=30)

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(32)))

    assert sorted({a.status_code for a in answers}) in ([200, 202], [202])
    assert len({a.json()["id"] for a in answers}) == 1


def test_a_queued_job_can_be_cancelled_and_never_runs(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack({"hv-a": TEST_URI, "hv-z": TEST_URI})
    stack.workers["hv-z"].stop()  # hv-z is known but nobody serves it: jobs wait in its queue
    job = stack.submit("ping", "hv-z")
    url = f"{stack.settings.resolved_api_url}/v1/jobs/{job['id']}/cancel"
    cancelled = requests.post(url, timeout=10)
    assert cancelled.status_code == 200
    assert stack.api.job(job["id"])["state"] == "cancelled"
    assert requests.post(url, timeout=10).status_code == 409
    stack.restart("worker-hv-z")
    after = stack.run("ping", "hv-z")  # the worker is consuming again
    assert after["state"] == "succeeded"
    assert stack.api.job(job["id"])["state"] == "cancelled"
    assert not [e for e in stack.api.events(job["id"]) if e["state"] == "running"]
    assert stack.wait_recorded(job["id"], "cancelled").finished_at


def test_the_cli_submits_and_waits_for_a_job(two_hypervisors: RunningStack) -> None:
    from click.testing import CliRunner

    from orchestrator.cli import main

    env = {"ORCH_API_HOST": "127.0.0.1", "ORCH_API_PORT": str(two_hypervisors.settings.api_port)}
    ok = CliRunner().invoke(
        main,
        ["submit", "ping", "--hypervisor", "hv-b", "-p", "message=hi", "--wait", "--json"],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    job = json.loads(ok.stdout)
    assert (job["state"], job["result"]["message"], job["hypervisor"]) == (
        "succeeded",
        "hi",
        "hv-b",
    )
    slow = ["submit", "ping", "--hypervisor", "hv-b", "-p", "delay=5", "--wait", "--json"]
    unfinished = CliRunner().invoke(main, [*slow, "--timeout", "0.5"], env=env)
    assert unfinished.exit_code == 4  # not finished within the timeout: timed out
    requests.post(
        f"{two_hypervisors.settings.resolved_api_url}/v1/jobs/{json.loads(unfinished.stdout)['id']}/cancel",
        timeout=10,
    )
