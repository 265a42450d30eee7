"""The worker's libvirt connection: opened on first use (after Celery forked), shared by threads."""

from __future__ import annotations

import contextlib
import threading

import libvirt


class LibvirtConnector:
    """Opens ``uri`` lazily and reopens it when libvirtd went away."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: libvirt.virConnect | None = None
        self._lock = threading.Lock()

    def __call__(self) -> libvirt.virConnect:
        with self._lock:
            if self._conn is None or not self._alive(self._conn):
                self._conn = libvirt.open(self.uri)
            return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False
