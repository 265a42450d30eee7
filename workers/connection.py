"""The worker's libvirt connections: opened on first use (after Celery forked), reopened when
libvirtd went away.

Each worker thread gets its own connection: libvirtd serves at most a few calls of one client at
once (``max_client_requests``, 5 by default), so on one shared connection quick calls queue
behind slow domain starts. The ``test:`` driver keeps a hypervisor's state inside the
connection that opened it, so a worker serving one shares a single connection instead.

libvirt's event loop runs in a thread of its own: without it a connection reads its socket only
during a call, so it never notices that libvirtd went away (``isAlive()`` stays true and the next
call fails) and keepalive, which ends a call that a hung libvirtd never answers, cannot run.
"""

from __future__ import annotations

import contextlib
import threading

import libvirt


def _raised_not_printed(_context: object, _error: object) -> None:
    """libvirt's error callback: every failure also comes back as a raised libvirtError,
    which the job handles or reports, so nothing is printed on its own. By default libvirt
    prints each one to stderr, filling the worker log with expected misses such as "no
    storage vol with matching name" from every create's lookup."""


def quiet_libvirt_errors() -> None:
    libvirt.registerErrorHandler(_raised_not_printed, None)


_event_loop_lock = threading.Lock()
_event_loop: threading.Thread | None = None


def run_libvirt_event_loop() -> None:
    """Start libvirt's default event loop, once per process; it must be registered before the
    first connection opens."""
    global _event_loop
    with _event_loop_lock:
        if _event_loop is not None:
            return
        libvirt.virEventRegisterDefaultImpl()
        _event_loop = threading.Thread(target=_run_events, name="libvirt-events", daemon=True)
        _event_loop.start()


def _run_events() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


class LibvirtConnector:
    """Hands each thread its connection to ``uri`` (one shared one for the test driver)."""

    def __init__(self, uri: str, keepalive: tuple[int, int] = (5, 6)) -> None:
        quiet_libvirt_errors()
        run_libvirt_event_loop()
        self.uri = uri
        self.keepalive = keepalive
        self.shared = uri.startswith("test:")
        self._local = threading.local()
        self._shared_conn: libvirt.virConnect | None = None
        self._opened: list[libvirt.virConnect] = []
        self._lock = threading.RLock()

    def __call__(self) -> libvirt.virConnect:
        if self.shared:
            with self._lock:
                self._shared_conn = self._usable(self._shared_conn)
                return self._shared_conn
        self._local.conn = self._usable(getattr(self._local, "conn", None))
        return self._local.conn

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
            self._shared_conn = None
        for conn in opened:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    def _usable(self, conn: libvirt.virConnect | None) -> libvirt.virConnect:
        if conn is not None and self._alive(conn):
            return conn
        fresh = libvirt.open(self.uri)
        if not self.shared:
            # Refused only by drivers that run in this process: there is no daemon to probe.
            with contextlib.suppress(libvirt.libvirtError):
                fresh.setKeepAlive(*self.keepalive)
        with self._lock:
            if conn is not None and conn in self._opened:
                self._opened.remove(conn)  # libvirtd restarted: the old one is dead
            self._opened.append(fresh)
        return fresh

    @staticmethod
    def _alive(conn: libvirt.virConnect) -> bool:
        try:
            return bool(conn.isAlive())
        except libvirt.libvirtError:
            return False
