"""A thread that tells Redis, every few seconds, that this hypervisor's worker is alive."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import libvirt

from orchestrator.livestate import LiveState
from orchestrator.settings import Settings
from workers.facts import read_capacity

log = logging.getLogger(__name__)


class Heartbeat:
    """Beats with the worker's identity and the hypervisor's capacity read from libvirt."""

    def __init__(
        self,
        settings: Settings,
        live: LiveState,
        instance: str,
        connect: Callable[[], libvirt.virConnect],
    ) -> None:
        self.settings = settings
        self.live = live
        self.instance = instance
        self.connect = connect
        self.up_since = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and withdraw the heartbeat: the worker is gone on purpose."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.live.redis.delete(f"orch:hb:{self.settings.hypervisor}")

    def beat(self) -> None:
        self.live.beat(self.settings.hypervisor, self.payload(), self.settings.heartbeat_ttl)

    def payload(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "instance": self.instance,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "libvirt_uri": self.settings.libvirt_uri,
            "queue": self.settings.queue,
            "up_since": self.up_since,
            "concurrency": self.settings.worker_concurrency,
        }
        try:
            info["capacity"] = read_capacity(self.connect())
        except libvirt.libvirtError as exc:
            info["capacity"] = None
            info["libvirt_error"] = str(exc)
        return info

    def _run(self) -> None:
        while not self._stop.wait(self.settings.heartbeat_interval):
            try:
                self.beat()
            except Exception:  # a missed beat must not kill the thread
                log.exception("heartbeat failed")
