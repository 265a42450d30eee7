"""Keeps the local stack's services running: one that dies is started again, with backoff,
and every death and restart is reported to the operator."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator.local.processes import ServiceProcess

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# A service up this long was running well: its next death starts the backoff from the first delay.
STEADY_AFTER = 60.0


def restart_delay(quick_deaths: int) -> float:
    """Seconds to wait before a restart that follows ``quick_deaths`` earlier quick deaths.
    Never infinite: a service that keeps dying is retried every MAX_DELAY seconds, so an
    operator who fixes the cause does not have to restart the whole stack."""
    return min(MAX_DELAY, FIRST_DELAY * 2 ** min(quick_deaths, 16))


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class Watched:
    service: ServiceProcess
    started_at: float
    quick_deaths: int = 0
    restart_at: float | None = None  # set while the service is dead and waiting for its restart


class Supervisor:
    """Polls the services' exit status; ``report`` receives one line per death and restart."""

    def __init__(
        self,
        services: Sequence[ServiceProcess],
        report: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report = report
        self.clock = clock
        self.watched = [Watched(service, clock()) for service in services]

    def run(self, stop: threading.Event, interval: float = 0.5) -> None:
        """Check every ``interval`` seconds until ``stop`` is set."""
        while not stop.wait(interval):
            self.check()

    def check(self) -> None:
        now = self.clock()
        for watched in self.watched:
            if watched.restart_at is None:
                if not watched.service.alive():
                    self._died(watched, now)
            elif now >= watched.restart_at:
                self._restart(watched, now)

    def _died(self, watched: Watched, now: float) -> None:
        service = watched.service
        assert service.process is not None
        service.kill_leftovers()
        uptime = now - watched.started_at
        delay = self._schedule_restart(watched, now)
        self._say(
            f"{service.name} (pid {service.pid}) {describe_exit(service.process.returncode)} "
            f"after {uptime:.0f}s; restarting in {delay:.0f}s; log: {service.log_path}"
        )

    def _restart(self, watched: Watched, now: float) -> None:
        service = watched.service
        watched.started_at = now
        watched.restart_at = None
        try:
            service.restart()
        except OSError as exc:  # the command itself is gone: retried like any other death
            delay = self._schedule_restart(watched, now)
            self._say(f"{service.name} did not start ({exc}); retrying in {delay:.0f}s")
            return
        self._say(f"{service.name} restarted (pid {service.pid}); log: {service.log_path}")

    def _schedule_restart(self, watched: Watched, now: float) -> float:
        if now - watched.started_at >= STEADY_AFTER:
            watched.quick_deaths = 0
        delay = restart_delay(watched.quick_deaths)
        watched.quick_deaths += 1
        watched.restart_at = now + delay
        return delay

    def _say(self, line: str) -> None:
        self.report(f"{time.strftime('%H:%M:%S')} {line}")
