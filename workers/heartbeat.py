"""Threads that tell Redis, every few seconds, that this hypervisor's worker is alive.

Beating and reading capacity are separate threads: a libvirt call can block for seconds (a
domain being destroyed holds driver locks), and a worker busy with libvirt is not a dead one.
Each beat carries the latest capacity read, with the time it was read, and the guest CPU modes
the worker learned at start.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import libvirt

from orchestrator.jobs.livestate import LiveState
from orchestrator.settings import Settings
from workers.capacity import CapacityReader
from workers.domains.cpu_probe import CpuModes, chosen_cpu

log = logging.getLogger(__name__)


class Heartbeat:
    """Beats with the worker's identity and the hypervisor's capacity read from libvirt."""

    def __init__(
        self,
        settings: Settings,
        live: LiveState,
        instance: str,
        connect: Callable[[], libvirt.virConnect],
        running: Callable[[], Iterable[tuple[str, int]]] = tuple,
    ) -> None:
        self.settings = settings
        self.running = running
        self.live = live
        self.instance = instance
        self.connect = connect
        self.up_since = time.time()
        self.cpu_modes: CpuModes | None = None
        self._reader = CapacityReader()
        self._capacity: dict[str, Any] = {"capacity": None, "allocated": None}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(self.beat,), name="heartbeat", daemon=True),
            threading.Thread(
                target=self._loop, args=(self.refresh_capacity,), name="capacity", daemon=True
            ),
        ]

    def start(self) -> None:
        self.refresh_capacity()
        self.beat()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop beating and withdraw the heartbeat: the worker is gone on purpose."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)
        self.live.withdraw(self.settings.hypervisor, self.instance)

    def beat(self) -> None:
        self.live.beat(self.settings.hypervisor, self.payload(), self.settings.heartbeat_ttl)

    def payload(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "libvirt_uri": self.settings.libvirt_uri,
            "queue": self.settings.queue,
            "up_since": self.up_since,
            "concurrency": self.settings.worker_concurrency,
            # The attempts this process runs: a job left running that is not here is adrift.
            "running": sorted(self.running()),
            "cpu_mode": chosen_cpu(self.settings.cpu_mode, self.cpu_modes),
            "cpu_modes": self.cpu_modes.modes if self.cpu_modes is not None else None,
            "cpu_probe": self.cpu_modes.to_json() if self.cpu_modes is not None else None,
            **self._capacity,
        }

    def refresh_capacity(self) -> None:
        try:
            self._capacity = {**self._reader.read(self.connect()), "capacity_at": time.time()}
        except libvirt.libvirtError as exc:
            self._capacity = {**self._capacity, "libvirt_error": str(exc)}

    def _loop(self, step: Callable[[], None]) -> None:
        while not self._stop.wait(self.settings.heartbeat_interval):
            try:
                step()
            except Exception:  # a missed beat or read must not end the thread
                log.exception("%s failed", step.__name__)
