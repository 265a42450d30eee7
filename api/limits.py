"""Limits at the API's edge, kept in Redis so they hold across API processes and machines.

- A rate limit per caller (``rate_limit``, counted as :mod:`api.rate_limit` says): a caller is
  a live bearer token, known by a hash of it (the token itself never reaches Redis), or the
  client address without one. The hooks run after authentication, so with tokens on only
  verified callers reach them.
- Long-polls, event streams and reads through a worker hold a connection (and, under gthread
  workers, a thread) while they wait: one caller holds at most ``max_waiters_per_token`` of
  them at once.
- Image uploads hold a connection, a Redis pipe and a worker's spool: at most
  ``max_concurrent_uploads`` at once, across every API process.

Each refusal is a problem document with ``Retry-After``. ``/v1/health`` and the OpenAPI document
are never limited. Every limit fails open: with Redis unreachable a request goes on unlimited,
since refusing everything would turn a Redis outage into a full API outage, and the routes that
need Redis answer its absence on their own.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from typing import IO, Any

import redis
from flask import Flask, Response, current_app, g, request

from api.auth import current_principal, tokens_on
from api.problems import problem_response
from api.rate_limit import RateLimiter
from orchestrator.errors import OrchestratorError
from orchestrator.jobs.content_pipe import START_TIMEOUT_SECONDS
from orchestrator.settings import Settings

log = logging.getLogger(__name__)

UNLIMITED_ENDPOINTS = frozenset({"health.health", "meta.openapi"})
# Requests that hold their thread while waiting: with ``?wait=`` > 0 (always, for the reads
# through a worker, whose wait has a default).
LONG_POLL_ENDPOINTS = frozenset({"jobs.show", "jobs.submit"})
WORKER_READ_ENDPOINTS = frozenset(
    {"storage.pools", "storage.pool_volumes", "storage.volumes", "domains.index", "domains.show"}
)
UPLOAD_ENDPOINT = "storage.upload_content"
# A job's events as Server-Sent Events: a waiter for as long as the stream is open.
STREAM_ENDPOINT = "jobs.events"

# How long a slot counts without news of its request: the longest wait a request may ask for,
# plus a margin. A process killed mid-request leaks its slot for no longer than this.
WAITER_HOLD_SECONDS = 300 + 60
# An upload's request reads its body with pauses of up to START_TIMEOUT_SECONDS (a busy worker),
# then waits up to 300 s for the import; every read of the body renews its slot.
UPLOAD_HOLD_SECONDS = START_TIMEOUT_SECONDS + 300 + 60
UPLOAD_RENEW_SECONDS = 30.0
UPLOAD_RETRY_AFTER_SECONDS = 30
WAITER_RETRY_AFTER_SECONDS = 5
_REDIS_TIMEOUT_SECONDS = 1


class LimitReached(OrchestratorError):
    """Raised when a request would go past a limit; ``retry_after`` says when to try again."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str | None, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, retry_after=retry_after, **extra)
        self.retry_after = retry_after


class RateLimited(LimitReached):
    """Raised when a caller sends more requests than the ``rate_limit`` setting allows."""


class TooManyWaiters(LimitReached):
    """Raised when a caller already holds ``max_waiters_per_token`` waiting requests open."""


class UploadsBusy(LimitReached):
    """Raised when ``max_concurrent_uploads`` images are already being sent to the API."""

    status = 503
    title = "Too many uploads at once"


def init_app(app: Flask, settings: Settings) -> None:
    """Rate limit, then admit waiters and uploads, on every request but the unlimited ones."""
    client = redis.Redis.from_url(
        settings.resolved_redis_url,
        socket_connect_timeout=_REDIS_TIMEOUT_SECONDS,
        socket_timeout=_REDIS_TIMEOUT_SECONDS,
    )
    slots = _SlotStore(client)
    app.extensions["limit_slots"] = slots
    admission = _Admission(settings, RateLimiter(client, settings.rate_limit), slots)
    app.before_request(admission.admit)
    app.teardown_request(admission.release)
    app.register_error_handler(LimitReached, _limit_reached)


def caller_key() -> str:
    """Whose requests count together: a live bearer token, by a hash of it; else the client
    address (a token that does not verify counts as none, so made-up tokens share one limit)."""
    principal = current_principal() if tokens_on() else None
    if principal is not None:
        token = request.headers["Authorization"].partition(" ")[2].strip()
        # Keyed apart from the SQL token digest, so Redis holds nothing to match against it.
        digest = hashlib.sha256(b"orchestrator caller key\0" + token.encode()).hexdigest()
        return f"token:{digest[:32]}"
    return f"address:{request.remote_addr or 'unknown'}"


def _limit_reached(exc: LimitReached) -> Response:
    response = problem_response(exc.to_problem())
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


class _SlotStore:
    """Bounded sets of slots in Redis: a sorted set per limit, one member per request holding
    a slot, scored by the time after which it no longer counts."""

    # Drop lapsed slots, then take one only when fewer than the capacity are held: atomic, so
    # concurrent requests on several API processes never overshoot.
    _ACQUIRE = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
    redis.call('EXPIRE', KEYS[1], ARGV[5])
    return 1
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._acquire = client.register_script(self._ACQUIRE)

    def acquire(self, key: str, member: str, capacity: int, hold: float) -> bool:
        now = time.time()
        args: list[str | float] = [now, now + hold, member, capacity, math.ceil(hold)]
        return bool(self._acquire(keys=[key], args=args))

    def renew(self, key: str, member: str, hold: float) -> None:
        self.client.zadd(key, {member: time.time() + hold}, xx=True)

    def release(self, key: str, member: str) -> None:
        self.client.zrem(key, member)


class _Admission:
    """Takes a waiter or upload slot before the view runs and gives it back after."""

    def __init__(self, settings: Settings, rate: RateLimiter, slots: _SlotStore) -> None:
        self.settings = settings
        self.rate = rate
        self.slots = slots

    def admit(self) -> None:
        endpoint = request.endpoint
        if endpoint in UNLIMITED_ENDPOINTS:
            return
        self._count_rate()
        if endpoint == UPLOAD_ENDPOINT:
            self._admit_upload()
        elif (
            endpoint in WORKER_READ_ENDPOINTS
            or (endpoint in LONG_POLL_ENDPOINTS and _asks_to_wait())
            or (endpoint == STREAM_ENDPOINT and _asks_to_stream())
        ):
            self._admit_waiter()

    def release(self, _exc: BaseException | None = None) -> None:
        held: tuple[str, str] | None = g.pop("limit_slot", None)
        if held is None:
            return
        try:
            self.slots.release(*held)
        except redis.RedisError as exc:  # the slot lapses on its own after its hold time
            log.warning("could not release limit slot %s: %s", held[0], exc)

    def _count_rate(self) -> None:
        caller = caller_key()
        over = self.rate.hit(caller)
        if over is None:
            return
        window, seconds_left = over
        retry_after = max(1, math.ceil(seconds_left))
        who = "token" if caller.startswith("token:") else "client address"
        raise RateLimited(
            f"more than {window.text} requests from this {who}; retry after {retry_after} s "
            "(setting rate_limit)",
            retry_after,
            limit=window.text,
        )

    def _admit_waiter(self) -> None:
        key = f"orch:waiters:{caller_key()}"
        capacity = self.settings.max_waiters_per_token
        if not self._take(key, capacity, WAITER_HOLD_SECONDS):
            raise TooManyWaiters(
                f"this caller already holds {capacity} waiting requests (long-polls and reads "
                "through a worker) open; wait for one to end (setting max_waiters_per_token)",
                WAITER_RETRY_AFTER_SECONDS,
                limit=capacity,
            )

    def _admit_upload(self) -> None:
        capacity = self.settings.max_concurrent_uploads
        if not self._take("orch:uploads", capacity, UPLOAD_HOLD_SECONDS):
            raise UploadsBusy(
                f"{capacity} uploads are already being sent to the API; retry later "
                "(setting max_concurrent_uploads)",
                UPLOAD_RETRY_AFTER_SECONDS,
                limit=capacity,
            )
        if "limit_slot" not in g:
            return  # let in unchecked, Redis unreachable: nothing to renew
        key, member = g.limit_slot
        request.environ["wsgi.input"] = _RenewingInput(
            request.environ["wsgi.input"],
            lambda: self.slots.renew(key, member, UPLOAD_HOLD_SECONDS),
        )

    def _take(self, key: str, capacity: int, hold: float) -> bool:
        member = uuid.uuid4().hex
        try:
            taken = self.slots.acquire(key, member, capacity, hold)
        except redis.RedisError as exc:
            log.warning("limit %s not checked, Redis unreachable: %s", key, exc)
            return True  # fail open, as the module docstring says
        if taken:
            g.limit_slot = (key, member)
        return taken


def renew_waiter_slot() -> None:
    """Keep the waiter slot of a request that is still open (a stream outlives the hold)."""
    held: tuple[str, str] | None = g.get("limit_slot")
    if held is None:
        return
    try:
        slots: _SlotStore = current_app.extensions["limit_slots"]
        slots.renew(*held, WAITER_HOLD_SECONDS)
    except redis.RedisError as exc:
        log.warning("could not renew limit slot %s: %s", held[0], exc)


def _asks_to_stream() -> bool:
    return "text/event-stream" in request.headers.get("Accept", "")


def _asks_to_wait() -> bool:
    try:
        return float(request.args.get("wait", "0")) > 0
    except ValueError:
        return False  # the view refuses the value itself


class _RenewingInput:
    """The request body's stream, renewing the upload's slot as the body is read (a long upload
    must not lose its slot, nor a killed process keep it)."""

    def __init__(self, stream: IO[bytes], renew: Callable[[], None]) -> None:
        self._stream = stream
        self._renew = renew
        self._renewed_at = time.monotonic()

    def read(self, size: int = -1) -> bytes:
        self._touch()
        return self._stream.read(size)

    def readline(self, size: int = -1) -> bytes:
        self._touch()
        return self._stream.readline(size)

    def _touch(self) -> None:
        if time.monotonic() - self._renewed_at < UPLOAD_RENEW_SECONDS:
            return
        self._renewed_at = time.monotonic()
        try:
            self._renew()
        except redis.RedisError as exc:
            log.warning("could not renew an upload slot: %s", exc)
