"""Limits at the API's edge over real HTTP on a real stack: the per-caller rate limit, the cap
on waiting requests per token, the cap on uploads at once, and the worker's spool refusing
content its disk cannot hold."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from api.rate_limit import RateLimiter
from tests.support import services
from tests.support.services import RunningStack
from workers.storage.spool import SpoolFull, require_spool_space

TEST_URI = "test:///default"
TOKEN_A = "orch_" + secrets.token_urlsafe(32)
TOKEN_B = "orch_" + secrets.token_urlsafe(32)
SCOPES = ["jobs:read", "jobs:submit"]
TWO_TOKENS = {TOKEN_A: SCOPES, TOKEN_B: SCOPES}
MiB = 1024**2
MakeStack = Callable[..., RunningStack]


def call(
    stack: RunningStack, method: str, path: str, token: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{stack.settings.resolved_api_url}{path}"
    kwargs.setdefault("timeout", 60)
    return requests.request(method, url, headers=headers, **kwargs)


def until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    """``check()``'s first answer other than None or False (a refused ``Response`` is falsy);
    polls, failing after a generous ``timeout``."""
    deadline = time.monotonic() + timeout
    while (answer := check()) is None or answer is False:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.05)
    return answer


def assert_limit_problem(response: requests.Response, status: int, setting: str) -> int:
    """The problem document of a refusal by a limit; its Retry-After in seconds."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and setting in problem["detail"]
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1 and problem["retry_after"] == retry_after
    return retry_after


def first_refusal(send: Callable[[], requests.Response], most: int = 200) -> tuple[int, Any]:
    """How many requests went through before the first 429, and that 429."""
    for served in range(most):
        response = send()
        if response.status_code == 429:
            return served, response
        assert response.status_code == 200, response.text
    raise AssertionError(f"{most} requests and no 429")


def test_a_burst_past_the_rate_limit_is_429_with_retry_after_then_served_again(
    make_stack: MakeStack,
) -> None:
    stack = make_stack({}, rate_limit="5/10 seconds", api_tokens=TWO_TOKENS)

    served, refused = first_refusal(lambda: call(stack, "GET", "/v1/jobs", TOKEN_A))

    assert served >= 5
    retry_after = assert_limit_problem(refused, 429, "rate_limit")
    assert retry_after <= 11 and "5 per 10 second" in refused.json()["detail"]
    # Another token has a limit of its own; health and the OpenAPI document have none.
    assert call(stack, "GET", "/v1/jobs", TOKEN_B).status_code == 200
    for _ in range(8):
        assert call(stack, "GET", "/v1/health").status_code == 200
        assert call(stack, "GET", "/v1/openapi.json").status_code == 200
    time.sleep(retry_after)
    assert call(stack, "GET", "/v1/jobs", TOKEN_A).status_code == 200
    # The counters are in Redis, under a hash of the token: never the token itself.
    client = redis.Redis.from_url(stack.settings.resolved_redis_url)
    keys = [key.decode() for key in client.scan_iter("orch:rate*")]
    client.close()
    assert keys
    assert not [key for key in keys if TOKEN_A in key or TOKEN_A[5:20] in key]


def test_without_tokens_the_rate_limit_counts_per_client_address(
    make_stack: MakeStack,
) -> None:
    stack = make_stack({}, rate_limit="3/10 seconds")

    served, refused = first_refusal(lambda: call(stack, "GET", "/v1/kinds"))

    assert served >= 3
    assert_limit_problem(refused, 429, "rate_limit")
    assert "client address" in refused.json()["detail"]
    # A made-up token is not a caller of its own: it shares the address's limit.
    assert call(stack, "GET", "/v1/kinds", "orch_made-up").status_code == 429


def test_processes_share_a_callers_window_through_redis(redis_server: str) -> None:
    client = redis.Redis.from_url(redis_server)
    prefix = f"test-rate:{secrets.token_hex(8)}"
    # Two API processes' limiters, and one started after the window was spent.
    first, second, later = (RateLimiter(client, "100/hour", prefix) for _ in range(3))
    lease = first.windows[0].lease

    served = 0
    for _ in range(150):
        served += sum(limiter.hit("caller") is None for limiter in (first, second))
    refused = later.hit("caller")
    other = later.hit("another caller")
    client.close()

    # Leased tokens a process has not spent are lost to the other: never more than a lease.
    assert 100 - 2 * lease <= served <= 100
    assert refused is not None and 3500 < refused[1] <= 3600
    assert other is None


def test_a_burst_of_one_callers_requests_at_once_leases_once_and_none_is_refused(
    redis_server: str,
) -> None:
    client = redis.Redis.from_url(redis_server)
    prefix = f"test-rate:{secrets.token_hex(8)}"
    limiter = RateLimiter(client, "1000000/minute", prefix)
    start = threading.Barrier(300)

    def request(_: int) -> bool:
        start.wait()
        return limiter.hit("caller") is None

    # 300 requests arrive together (a gevent worker serves them all at once).
    with ThreadPoolExecutor(300) as pool:
        served = list(pool.map(request, range(300)))
    counted = int(client.get(f"{prefix}:caller:1000000/60s") or 0)
    client.close()

    assert all(served)
    assert counted == limiter.windows[0].lease  # one lease, shared by all 300


def test_with_redis_down_the_limits_let_requests_through(
    make_stack: MakeStack,
    tmp_path: Path,
) -> None:
    with services.running_redis(tmp_path / "own-redis") as server:
        url = services.redis_url(server)
        stack = make_stack({}, redis_url=url, rate_limit="2/minute", api_tokens=TWO_TOKENS)
        first_refusal(lambda: call(stack, "GET", "/v1/jobs", TOKEN_A))  # the limit is on
        server.stop()
        # A caller the limit has not refused yet is let through, past the limit and waiting:
        # SQL still answers the reads.
        for _ in range(4):
            assert call(stack, "GET", "/v1/jobs", TOKEN_B).status_code == 200
            assert call(stack, "GET", "/v1/jobs/no-such-job?wait=1", TOKEN_B).status_code == 404
        # An upload is let past its cap too, to be refused by the view that needs Redis.
        upload = call(
            stack, "PUT", upload_path("p", "v.img"), TOKEN_B, data=b"x", params={"sha256": "0" * 64}
        )
        assert upload.status_code == 503 and "unreachable" in upload.json()["detail"]


def test_a_token_holding_its_share_of_long_polls_is_429_until_one_ends(
    make_stack: MakeStack,
) -> None:
    stack = make_stack({"hv-a": TEST_URI}, max_waiters_per_token=2, api_tokens=TWO_TOKENS)
    body = {"kind": "ping", "hypervisor": "hv-a", "params": {"delay": 600}}
    job = call(stack, "POST", "/v1/jobs", TOKEN_A, json=body).json()
    path = f"/v1/jobs/{job['id']}"
    until(lambda: stack.live.state(job["id"]) == "running", "the ping starting")

    # Long-polls one after another until one is refused: a poll still unanswered after a
    # moment is held (or slow, which only means one more poll before the refusal).
    polls: list[Future[requests.Response]] = []
    with ThreadPoolExecutor(8) as pool:
        while True:
            assert len(polls) < 8, "no long-poll was refused"
            polls.append(pool.submit(call, stack, "GET", f"{path}?wait=120", TOKEN_A, timeout=180))
            with contextlib.suppress(TimeoutError):
                refused = polls[-1].result(timeout=2)
                break
        assert_limit_problem(refused, 429, "max_waiters_per_token")
        # Reads that do not wait are not capped; another token has a share of its own.
        assert call(stack, "GET", path, TOKEN_A).status_code == 200
        assert call(stack, "GET", f"{path}?wait=0.2", TOKEN_B).status_code == 200
        cancelled = call(stack, "POST", f"{path}/cancel", TOKEN_A)
        assert cancelled.status_code == 202, cancelled.text
        answers = [poll.result(timeout=180) for poll in polls]

    # Exactly the cap was held open until the job ended; every other poll was refused.
    held = [answer for answer in answers if answer.status_code == 200]
    assert len(held) == 2
    # A ping asked to stop ends early and reports itself done.
    assert all(answer.json()["finished_at"] for answer in held)
    assert {answer.status_code for answer in answers if answer not in held} == {429}
    assert call(stack, "GET", f"{path}?wait=0.2", TOKEN_A).status_code == 200


class TrickledBody:
    """A request body sent in two parts, the second only once ``release`` is set."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.parts = (first, rest)
        self.release = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield self.parts[0]
        assert self.release.wait(120), "the test never released the body"
        yield self.parts[1]


def upload_path(pool: str, name: str) -> str:
    return f"/v1/hypervisors/hv-a/pools/{pool}/volumes/{name}/content"


def upload_jobs(stack: RunningStack) -> list[str]:
    return [job["id"] for job in stack.api.list_jobs({"kind": "volume.upload"})]


def test_uploads_past_the_cap_are_503_with_retry_after_and_make_no_job(
    make_stack: MakeStack,
) -> None:
    stack = make_stack({"hv-a": TEST_URI}, max_concurrent_uploads=1)
    held = TrickledBody(b"x" * 4096, b"y" * 4096)
    query = {"sha256": "0" * 64}

    with ThreadPoolExecutor(1) as pool:
        first: Future[requests.Response] = pool.submit(
            call, stack, "PUT", upload_path("default-pool", "one.img"), data=held, params=query
        )
        until(lambda: len(upload_jobs(stack)) == 1, "the first upload's job")
        before = upload_jobs(stack)

        refused = call(
            stack, "PUT", upload_path("default-pool", "two.img"), data=b"z" * 4096, params=query
        )

        assert_limit_problem(refused, 503, "max_concurrent_uploads")
        assert upload_jobs(stack) == before
        held.release.set()
        assert first.result(timeout=120).status_code != 503

    # The slot came back with the first upload's answer: the next one is let in.
    later = call(stack, "PUT", upload_path("default-pool", "three.img"), data=b"z", params=query)
    assert later.status_code != 503, later.text
    assert len(upload_jobs(stack)) == 2


@pytest.fixture
def small_spool(tmp_path: Path) -> Iterator[Path]:
    """The worker's upload spool on a 4 MiB tmpfs of its own, unmounted afterwards."""
    spool = tmp_path / "var" / "uploads"
    spool.mkdir(mode=0o700, parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(spool)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield spool
    finally:
        subprocess.run(["umount", "-l", str(spool)], check=True)


def stack_with_pool(make_stack: MakeStack) -> tuple[RunningStack, Path]:
    """A stack on a test-driver hypervisor with pool ``spooltest`` under its var dir."""
    stack = make_stack({"hv-a": TEST_URI})
    pool_dir = stack.settings.var_dir / "pools" / "spooltest"
    made = stack.run("pool.ensure", "hv-a", name="spooltest", path=str(pool_dir))
    assert made["state"] == "succeeded", made["error"]
    return stack, pool_dir


def test_content_larger_than_the_spools_free_space_is_refused_naming_needed_and_free(
    make_stack: MakeStack,
    small_spool: Path,
) -> None:
    stack, pool_dir = stack_with_pool(make_stack)
    content = bytes(range(256)) * (10 * MiB // 256)
    sha256 = hashlib.sha256(content).hexdigest()

    response = call(
        stack,
        "PUT",
        upload_path("spooltest", "big.img"),
        data=iter([content[i : i + MiB] for i in range(0, len(content), MiB)]),
        params={"sha256": sha256},
    )

    assert response.status_code == 507, response.text
    problem = response.json()
    assert "upload spool" in problem["detail"] and "free" in problem["detail"]
    assert problem["needed_bytes"] > 0 and problem["free_bytes"] < 4 * MiB
    job = stack.api.job(problem["job"])
    assert job["state"] == "failed" and job["error"]["status"] == 507
    assert list(small_spool.iterdir()) == []
    assert not (pool_dir / "big.img").exists()


def test_a_declared_size_past_the_spools_free_space_is_refused_naming_both(tmp_path: Path) -> None:
    stats = os.statvfs(tmp_path)
    declared = 2 * stats.f_bavail * stats.f_frsize

    require_spool_space(tmp_path, MiB)
    with pytest.raises(SpoolFull) as refused:
        require_spool_space(tmp_path, declared)

    problem = refused.value.to_problem()
    assert problem["status"] == 507 and problem["needed_bytes"] == declared
    assert 0 < problem["free_bytes"] < declared and problem["reserve_bytes"] > 0
    assert str(tmp_path) in problem["detail"] and "free" in problem["detail"]


def test_a_declared_content_length_past_the_spools_free_space_is_refused_before_reading(
    make_stack: MakeStack,
    small_spool: Path,
) -> None:
    stack, pool_dir = stack_with_pool(make_stack)
    content = bytes(range(256)) * (10 * MiB // 256)

    response = call(
        stack,
        "PUT",
        upload_path("spooltest", "big.img"),
        data=content,  # sent with its Content-Length
        params={"sha256": hashlib.sha256(content).hexdigest()},
    )

    assert response.status_code == 507, response.text
    problem = response.json()
    assert problem["needed_bytes"] == len(content)  # the declared size, checked up front
    job = stack.api.job(problem["job"])
    assert job["params"]["content_length"] == len(content)
    assert list(small_spool.iterdir()) == []
    assert not (pool_dir / "big.img").exists()


def test_every_read_through_a_worker_counts_as_a_waiter() -> None:
    # Such a read holds its thread until the worker answers, as a long-poll does.
    import inspect

    from api import create_app
    from api.limits import UPLOAD_ENDPOINT, WORKER_READ_ENDPOINTS
    from orchestrator.settings import Settings

    app = create_app(Settings(redis_url="redis://127.0.0.1:1/0", database_url="sqlite://"))
    # A view reads through a worker by calling read_through_worker, or the blueprint's _read.
    calls = ("read_through_worker(", "_read(", "await_read(")
    waiting = {
        endpoint
        for endpoint, view in app.view_functions.items()
        if any(call in inspect.getsource(view) for call in calls)
    }
    waiting.discard(UPLOAD_ENDPOINT)  # held by the upload cap instead
    assert waiting and waiting <= WORKER_READ_ENDPOINTS, waiting - WORKER_READ_ENDPOINTS
