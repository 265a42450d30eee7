"""``GET /v1/jobs/<id>/events`` as Server-Sent Events: each job event as it is reported, with its
sequence number as the event id, then an ``end`` event carrying the job's document.

A client that lost the connection sends ``Last-Event-ID`` (or ``?after=``) and gets the events
after it, none lost and none repeated: the job's Redis stream is addressed by sequence number.
Once Redis has forgotten the job (a day after it ended), SQL answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Response, request, stream_with_context

from api.limits import renew_waiter_slot
from api.services import services
from orchestrator.errors import InvalidInput
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.events import Event
from orchestrator.jobs.lifecycle import JobState

MIMETYPE = "text/event-stream"
# Below the Redis client's socket timeout: a blocking read must return before it.
BLOCK_MS = 5000
KEEP_ALIVE_SECONDS = 15.0
# A stream ends after this long even if its job has not; the client resumes with Last-Event-ID.
MAX_STREAM_SECONDS = 3600.0
SQL_POLL_SECONDS = 1.0
BATCH = 1000


def wants_stream() -> bool:
    return MIMETYPE in request.headers.get("Accept", "")


def resume_point(default: int) -> int:
    """Where a stream starts: after ``Last-Event-ID`` if sent, else ``?after=``."""
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise InvalidInput.of("Last-Event-ID", "must be an event id this stream sent (a seq)")
    return value


def event_stream(job_id: str, after: int, document: Callable[[], dict[str, Any]]) -> Response:
    """The response streaming ``job_id``'s events after ``after``; ``document`` reads the job's
    document for the final event."""
    frames = stream_with_context(_frames(job_id, after, document))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(frames, mimetype=MIMETYPE, headers=headers)


def _frames(job_id: str, after: int, document: Callable[[], dict[str, Any]]) -> Iterator[str]:
    started = last_write = time.monotonic()
    yield "retry: 2000\n\n"
    while time.monotonic() - started < MAX_STREAM_SECONDS:
        ended, batch = _read(job_id, after)
        for event in batch:
            after = event["seq"]
            yield _frame(event, after)
        if batch:
            last_write = time.monotonic()
            continue
        if ended:
            yield f"event: end\ndata: {json.dumps(document(), default=str)}\n\n"
            return
        _wait(job_id, after)
        if time.monotonic() - last_write >= KEEP_ALIVE_SECONDS:
            renew_waiter_slot()
            last_write = time.monotonic()
            yield ": keep-alive\n\n"


def _read(job_id: str, after: int) -> tuple[bool, list[dict[str, Any]]]:
    """(the job had ended before these events were read, the events after ``after``).

    The state is read first: a job's last event is written in the same script that ends it,
    so an ended job with nothing after ``after`` has nothing more to send."""
    live = services().live
    try:
        state = live.state(job_id)
        events = live.events(job_id, after, BATCH)
    except redis.RedisError:
        state, events = None, None
    if events is not None and state is not None:
        return state.is_terminal, [event.document() for event in events]
    with services().sessions() as session:
        job = jobstore.get_job(session, job_id)
        rows = jobstore.list_events(session, job_id, after, BATCH)
        return JobState(job.state).is_terminal, [Event.from_row(r).document() for r in rows]


def _wait(job_id: str, after: int) -> None:
    live = services().live
    try:
        if live.state(job_id) is not None:
            live.wait_for_events(job_id, after, BLOCK_MS)
            return
    except redis.RedisError:
        pass
    time.sleep(SQL_POLL_SECONDS)  # Redis away, or it forgot the job: SQL answers, polled


def _frame(event: dict[str, Any], seq: int) -> str:
    return f"id: {seq}\nevent: job-event\ndata: {json.dumps(event, default=str)}\n\n"
