"""Job ids: UUIDv7 (RFC 9562), so ids sort in creation order and double as pagination cursors."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_millis = 0
_last_counter = 0


def new_job_id() -> str:
    """A UUIDv7, strictly increasing within this process even inside one millisecond.

    The 12-bit ``rand_a`` field is a counter within a millisecond (RFC 9562, section 6.2,
    method 1); it starts at a random value below 2048 so a burst has room to count up.
    """
    global _last_millis, _last_counter
    millis = time.time_ns() // 1_000_000
    with _lock:
        if millis <= _last_millis:
            millis, counter = _last_millis, _last_counter + 1
            if counter > 0xFFF:
                millis, counter = millis + 1, 0
        else:
            counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        _last_millis, _last_counter = millis, counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))
