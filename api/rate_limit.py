"""A fixed-window rate limit per caller, counted in Redis across API processes, at a cost per
request of a dictionary lookup rather than a Redis round trip.

Each process leases a share of a caller's window from Redis in one round trip (``INCRBY`` of
the window's counter, which expires with the window) and spends it locally; a caller whose
window is spent is refused locally until the window ends. A lease is 1/``LEASE_DIVISOR`` of
the limit, so with a limit of 50 or less every request is counted in Redis as it comes. The
price of leasing: tokens one process leased and did not spend are lost to the others until the
window ends, so a caller spread over N processes may be refused up to (N - 1) leases early
(6% of the limit with four processes). A fixed window lets a caller send up to twice the limit
across a window's edge; both are fine for a guard against floods, not a billing meter.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from limits import parse_many

log = logging.getLogger(__name__)

LEASE_DIVISOR = 50
# Redis unreachable: every caller is let through for this long before Redis is tried again,
# so an outage costs no connection attempt per request (the limit fails open).
FAIL_OPEN_SECONDS = 1.0
_PRUNE_ABOVE = 4096
# How long a request waits for another's lease before it tries to lease itself (a lease is one
# round trip; this only bounds a stuck one).
LEASE_WAIT_SECONDS = 2.0

# The caller's window counter grows by the lease; the first lease of a window starts its clock.
# Returns how many of the lease fall within the limit, and the milliseconds the window has left.
_LEASE = """
local lease = tonumber(ARGV[1])
local count = redis.call('INCRBY', KEYS[1], lease)
if count == lease then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
local left_ms = redis.call('PTTL', KEYS[1])
if left_ms < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    left_ms = tonumber(ARGV[3])
end
local granted = math.min(lease, math.max(0, tonumber(ARGV[2]) - (count - lease)))
return {granted, left_ms}
"""


@dataclass(frozen=True)
class Window:
    """One limit of the ``rate_limit`` setting: ``amount`` requests per ``seconds``."""

    amount: int
    seconds: int
    text: str

    @property
    def lease(self) -> int:
        return max(1, self.amount // LEASE_DIVISOR)


@dataclass
class _Lease:
    left: int  # requests this process may still let in without asking Redis
    until: float  # time.monotonic() at which the window ends
    closed: bool  # Redis had nothing left in the window: refuse until it ends


class RateLimiter:
    """Callers' requests counted against every window of a ``rate_limit`` such as
    ``1200/minute`` or ``10/second;1000/hour`` (the notation of the ``limits`` library)."""

    def __init__(self, client: redis.Redis, rate_limit: str, prefix: str = "orch:rate") -> None:
        self.windows = [
            Window(item.amount, item.get_expiry(), str(item)) for item in parse_many(rate_limit)
        ]
        self.prefix = prefix
        self._lease_script = client.register_script(_LEASE)
        self._leases: dict[tuple[str, Window], _Lease] = {}
        self._leasing: dict[tuple[str, Window], threading.Event] = {}
        self._lock = threading.Lock()
        self._warned_at = -math.inf

    def hit(self, caller: str) -> tuple[Window, float] | None:
        """Count one request of ``caller``; None when it may go on, else the window it would
        exceed and the seconds until that window ends."""
        for window in self.windows:
            wait = self._spend(caller, window)
            if wait is not None:
                return window, wait
        return None

    def _spend(self, caller: str, window: Window) -> float | None:
        key = (caller, window)
        while True:
            now = time.monotonic()
            with self._lock:
                lease = self._leases.get(key)
                if lease is not None and now < lease.until:
                    if lease.closed:
                        return lease.until - now
                    if lease.left > 0:
                        lease.left -= 1
                        return None
                # One request leases for the caller and window at a time; the others that
                # came meanwhile wait for its lease and spend from it. Leasing each on its
                # own, many at once would overshoot the limit together and refuse the caller.
                leasing = self._leasing.get(key)
                if leasing is None:
                    leasing = self._leasing[key] = threading.Event()
                    break
            leasing.wait(LEASE_WAIT_SECONDS)
        try:
            granted, seconds_left = self._lease(caller, window)
            with self._lock:
                if len(self._leases) > _PRUNE_ABOVE:
                    self._prune(now)
                lease = _Lease(max(0, granted - 1), now + seconds_left, closed=not granted)
                self._leases[key] = lease
        finally:
            with self._lock:
                self._leasing.pop(key).set()
        return None if granted else seconds_left

    def _lease(self, caller: str, window: Window) -> tuple[int, float]:
        key = f"{self.prefix}:{caller}:{window.amount}/{window.seconds}s"
        args = [window.lease, window.amount, window.seconds * 1000]
        try:
            reply: Any = self._lease_script(keys=[key], args=args)
        except redis.RedisError as exc:
            self._warn(exc)
            return sys.maxsize, FAIL_OPEN_SECONDS
        granted, left_ms = int(reply[0]), int(reply[1])
        return granted, left_ms / 1000

    def _prune(self, now: float) -> None:
        for key in [key for key, lease in self._leases.items() if lease.until <= now]:
            del self._leases[key]

    def _warn(self, exc: redis.RedisError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("rate limit not counted, Redis unreachable (letting requests in): %s", exc)
