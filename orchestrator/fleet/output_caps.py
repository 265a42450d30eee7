"""How much command output a fleet job keeps: each stream of each host up to
``options.output_cap_bytes`` as the command wrote it, and the whole job up to
``options.job_output_cap_bytes``, shared by the threads that run its hosts. A job's result
and events are stored in Redis and SQL, so the job's share is counted as stored: in JSON, where
a control character or a non-ASCII byte may take six bytes."""

from __future__ import annotations

import json
import threading

STREAM_CAP_BYTES = 1024 * 1024
JOB_CAP_BYTES = 64 * 1024 * 1024


class OutputBudget:
    """Bytes a whole job may still keep; each thread claims its share as output arrives."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._left = total
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self.total - self._left

    @property
    def exhausted(self) -> bool:
        return self._left <= 0

    def claim(self, wanted: int) -> int:
        """Up to ``wanted`` bytes, fewer (down to 0) once the job has kept its total."""
        with self._lock:
            granted = max(0, min(wanted, self._left))
            self._left -= granted
            return granted

    def give_back(self, unused: int) -> None:
        with self._lock:
            self._left += unused

    def fit(self, text: str) -> tuple[str, int]:
        """``text``, cut so that its JSON form fits what the job may still keep, and the
        bytes (UTF-8) cut off."""
        size = json_size(text)
        granted = self.claim(size)
        if granted == size:
            return text, 0
        kept = _prefix_within(text, granted)
        self.give_back(granted - json_size(kept))
        return kept, len(text[len(kept) :].encode("utf-8", "replace"))


def json_size(text: str) -> int:
    """Bytes ``text`` takes in a JSON document (ASCII-escaped, as the job stores it)."""
    return len(json.dumps(text)) - 2


def _prefix_within(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose JSON form takes at most ``limit`` bytes."""
    low, high = 0, min(len(text), limit)  # every character takes at least one byte
    while low < high:
        middle = (low + high + 1) // 2
        if json_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]
