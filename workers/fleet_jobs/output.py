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
    """Collects ``(host, stream, line)`` from executor threads; emits batched events."""

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
        # One lock for buffers and emitting keeps each host's events in output order.
        self._lock = threading.Lock()
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
        """The executor's ``on_output`` callback."""
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
                self._flush_host(host, state)

    def flush(self) -> None:
        """Emit every pending batch now."""
        with self._lock:
            for host, state in self._hosts.items():
                self._flush_host(host, state)

    def close(self) -> None:
        """Stop the ticker, emit what is pending and say which hosts went past the cap."""
        self._stop.set()
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

    def _flush_host(self, host: str, state: _HostOutput) -> None:
        for stream, lines in state.pending.items():
            message = "\n".join(lines)
            if lines and state.events < self._events_per_host and self._fits(message):
                state.events += 1
                self._emit(host, message, {"stream": stream, "lines": len(lines)})
            elif lines:
                state.dropped += len(lines)
        state.pending = {}
        state.pending_bytes = 0

    def _fits(self, message: str) -> bool:
        """Whether the job's events may still carry ``message`` (claimed if so)."""
        size = json_size(message)
        granted = self._job_budget.claim(size)
        if granted < size:
            self._job_budget.claim(self._job_budget.total)  # nothing later, however short
            return False
        return True

    def _tick(self) -> None:
        while not self._stop.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:  # Redis may blip; the next tick or close() sends the lines
                log.exception("could not emit fleet output events")
