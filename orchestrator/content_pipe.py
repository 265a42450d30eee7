"""File content sent through the API to a hypervisor's worker, in chunks through Redis.

The API may run on another machine than the worker, and workers talk to the rest of the system
through Redis only, so an uploaded image travels as a bounded Redis list per job: the API pushes
chunks of at most ``CHUNK_BYTES`` and waits while ``WINDOW`` chunks are unread (so Redis holds
at most a few MiB per upload, whatever the file size); the worker pops them in order. An empty
chunk ends the content. The list expires when a side goes away.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import redis

# redis-py types replies as "value or awaitable" (one stub for sync and async clients); these
# clients are synchronous, so replies are used as plain values.
Client = Any

CHUNK_BYTES = 1024 * 1024
WINDOW = 8
IDLE_TIMEOUT_SECONDS = 60
_END = b""
_FIRST_PAUSE_SECONDS = 0.002
_LAST_PAUSE_SECONDS = 0.1


def pipe_key(job_id: str) -> str:
    return f"orch:content:{job_id}"


class ContentStopped(Exception):
    """The other side is gone: the job ended, or no chunk came within the idle timeout."""


def binary_client(redis_url: str) -> Client:
    """A Redis client that leaves bytes as bytes (the job-state client decodes to str)."""
    return redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=30)


def send_content(
    client: Client,
    job_id: str,
    chunks: Iterable[bytes],
    receiver_gone: Callable[[], bool],
) -> int:
    """Push every chunk, then the end mark; returns the bytes sent.

    Raises ContentStopped as soon as ``receiver_gone()`` says the job no longer reads.
    """
    key = pipe_key(job_id)
    sent = 0
    for chunk in _with_end(_split(chunks)):
        pause = _FIRST_PAUSE_SECONDS
        while client.llen(key) >= WINDOW:
            if receiver_gone():
                raise ContentStopped(f"job {job_id} stopped reading after {sent} bytes")
            # A worker still busy with other jobs may take a while to start reading.
            time.sleep(pause)
            pause = min(pause * 2, _LAST_PAUSE_SECONDS)
        pipe = client.pipeline(transaction=False)
        pipe.rpush(key, chunk)
        pipe.expire(key, IDLE_TIMEOUT_SECONDS * 2)
        pipe.execute()
        sent += len(chunk)
    return sent


def receive_content(
    client: Client, job_id: str, idle_timeout: float = IDLE_TIMEOUT_SECONDS
) -> Iterator[bytes]:
    """The chunks in order until the end mark; ContentStopped when none comes in time."""
    key = pipe_key(job_id)
    try:
        while True:
            popped = client.blpop([key], timeout=idle_timeout)
            if popped is None:
                raise ContentStopped(
                    f"no content arrived for {idle_timeout:g} seconds; send it with "
                    "PUT /v1/hypervisors/<name>/pools/<pool>/volumes/<volume>/content"
                )
            chunk = popped[1]
            if chunk == _END:
                return
            yield chunk
    finally:
        client.delete(key)


def _with_end(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from chunks
    yield _END


def _split(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        for start in range(0, len(chunk), CHUNK_BYTES):
            piece = chunk[start : start + CHUNK_BYTES]
            if piece:
                yield piece
