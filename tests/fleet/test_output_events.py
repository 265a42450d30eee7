"""Output lines of a fleet job become events on a thread of their own: a command's reader hands
a line over and goes on reading, whatever the event writes are doing (Redis frozen, retried)."""

from __future__ import annotations

import threading
import time
from typing import Any

from workers.fleet_jobs.output import OutputEvents


class HeldEmitter:
    """An emit callback that waits while ``held`` is clear, as event writes do while Redis is
    frozen; it records what it emitted."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.emitted: list[tuple[str | None, str, dict[str, Any]]] = []

    def __call__(self, host: str | None, message: str, data: dict[str, Any]) -> None:
        self.held.wait()
        self.emitted.append((host, message, data))


def test_lines_are_taken_at_once_while_emitting_waits_and_then_all_arrive_in_order() -> None:
    emitter = HeldEmitter()
    with OutputEvents(emitter, lines_per_event=10, flush_seconds=0.05) as out:

        def read_two_hosts() -> None:
            for number in range(200):  # 20 full batches each, every one waking the sender
                out.line("web-1", "stdout", str(number))
                out.line("web-2", "stdout", str(number))

        reader = threading.Thread(target=read_two_hosts, daemon=True)
        reader.start()
        reader.join(10)
        held_up = reader.is_alive()
        emitted_meanwhile = list(emitter.emitted)
        emitter.held.set()
        reader.join()

    assert not held_up, "a line waited on the held emitter"
    assert emitted_meanwhile == []
    for host in ("web-1", "web-2"):
        lines = [
            line
            for emitted_host, message, _ in emitter.emitted
            if emitted_host == host
            for line in message.split("\n")
        ]
        assert lines == [str(number) for number in range(200)]


def test_a_full_batch_is_sent_without_waiting_for_the_flush_interval() -> None:
    emitter = HeldEmitter()
    emitter.held.set()
    with OutputEvents(emitter, lines_per_event=3, flush_seconds=60) as out:
        for number in range(3):
            out.line("web-1", "stdout", str(number))
        deadline = time.monotonic() + 10
        while not emitter.emitted:
            assert time.monotonic() < deadline, "the full batch was never sent"
            time.sleep(0.01)
        out.line("web-1", "stdout", "partial")
        time.sleep(0.1)
        assert [message for _, message, _ in emitter.emitted] == ["0\n1\n2"]
    assert [message for _, message, _ in emitter.emitted] == ["0\n1\n2", "partial"]


def test_an_emit_that_fails_is_sent_again_by_the_next_flush() -> None:
    sent: list[str] = []
    failures = iter([RuntimeError("Redis away")])

    def flaky(host: str | None, message: str, data: dict[str, Any]) -> None:
        for failure in failures:
            raise failure
        sent.append(message)

    with OutputEvents(flaky, lines_per_event=2, flush_seconds=0.05) as out:
        out.line("web-1", "stdout", "a")
        out.line("web-1", "stdout", "b")
        out.line("web-1", "stdout", "c")
    assert sent == ["a\nb", "c"]
