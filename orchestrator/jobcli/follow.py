"""Following one job's events to its end over a network that may drop: Server-Sent Events when
the API streams them, polling the JSON view when it answers JSON. Every event is handed on once,
in order, however often the connection is made again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from orchestrator.client import ApiClient
from orchestrator.jobcli.retrying import Patience, is_transient
from orchestrator.jobcli.sse import EventStreamParser
from orchestrator.jobs.lifecycle import JobState

EventSink = Callable[[dict[str, Any]], None]

POLL_SECONDS = 0.5
READ_CHUNK = 64 * 1024
# Seconds to connect, and between bytes read: above the stream's keep-alive interval.
READ_TIMEOUT = 30.0
QUIET_CLOSE_SECONDS = 1.0


class StreamClosed(ConnectionError):
    """Raised when the event stream ended before its ``end`` event."""


class JobFollower:
    """Hands each event of ``job_id`` after ``after`` to ``on_event``, then returns the job's
    final document. ``last_seq`` is the last event handed on: where a new connection resumes."""

    def __init__(
        self,
        client: ApiClient,
        job_id: str,
        patience: Patience,
        on_event: EventSink,
        after: int = 0,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.patience = patience
        self.on_event = on_event
        self.last_seq = after
        self.streaming = True  # until the server answers JSON: then it has no stream

    def follow(self) -> dict[str, Any]:
        while True:
            self.patience.check_deadline()
            self.client.timeout = self.patience.bounded(READ_TIMEOUT)
            try:
                document = self._stream() if self.streaming else self._poll()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.patience.failed(exc)
                continue
            if document is not None:
                return document

    def _stream(self) -> dict[str, Any] | None:
        """One connection: the job's document if it saw the stream's end, else None to go on
        (polling, if the server answered JSON)."""
        opened, resumed_after = time.monotonic(), self.last_seq
        with self.client.open_event_stream(self.job_id, self.last_seq) as response:
            self.patience.answered()
            if not _is_event_stream(response):
                self.streaming = False
                self._hand_on(response.json()["items"])
                return None
            parser = EventStreamParser()
            for chunk in _chunks(response):
                for event in parser.feed(chunk):
                    if event.event == "job-event":
                        self._hand_on([json.loads(event.data)])
                    elif event.event == "end":
                        document: dict[str, Any] = json.loads(event.data)
                        return document
                self.patience.check_deadline()
        # The server ends a long stream on purpose (the client resumes); one that ends at
        # once, having sent nothing, is a failure to back off from.
        if self.last_seq > resumed_after or time.monotonic() - opened >= QUIET_CLOSE_SECONDS:
            return None
        raise StreamClosed(f"the event stream closed after event {self.last_seq}")

    def _poll(self) -> dict[str, Any] | None:
        """One round of the JSON view: the job's document once it ended and every event was
        handed on, else None after a pause."""
        if self._page():
            return None  # events came: more may be waiting already
        job = self.client.job(self.job_id)
        self.patience.answered()
        if JobState(job["state"]).is_terminal:
            # The ending event is written with the state: what it saw is all there is.
            while self._page():
                pass
            return job
        self.patience.pause(POLL_SECONDS)
        return None

    def _page(self) -> bool:
        """Hand on the next page of events; True when it held any (more may follow)."""
        page = self.client.events_page(self.job_id, self.last_seq)
        self.patience.answered()
        self._hand_on(page["items"])
        return bool(page["items"])

    def _hand_on(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["seq"] > self.last_seq:
                self.on_event(event)
                self.last_seq = event["seq"]


def _is_event_stream(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").startswith("text/event-stream")


def _chunks(response: requests.Response) -> Iterator[bytes]:
    """The body as it arrives. ``read1`` returns whatever the socket has, where
    ``iter_content`` could hold an event back until a whole chunk is filled."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:
        yield from response.iter_content(chunk_size=None)
        return
    while chunk := read1(READ_CHUNK, decode_content=True):
        yield chunk
