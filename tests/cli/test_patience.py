"""How long the CLI retries: an outage may last --retry-for, the whole wait --timeout; an
answer in between starts the outage count afresh. On a clock the test moves."""

from __future__ import annotations

from itertools import pairwise

import pytest
import requests

from orchestrator.client import ApiError
from orchestrator.jobcli.outcomes import TimedOut, Unreachable
from orchestrator.jobcli.retrying import Patience, is_transient


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


REFUSED = requests.ConnectionError("[Errno 111] Connection refused")


def patience(clock: Clock, timeout: float | None, retry_for: float) -> Patience:
    return Patience(timeout, retry_for, clock=clock, sleep=clock.sleep)


def test_an_outage_longer_than_retry_for_is_unreachable_with_backoff_between_tries() -> None:
    clock = Clock()
    waits = patience(clock, None, 10)
    tries = []
    with pytest.raises(Unreachable, match="Connection refused"):
        while True:
            tries.append(clock.now)
            waits.failed(REFUSED)
    gaps = [b - a for a, b in pairwise(tries)]
    assert gaps[1] > gaps[0] and max(gaps) <= 5.0
    assert clock.now - tries[0] == pytest.approx(10)


def test_an_answer_starts_the_outage_count_afresh() -> None:
    clock = Clock()
    waits = patience(clock, None, 3)
    for _ in range(10):
        waits.failed(REFUSED)
        waits.failed(REFUSED)
        waits.answered()
    assert clock.now > 103  # far longer than one outage may last, in short outages


def test_the_deadline_ends_retries_as_a_timeout() -> None:
    clock = Clock()
    waits = patience(clock, 2, 60)
    with pytest.raises(TimedOut):
        while True:
            waits.failed(REFUSED)
    assert clock.now == pytest.approx(102)


def test_only_network_errors_and_gateway_answers_are_retried() -> None:
    assert is_transient(REFUSED)
    assert is_transient(ApiError({"status": 503, "title": "Service unavailable"}))
    assert not is_transient(ApiError({"status": 422, "title": "Invalid input"}))
    assert not is_transient(ApiError({"status": 500, "title": "Internal Server Error"}))
    assert not is_transient(KeyError("state"))
