"""One API process, as it ships (gevent workers), holds 1,000 long-polls open at once and still
answers plain reads from another client; every long-poll is answered when its job finishes or
its wait runs out."""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import redis
import requests

from orchestrator.serve import raise_open_files_limit
from tests.support.services import RunningStack

WAITERS = 1000
JOBS = 100
PLAIN_GETS = 200
# The jobs left alone keep their waiters for this long; it outlasts opening the waiters and
# the plain reads many times over. Those on the jobs cancelled ask for the longest wait there
# is, so only the job's finish can answer them within the test.
RUN_OUT_SECONDS = 30
CANCELLED_WAIT_SECONDS = 300
WAITER_TOKEN = "orch_" + secrets.token_urlsafe(32)
READER_TOKEN = "orch_" + secrets.token_urlsafe(32)
SCOPES = ["jobs:read", "jobs:submit"]
MakeStack = Callable[..., RunningStack]


@dataclass
class Answer:
    status: int
    document: dict[str, Any]


class LongPolls:
    """One raw HTTP/1.1 long-poll per path, all open at once from one asyncio loop in a
    thread of its own (1,000 client threads would load the machine more than the API)."""

    def __init__(self, port: int, paths: list[str]) -> None:
        self.port, self.paths = port, paths
        self.sent = 0
        self.answers: dict[int, Answer | BaseException] = {}
        self._thread = threading.Thread(target=asyncio.run, args=(self._all(),), daemon=True)

    def start(self) -> LongPolls:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), (
            f"{WAITERS - len(self.answers)} long-polls still unanswered after {timeout} s"
        )

    async def _all(self) -> None:
        await asyncio.gather(*(self._one(index, path) for index, path in enumerate(self.paths)))

    async def _one(self, index: int, path: str) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {WAITER_TOKEN}\r\nConnection: close\r\n\r\n"
            )
            writer.write(request.encode())
            await writer.drain()
            self.sent += 1
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            body = await reader.read()
            writer.close()
            self.answers[index] = Answer(int(head[0].split()[1]), json.loads(body))
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            self.answers[index] = exc


def waiters_held(stack: RunningStack) -> int:
    """Long-polls the API has let in and not yet answered (its waiter slots in Redis)."""
    client = redis.Redis.from_url(stack.settings.resolved_redis_url)
    try:
        return sum(cast(int, client.zcard(key)) for key in client.scan_iter("orch:waiters:*"))
    finally:
        client.close()


def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)


def session(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    return http


def test_a_thousand_long_polls_wait_while_plain_reads_are_answered(
    make_stack: MakeStack,
) -> None:
    raise_open_files_limit()  # a socket per long-poll in this process too
    stack = make_stack(
        {},  # no worker: the pings stay queued until cancelled
        api_tokens={WAITER_TOKEN: SCOPES, READER_TOKEN: SCOPES},
        rate_limit="1000000/minute",
        max_waiters_per_token=WAITERS,
    )
    base = stack.settings.resolved_api_url
    waiter, reader = session(WAITER_TOKEN), session(READER_TOKEN)
    jobs = []
    for _ in range(JOBS):
        answer = waiter.post(f"{base}/v1/jobs", json={"kind": "ping", "hypervisor": "idle"})
        assert answer.status_code == 202, answer.text
        jobs.append(answer.json()["id"])
    # The rate limiter leases a share of the caller's window per process on its first request;
    # taken here, so the thousand that come at once spend it rather than all leasing together.
    for http in (waiter, reader):
        assert http.get(f"{base}/v1/jobs/{jobs[0]}", timeout=30).status_code == 200
    cancelled = set(jobs[: JOBS // 2])
    paths = []
    for index in range(WAITERS):
        job = jobs[index % JOBS]
        wait = CANCELLED_WAIT_SECONDS if job in cancelled else RUN_OUT_SECONDS
        paths.append(f"/v1/jobs/{job}?wait={wait}")

    polls = LongPolls(stack.settings.api_port, paths).start()
    until(lambda: polls.sent == WAITERS, "all long-polls sent")
    until(lambda: waiters_held(stack) == WAITERS, f"the API holding {WAITERS} long-polls")

    statuses, latencies = [], []
    for _ in range(PLAIN_GETS):
        started = time.perf_counter()
        statuses.append(reader.get(f"{base}/v1/jobs/{jobs[-1]}", timeout=60).status_code)
        latencies.append(time.perf_counter() - started)
    still_open = WAITERS - len(polls.answers)
    held = waiters_held(stack)
    latencies.sort()
    print(
        f"\n{PLAIN_GETS} plain GETs beside {still_open} open long-polls: "
        f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {latencies[int(PLAIN_GETS * 0.99) - 1] * 1000:.1f} ms"
    )
    assert statuses == [200] * PLAIN_GETS
    assert still_open == WAITERS and held == WAITERS

    for job in cancelled:
        answer = waiter.post(f"{base}/v1/jobs/{job}/cancel", timeout=30)
        assert answer.status_code == 200 and answer.json()["state"] == "cancelled", answer.text
    polls.join(timeout=RUN_OUT_SECONDS + 90)

    states = {}
    for index, poll in polls.answers.items():
        assert isinstance(poll, Answer), f"long-poll {index}: {poll!r}"
        assert poll.status == 200, poll.document
        states[index] = poll.document["state"]
    expected = {
        index: "cancelled" if jobs[index % JOBS] in cancelled else "queued"
        for index in range(WAITERS)
    }
    assert states == expected
    assert waiters_held(stack) == 0
