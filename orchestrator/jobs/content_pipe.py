"""File content sent through the API to a hypervisor's worker, in chunks through Redis.

The API may run on another machine than the worker, and workers talk to the rest of the system
through Redis only, so an uploaded image travels as a bounded Redis list per job: the API pushes
chunks of at most ``CHUNK_BYTES`` and waits while ``WINDOW`` chunks are unread (so Redis holds
at most a few MiB per upload, whatever the file size); the worker pops them in order.

Each item carries a one-byte tag: ``D`` + data, ``E`` for the end, ``A`` when the sender gave
up (the client went away, the body was too large), so the worker stops at once instead of
waiting out its idle timeout. The list's expiry is renewed while the sender waits for a worker
still busy with other jobs, and the sender stops waiting after ``START_TIMEOUT_SECONDS``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

# redis-py types replies as "value or awaitable" (one stub for sync and async clients); these
# clients are synchronous, so replies are used as plain values.
Client = Any

CHUNK_BYTES = 1024 * 1024
WINDOW = 8
IDLE_TIMEOUT_SECONDS = 60.0
START_TIMEOUT_SECONDS = 600.0  # how long the sender waits for a busy worker to start reading
_KEY_TTL_SECONDS = int(IDLE_TIMEOUT_SECONDS * 2)
_DATA, _END, _ABORT = b"D", b"E", b"A"
_FIRST_PAUSE_SECONDS = 0.002
_LAST_PAUSE_SECONDS = 0.1


def pipe_key(job_id: str) -> str:
    return f"orch:content:{job_id}"


class ContentStopped(Exception):
    """The other side is gone: the job ended, no chunk came in time, or the sender gave up."""


def binary_client(redis_url: str) -> Client:
    """A Redis client that leaves bytes as bytes (the job-state client decodes to str); its
    socket timeout outlasts a blocking pop's idle timeout."""
    return redis.Redis.from_url(
        redis_url, socket_connect_timeout=2, socket_timeout=IDLE_TIMEOUT_SECONDS + 15
    )


def send_content(
    client: Client,
    job_id: str,
    chunks: Iterable[bytes],
    receiver_gone: Callable[[], bool],
    start_timeout: float = START_TIMEOUT_SECONDS,
) -> int:
    """Push every chunk, then the end mark; returns the bytes sent.

    Raises ContentStopped as soon as ``receiver_gone()`` says the job no longer reads, or when
    nothing was read for ``start_timeout`` seconds. When reading ``chunks`` fails (the client
    went away), the abort mark tells the receiver and the error propagates.
    """
    key = pipe_key(job_id)
    sent = 0
    try:
        for chunk in _split(chunks):
            _wait_for_room(client, key, job_id, receiver_gone, start_timeout, sent)
            _push(client, key, _DATA + chunk)
            sent += len(chunk)
        _wait_for_room(client, key, job_id, receiver_gone, start_timeout, sent)
        _push(client, key, _END)
    except Exception:
        with contextlib.suppress(redis.RedisError):
            _push(client, key, _ABORT)
        raise
    return sent


def receive_content(
    client: Client, job_id: str, idle_timeout: float = IDLE_TIMEOUT_SECONDS
) -> Iterator[bytes]:
    """The chunks in order until the end mark; ContentStopped when none comes in time or the
    sender gave up."""
    key = pipe_key(job_id)
    try:
        while True:
            popped = client.blpop([key], timeout=idle_timeout)
            if popped is None:
                raise ContentStopped(
                    f"no content arrived for {idle_timeout:g} seconds; send it with "
                    "PUT /v1/hypervisors/<name>/pools/<pool>/volumes/<volume>/content"
                )
            item = popped[1]
            if item[:1] == _END:
                return
            if item[:1] == _ABORT:
                raise ContentStopped("the sender stopped before the end of the content")
            yield item[1:]
    finally:
        client.delete(key)


def _wait_for_room(
    client: Client,
    key: str,
    job_id: str,
    receiver_gone: Callable[[], bool],
    start_timeout: float,
    sent: int,
) -> None:
    pause = _FIRST_PAUSE_SECONDS
    deadline = time.monotonic() + start_timeout
    while client.llen(key) >= WINDOW:
        if receiver_gone():
            raise ContentStopped(f"job {job_id} stopped reading after {sent} bytes")
        if time.monotonic() > deadline:
            raise ContentStopped(
                f"job {job_id} read nothing for {start_timeout:g} seconds; its worker may be "
                "busy or gone"
            )
        # Unread chunks must outlive the wait for a worker still busy with other jobs.
        client.expire(key, _KEY_TTL_SECONDS)
        time.sleep(pause)
        pause = min(pause * 2, _LAST_PAUSE_SECONDS)


def _push(client: Client, key: str, item: bytes) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.rpush(key, item)
    pipe.expire(key, _KEY_TTL_SECONDS)
    pipe.execute()


def _split(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        for start in range(0, len(chunk), CHUNK_BYTES):
            piece = chunk[start : start + CHUNK_BYTES]
            if piece:
                yield piece
