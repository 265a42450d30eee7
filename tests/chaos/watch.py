"""Between and after faults: a service that exits by itself is a finding, and is started again
as its supervisor (systemd, ``orchestrator up``) would, so that later jobs and trials can run;
each trial starts on a steady stack."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from orchestrator.jobs.livestate import LiveState
from orchestrator.local.processes import ServiceProcess
from orchestrator.local.supervisor import describe_exit
from tests.chaos.faults import Target


class ServiceWatch:
    """Restarts crashed services, telling ``blame`` (the trial whose fault came last)."""

    def __init__(self, target: Target, live: LiveState, blame: Callable[[str], None]) -> None:
        self.target = target
        self.live = live
        self.blame = blame
        # Held while a fault runs: what it kills on purpose, it restarts itself.
        self.fault = threading.Lock()

    @contextmanager
    def running(self) -> Iterator[None]:
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                with self.fault:
                    self.restart_crashed()

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(120)

    def restart_crashed(self) -> None:
        stack = self.target.stack
        for service in [*stack.stack.services, self.target.redis]:
            if service.process is None or service.alive():
                continue
            self.blame(_crash(service))
            try:
                if service is self.target.redis:
                    service.start()
                    continue
                fresh = stack.restart(service.name)
            except (RuntimeError, TimeoutError) as exc:  # dead again: the next look retries
                self.blame(f"{service.name} did not start again: {exc}")
                continue
            if service.name.startswith("worker-"):
                stack.workers[service.name.removeprefix("worker-")] = fresh

    def wait_steady(self, timeout: float = 120, settle: float = 2.0) -> None:
        """Until every service has run and each worker beaten for ``settle`` seconds in a row:
        a worker that dies a while after a fault (once its jobs ended) dies here, and counts
        against that fault, not the next."""
        deadline = time.monotonic() + timeout
        steady_since: float | None = None
        while time.monotonic() < deadline:
            with self.fault:
                self.restart_crashed()
                steady = self._all_up()
            now = time.monotonic()
            if not steady:
                steady_since = None
            elif steady_since is None:
                steady_since = now
            elif now - steady_since >= settle:
                return
            time.sleep(0.3)
        raise AssertionError(f"the stack was not steady within {timeout:g}s")

    def _all_up(self) -> bool:
        stack = self.target.stack
        if not all(s.alive() for s in [*stack.stack.services, self.target.redis]):
            return False
        beats = {name: self.live.heartbeat(name) for name in stack.workers}
        return all(
            beat is not None and str(beat.get("worker", "")).endswith(f":{stack.workers[name].pid}")
            for name, beat in beats.items()
        )


def _crash(service: ServiceProcess) -> str:
    assert service.process is not None
    lines = service.log_tail(200).splitlines()
    why = next((line for line in reversed(lines) if "CRITICAL" in line or "Error" in line), "")
    return (
        f"{service.name} (pid {service.pid}) {describe_exit(service.process.returncode)} by "
        f"itself; restarted. Log ({service.log_path}): {why[:300]}"
    )
