"""Writes to Redis that outlast a blip: a job's events and outcome are retried with backoff
instead of lost, so a Redis that stalls or restarts under a running job delays its report but
does not strand it.

A retried script whose first call ran but whose reply was lost is harmless: a state change is
refused the second time (the transition already happened) and an event may appear twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a Redis that stalls, restarts or loads its data answers; anything else is a bug to raise.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
FIRST_PAUSE_SECONDS = 0.2
MAX_PAUSE_SECONDS = 5.0


def retrying(write: Callable[[], T], what: str, give_up_after: float) -> T:
    """``write()``, tried again with doubling pauses while Redis is unreachable, for up to
    ``give_up_after`` seconds; then the last error is raised."""
    deadline = time.monotonic() + give_up_after
    pause = FIRST_PAUSE_SECONDS
    while True:
        try:
            return write()
        except TRANSIENT as exc:
            if time.monotonic() + pause > deadline:
                log.error(
                    "%s: Redis unreachable for %.0fs, giving up: %s", what, give_up_after, exc
                )
                raise
            log.warning("%s: Redis unreachable, retrying in %.1fs: %s", what, pause, exc)
            time.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
