"""Waiting for jobs to finish: one Redis subscription per process wakes every waiting thread.

A subscription per waiting request would cost a connection and two round trips each; CI
clients that POST and wait make that the common case.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis

from orchestrator.jobs.livestate import LiveState

log = logging.getLogger(__name__)

_DONE_PATTERN = "orch:done:*"
_DONE_PREFIX = "orch:done:"


class CompletionWaiter:
    """Blocks callers until a job is terminal, woken by the finish scripts' PUBLISH."""

    def __init__(self, live: LiveState) -> None:
        self.live = live
        self._waiting: dict[str, list[threading.Event]] = {}
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None

    def wait(self, job_id: str, timeout: float) -> dict[str, Any] | None:
        """The job's live state once terminal, or as it is when ``timeout`` runs out."""
        self._ensure_listener()
        woken = threading.Event()
        with self._lock:
            self._waiting.setdefault(job_id, []).append(woken)
        deadline = time.monotonic() + timeout
        try:
            while True:
                # Read after registering, so no finish slips by; only the state field while
                # waiting, the whole job once at the end.
                state = self.live.state(job_id)
                left = deadline - time.monotonic()
                if state is None or state.is_terminal or left <= 0:
                    return self.live.job(job_id)
                # Re-read at least every second, in case the subscription was down.
                woken.wait(min(left, 1.0))
                woken.clear()
        finally:
            with self._lock:
                events = self._waiting.get(job_id, [])
                events.remove(woken)
                if not events:
                    self._waiting.pop(job_id, None)

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(
                    target=self._listen, name="job-completion", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        while True:
            try:
                pubsub = self.live.redis.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(_DONE_PATTERN)
                for message in pubsub.listen():
                    if message["type"] == "pmessage":
                        self._wake(message["channel"][len(_DONE_PREFIX) :])
            except redis.RedisError as exc:
                log.warning("job completion subscription lost, retrying: %s", exc)
                time.sleep(1.0)

    def _wake(self, job_id: str) -> None:
        with self._lock:
            for event in self._waiting.get(job_id, []):
                event.set()
