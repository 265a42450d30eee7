"""Streams the executor's output lines as job events without flooding the event stream: lines
are batched per host and stream (one event per ``LINES_PER_EVENT`` lines, or sooner when a
ticker flushes every ``FLUSH_SECONDS``), and each host gets at most ``EVENTS_PER_HOST`` output
events. What goes past the cap is counted and said in one closing event per host; the job's
result still holds each host's output up to ``options.output_cap_bytes``. All hosts together
send at most ``job_cap_bytes`` of output (as stored, in JSON) in events, the job's
``options.job_output_cap_bytes``."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from orchestrator.fleet.output_caps import JOB_CAP_BYTES, OutputBudget, json_size

LINES_PER_EVENT = 50
BYTES_PER_EVENT = 16 * 1024
CHARS_PER_LINE = 4096
EVENTS_PER_HOST = 100
FLUSH_SECONDS = 0.5

log = logging.getLogger(__name__)

Emit = Callable[[str | None, str, dict[str, Any]], None]  # (host, message, data)


@dataclass
class _HostOutput:
    pending: dict[str, list[str]] = field(default_factory=dict)  # stream -> lines
    pending_bytes: int = 0
    events: int = 0
    dropped: int = 0


class OutputEvents:
    """Collects ``(host, stream, line)`` from executor threads into batches; a thread of its
    own emits them. Reading a host's output never waits on an emit: with Redis frozen, events
    retry for as long as it takes while the commands go on, and their lines wait here (at most
    ``events_per_host`` batches per host, within ``job_cap_bytes``)."""

    def __init__(
        self,
        emit: Emit,
        *,
        lines_per_event: int = LINES_PER_EVENT,
        events_per_host: int = EVENTS_PER_HOST,
        flush_seconds: float = FLUSH_SECONDS,
        job_cap_bytes: int = JOB_CAP_BYTES,
    ) -> None:
        self._emit = emit
        self._lines_per_event = lines_per_event
        self._events_per_host = events_per_host
        self._flush_seconds = flush_seconds
        self._job_budget = OutputBudget(job_cap_bytes)
        self._hosts: dict[str, _HostOutput] = {}
        self._ready: deque[tuple[str, str, dict[str, Any]]] = deque()  # sealed, in order
        self._lock = threading.Lock()  # buffers and the ready queue; never held while emitting
        self._sending = threading.Lock()  # one sender at a time keeps the ready order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="fleet-output", daemon=True)

    def __enter__(self) -> OutputEvents:
        self._ticker.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def line(self, host: str, stream: str, text: str) -> None:
        """The executor's ``on_output`` callback: buffers only, so it returns at once."""
        text = text if len(text) <= CHARS_PER_LINE else text[:CHARS_PER_LINE] + " [line cut]"
        with self._lock:
            state = self._hosts.setdefault(host, _HostOutput())
            if state.events >= self._events_per_host:
                state.dropped += 1
                return
            state.pending.setdefault(stream, []).append(text)
            state.pending_bytes += len(text) + 1
            full = len(state.pending[stream]) >= self._lines_per_event
            if full or state.pending_bytes >= BYTES_PER_EVENT:
                self._seal(host, state)
                self._wake.set()

    def flush(self) -> None:
        """Seal every pending batch and emit all that are sealed."""
        with self._lock:
            for host, state in self._hosts.items():
                self._seal(host, state)
        self._send_ready()

    def close(self) -> None:
        """Stop the ticker, emit what is pending and say which hosts went past the cap."""
        self._stop.set()
        self._wake.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self.flush()
        if self._job_budget.exhausted:
            self._emit(
                None,
                f"output events stopped at the job's cap of {self._job_budget.total} bytes "
                "(options.job_output_cap_bytes); the lines left out are counted per host",
                {"output_events_capped": True},
            )
        for host, state in self._hosts.items():
            if state.dropped:
                self._emit(
                    host,
                    f"{state.dropped} more output lines not sent as events (at most "
                    f"{self._events_per_host} output events per host); the job result keeps "
                    "the output up to options.output_cap_bytes",
                    {"output_lines_dropped": state.dropped},
                )

    def _seal(self, host: str, state: _HostOutput) -> None:
        """Move the host's pending lines into the ready queue (the lock is held)."""
        for stream, lines in state.pending.items():
            message = "\n".join(lines)
            if lines and state.events < self._events_per_host and self._fits(message):
                state.events += 1
                self._ready.append((host, message, {"stream": stream, "lines": len(lines)}))
            elif lines:
                state.dropped += len(lines)
        state.pending = {}
        state.pending_bytes = 0

    def _send_ready(self) -> None:
        # An event leaves the queue once emitted: if the emit fails, the next flush sends it.
        with self._sending:
            while True:
                with self._lock:
                    if not self._ready:
                        return
                    host, message, data = self._ready[0]
                self._emit(host, message, data)
                with self._lock:
                    self._ready.popleft()

    def _fits(self, message: str) -> bool:
        """Whether the job's events may still carry ``message`` (claimed if so)."""
        size = json_size(message)
        granted = self._job_budget.claim(size)
        if granted < size:
            self._job_budget.claim(self._job_budget.total)  # nothing later, however short
            return False
        return True

    def _tick(self) -> None:
        # Full batches go at once; partial ones every flush_seconds.
        next_flush = time.monotonic() + self._flush_seconds
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_flush - time.monotonic()))
            self._wake.clear()
            try:
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self._flush_seconds
                    self.flush()
                else:
                    self._send_ready()
            except Exception:  # Redis may blip; the next tick or close() sends the lines
                log.exception("could not emit fleet output events")
