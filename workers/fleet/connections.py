"""Warm SSH connections kept open between jobs, keyed by (address, port, user, credential
identity, jump host); checked for age and liveness before reuse; safe across threads."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

import paramiko

from orchestrator.fleet.redaction import Redactor
from orchestrator.fleet.target import HostTarget
from workers.fleet.dial import Dialed, DialSettings, dial, load_private_key
from workers.fleet.errors import HostUnreachable
from workers.fleet.hostkeys import fingerprint

# Passwords take part in the pool key only as a keyed hash whose key never leaves this process.
_PASSWORD_SALT = secrets.token_bytes(32)

PoolKey = tuple[str, int, str, str, str]


class StaleConnection(Exception):
    """Raised when a reused connection turns out to be dead before anything ran on it."""


@dataclass
class Connection:
    """One authenticated transport, lent to one host's module at a time."""

    key: PoolKey
    dialed: Dialed
    reused: bool = False
    created_at: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)

    @property
    def transport(self) -> paramiko.Transport:
        return self.dialed.transport

    @property
    def host_key_check(self) -> str:
        return self.dialed.host_key_check

    def alive(self) -> bool:
        transport = self.dialed.transport
        return transport.is_active() and transport.is_authenticated()

    def open_session(self, timeout: float) -> paramiko.Channel:
        """A new channel; on a reused connection a failure means it died while idle, which
        the executor answers by dialing again (nothing has run yet)."""
        try:
            return self.transport.open_session(timeout=timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if self.reused:
                raise StaleConnection(str(exc)) from None
            raise

    def close(self) -> None:
        self.dialed.close()


@dataclass(frozen=True)
class PoolStats:
    opened: int  # connections dialed (each is one new TCP connection and login)
    reused: int  # times an idle connection was lent out again
    closed: int  # connections closed: idle too long, dead, failed, or pool closed
    idle: int  # connections waiting in the pool now


class ConnectionPool:
    """Idle connections by key. ``acquire`` lends one (reused or dialed), ``release`` takes it
    back; a connection that saw an error is closed instead of kept."""

    def __init__(self, max_idle_seconds: float = 300.0, max_idle_per_key: int = 4) -> None:
        self.max_idle_seconds = max_idle_seconds
        self.max_idle_per_key = max_idle_per_key
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._lock = threading.Lock()
        self._opened = self._reused = self._closed = 0

    def acquire(
        self, target: HostTarget, settings: DialSettings, redact: Redactor, *, fresh: bool = False
    ) -> Connection:
        """A live connection for ``target``: an idle one whose host key still passes the
        current policy, else a newly dialed one. Raises HostUnreachable."""
        key = pool_key(target)
        if not fresh:
            conn = self._take_idle(key)
            if conn is not None:
                try:
                    remote_key = conn.transport.get_remote_server_key()
                    check = settings.verifier.verify(target.address, target.port, remote_key)
                except HostUnreachable:
                    self._close(conn)
                    raise
                conn.dialed.host_key_check = check
                return conn
        dialed = dial(target, settings, redact)
        with self._lock:
            self._opened += 1
        return Connection(key, dialed)

    def release(self, conn: Connection, *, healthy: bool = True) -> None:
        """Give a connection back; it is kept only when healthy, alive and there is room."""
        if not healthy or not conn.alive():
            self._close(conn)
            return
        conn.last_used = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(conn.key, [])
            if len(idle) < self.max_idle_per_key:
                idle.append(conn)
                return
        self._close(conn)

    def discard(self, conn: Connection) -> None:
        """Close a connection that must not be used again."""
        self._close(conn)

    def prune(self) -> int:
        """Close connections idle longer than ``max_idle_seconds`` or dead; returns how many."""
        now = time.monotonic()
        doomed: list[Connection] = []
        with self._lock:
            for key, idle in list(self._idle.items()):
                keep = [c for c in idle if now - c.last_used <= self.max_idle_seconds and c.alive()]
                doomed.extend(c for c in idle if c not in keep)
                self._idle[key] = keep
        for conn in doomed:
            self._close(conn)
        return len(doomed)

    def close_all(self) -> None:
        with self._lock:
            doomed = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in doomed:
            self._close(conn)

    def stats(self) -> PoolStats:
        with self._lock:
            idle = sum(len(v) for v in self._idle.values())
            return PoolStats(self._opened, self._reused, self._closed, idle)

    def _take_idle(self, key: PoolKey) -> Connection | None:
        now = time.monotonic()
        expired: list[Connection] = []
        found: Connection | None = None
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                conn = idle.pop()  # the most recently used is the likeliest to be alive
                if now - conn.last_used > self.max_idle_seconds or not conn.alive():
                    expired.append(conn)
                    continue
                self._reused += 1
                conn.reused = True
                found = conn
                break
        for conn in expired:
            self._close(conn)
        return found

    def _close(self, conn: Connection) -> None:
        try:
            conn.close()
        finally:
            with self._lock:
                self._closed += 1


def pool_key(target: HostTarget) -> PoolKey:
    """Who the connection is logged in as and how: a different key or password is a
    different connection."""
    return (target.address, target.port, target.user, _identity(target), target.proxy_jump or "")


def _identity(target: HostTarget) -> str:
    parts = []
    if target.key_file is not None:
        try:
            parts.append("key:" + fingerprint(load_private_key(target.key_file)))
        except (OSError, ValueError, paramiko.SSHException):
            parts.append("keyfile:" + target.key_file)  # dial reports why it is unusable
    if target.password is not None:
        digest = hmac.new(_PASSWORD_SALT, target.password.encode(), hashlib.sha256)
        parts.append("password:" + digest.hexdigest()[:16])
    return "|".join(parts) or "default-keys"
