"""A network that drops answers: a submit sent again makes no second job, and a followed job's
events print once each, in order, however often the connection is cut. Through a TCP proxy
that forwards each request whole and loses or cuts what the API answers."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.cli.conftest import HV, jobs_with_message, marker, run_cli
from tests.cli.flaky_proxy import FlakyProxy
from tests.support.services import RunningStack


def api_address(stack: RunningStack) -> tuple[str, int]:
    parts = urlsplit(stack.settings.resolved_api_url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def test_a_submit_whose_answers_are_lost_is_sent_again_and_makes_one_job(
    stack: RunningStack,
) -> None:
    message = marker()
    lost = 3
    with FlakyProxy(api_address(stack), lambda n, _: 0 if n <= lost else None) as proxy:
        run = run_cli(proxy.url, "submit", "ping", "-p", f"message={message}", "--hypervisor", HV)

    assert run.code == 0, run.stderr
    assert proxy.cut == lost
    assert run.stderr.count("trying again") == lost
    (job,) = jobs_with_message(stack, message)
    assert run.stdout.startswith(f"job {job['id']} ping on {HV}")


def test_the_same_idempotency_key_twice_answers_with_the_same_job(stack: RunningStack) -> None:
    message, key = marker(), str(uuid.uuid4())
    args = ("submit", "ping", "-p", f"message={message}", "--idempotency-key", key, "--json")
    first = run_cli(stack.settings.resolved_api_url, *args)
    second = run_cli(stack.settings.resolved_api_url, *args)

    assert (first.code, second.code) == (0, 0)
    assert json.loads(first.stdout)["id"] == json.loads(second.stdout)["id"]
    assert len(jobs_with_message(stack, message)) == 1


@pytest.mark.parametrize("answer", ["event-stream", "json-view"])
def test_following_through_cut_connections_prints_each_event_once(
    stack: RunningStack, tmp_path: Path, answer: str
) -> None:
    # A count request's parent gets an event as each VM ends: many events, spread in time.
    prefix = f"cut{uuid.uuid4().hex[:6]}"
    body = {
        "kind": "vm.provision",
        "params": {
            "count": 8,
            "name": prefix + "-{index:02d}",
            "memory_mib": 64,
            "disk": {"pool": "default", "size": "1M"},
            "graphics": "none",
        },
    }
    request = tmp_path / "job.json"
    request.write_text(json.dumps(body))
    rng = random.Random(answer)
    # The first five reads of the events have their answers cut after some of their bytes: in
    # the headers, in an event, between events.
    budgets = iter([rng.randint(100, 1200) for _ in range(5)])

    def plan(number: int, line: str) -> int | None:
        return next(budgets, None) if "/events" in line else None

    # A server that has no stream answers JSON: the proxy makes the API look like one.
    rewrite = (b"text/event-stream", b"application/json") if answer == "json-view" else None
    with FlakyProxy(api_address(stack), plan, rewrite) as proxy:
        run = run_cli(proxy.url, "submit", "--file", str(request), "--wait")

    assert run.code == 0, run.stderr
    assert proxy.cut >= 3
    assert proxy.streamed == (answer == "event-stream")
    parents = [
        job
        for job in stack.api.list_jobs({"kind": "vm.provision", "limit": 500})
        if job["params"]["name"] == body["params"]["name"] and not job["parent_id"]
    ]
    assert len(parents) == 1
    shown = stack.api.events(parents[0]["id"])
    assert run.events() == [(e["seq"], e["message"].splitlines()[0]) for e in shown]
    assert "8 of 8 VMs succeeded" in run.stdout
