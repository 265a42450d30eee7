"""How long the job commands keep trying: an overall deadline (``--timeout``) and how long the
API may stay unreachable (``--retry-for``), with exponential backoff between attempts."""

from __future__ import annotations

import http.client
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

import requests
import urllib3

from orchestrator.client import ApiError
from orchestrator.jobcli.outcomes import TimedOut, Unreachable

T = TypeVar("T")

# What a dropped connection, a refused one or a cut response raises, whichever layer notices
# (a body cut where no length was announced ends early, so it reads as JSON that does not parse).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.exceptions.JSONDecodeError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)
# Answers of a proxy or an API that is restarting or has lost a backing service: worth a retry.
TRANSIENT_STATUSES = frozenset({502, 503, 504})
FIRST_DELAY = 0.25
MAX_DELAY = 5.0

Notify = Callable[[str], None]


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` may go away by itself, so the same request is worth sending again."""
    if isinstance(error, ApiError):
        return error.status in TRANSIENT_STATUSES
    return isinstance(error, NETWORK_ERRORS)


class Patience:
    """The deadline of a whole command and the backoff of one outage at a time.

    ``timeout`` None waits for the job as long as it takes. An outage is a run of failed
    attempts with no answer between them; it may last ``retry_for`` seconds, then the API
    counts as unreachable.
    """

    def __init__(
        self,
        timeout: float | None,
        retry_for: float,
        notify: Notify = lambda _: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = timeout
        self.retry_for = retry_for
        self.notify = notify
        self._clock = clock
        self._sleep = sleep
        self.deadline = None if timeout is None else clock() + timeout
        self._outage_since: float | None = None
        self._failures = 0

    def left(self) -> float | None:
        """Seconds until the deadline (never below 0), or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - self._clock())

    def bounded(self, seconds: float) -> float:
        """``seconds``, or less when the deadline comes sooner (a socket wait must end by it)."""
        left = self.left()
        return seconds if left is None else max(0.05, min(seconds, left))

    def check_deadline(self) -> None:
        if self.deadline is not None and self._clock() >= self.deadline:
            raise TimedOut(f"gave up waiting after {self.timeout:g} s (--timeout)")

    def answered(self) -> None:
        """The API answered: an outage, if any, is over."""
        if self._outage_since is not None:
            self.notify("the API answers again")
        self._outage_since = None
        self._failures = 0

    def failed(self, error: BaseException) -> None:
        """Wait before the next attempt after ``error``; raise once the outage or the whole
        command has lasted too long."""
        now = self._clock()
        self.check_deadline()
        if self._outage_since is None:
            self._outage_since = now
        outage_left = self._outage_since + self.retry_for - now
        if outage_left <= 0:
            lasted = now - self._outage_since
            raise Unreachable(f"{describe(error)}, for {lasted:.1f} s (--retry-for)")
        # Jitter keeps many CI jobs cut off by the same outage from coming back in step.
        delay = min(MAX_DELAY, FIRST_DELAY * 2**self._failures) * random.uniform(0.8, 1.0)
        delay = min(delay, outage_left)
        left = self.left()
        if left is not None:
            delay = min(delay, left)
        self._failures += 1
        self.notify(f"{describe(error)}; trying again in {delay:.1f} s")
        self._sleep(delay)
        self.check_deadline()

    def pause(self, seconds: float) -> None:
        """Sleep between polls, never past the deadline."""
        left = self.left()
        self._sleep(seconds if left is None else min(seconds, left))

    def call(self, request: Callable[[], T]) -> T:
        """``request()``, sent again after each transient failure."""
        while True:
            try:
                result = request()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.failed(exc)
                continue
            self.answered()
            return result


def describe(error: BaseException) -> str:
    """One line saying what went wrong, without a traceback."""
    if isinstance(error, ApiError):
        problem = error.problem
        return f"the API answered {error.status}: {problem.get('detail') or problem.get('title')}"
    text = str(error)
    # requests nests urllib3's error in its own: the socket's errno line, or the first words of
    # urllib3's ("Connection broken: ..."), say it plainly.
    said = re.search(r"\[Errno -?\d+\] [^'\")]+", text) or re.match(r"\('([^']+)'", text)
    reason = said.group(1 if said.re.groups else 0) if said else _first_line(text)
    return f"network error ({type(error).__name__}: {reason})"


def _first_line(text: str) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= 200 else line[:200] + "..."
