"""Job ids: UUIDv7 (RFC 9562), so ids sort in creation order and double as pagination cursors."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last = 0


def new_job_id() -> str:
    """A UUIDv7, strictly increasing within this process even inside one millisecond."""
    global _last
    millis = time.time_ns() // 1_000_000
    value = (millis & ((1 << 48) - 1)) << 80 | int.from_bytes(os.urandom(10), "big")
    with _lock:
        # Ids minted in the same millisecond count up from the previous one (RFC 9562 §6.2).
        value = max(value, _last + (1 << 64))
        _last = value
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))
