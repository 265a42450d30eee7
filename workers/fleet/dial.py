"""Opens one authenticated SSH transport to a host: TCP (or a jump host's tunnel), handshake,
host key check and login, each phase timed and each failure classified as unreachable."""

from __future__ import annotations

import functools
import os
import socket
import time
from dataclasses import dataclass, field, replace

import paramiko

from orchestrator.fleet.redaction import Redactor
from orchestrator.fleet.target import HostTarget
from workers.fleet.errors import AuthenticationFailed, ConnectFailed, HostUnreachable
from workers.fleet.hostkeys import HostKeyVerifier

_DEFAULT_KEYS = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")
# paramiko's transport thread wakes every 0.1 s to check whether it was closed; a pooled
# connection idles for minutes, and 100 idle ones cost ~3% of a core just waking up. Once
# logged in (no handshake deadline left to check) one wake-up a second is enough: data and
# EOF still wake it at once, and close() does not wait for it.
_IDLE_POLL_SECONDS = 1.0
# paramiko offers AES-GCM last (after CBC) only to keep old behaviour; it is authenticated
# encryption in one pass, so a copy costs the worker about a quarter less CPU than CTR+HMAC.
_AEAD_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class DialSettings:
    """The part of FleetOptions that opening a connection needs."""

    verifier: HostKeyVerifier
    connect_timeout: float = 10.0
    auth_timeout: float = 15.0
    connect_retries: int = 1
    retry_delay: float = 0.5


@dataclass
class Dialed:
    """A fresh, authenticated transport and what it took to get it."""

    transport: paramiko.Transport
    host_key_check: str
    connect_ms: float
    auth_ms: float
    jump: Dialed | None = field(default=None, repr=False)

    def close(self) -> None:
        self.transport.close()
        if self.jump is not None:
            self.jump.close()


def dial(target: HostTarget, settings: DialSettings, redact: Redactor) -> Dialed:
    """Connect and log in, retrying refused or timed-out connections ``connect_retries`` times.
    Host key and authentication failures are not retried: trying again cannot fix them."""
    attempt = 0
    while True:
        try:
            return _dial_once(target, settings)
        except ConnectFailed as exc:
            if attempt >= settings.connect_retries:
                raise ConnectFailed(redact(exc.detail)) from None
            attempt += 1
            time.sleep(settings.retry_delay)
        except HostUnreachable as exc:
            raise type(exc)(redact(exc.detail)) from None


def _dial_once(target: HostTarget, settings: DialSettings) -> Dialed:
    where = f"{target.user}@{target.address}:{target.port}"
    started = time.perf_counter()
    jump = _dial_jump(target, settings)
    try:
        sock = _open_socket(target, settings.connect_timeout, jump)
        transport = _handshake(sock, target, settings, where)
    except BaseException:
        if jump is not None:
            jump.close()
        raise
    try:
        check = settings.verifier.verify(
            target.address, target.port, transport.get_remote_server_key()
        )
        connected = time.perf_counter()
        _authenticate(transport, target, where)
    except BaseException:
        transport.close()
        if jump is not None:
            jump.close()
        raise
    done = time.perf_counter()
    transport.sock.settimeout(_IDLE_POLL_SECONDS)
    return Dialed(transport, check, (connected - started) * 1000, (done - connected) * 1000, jump)


def _dial_jump(target: HostTarget, settings: DialSettings) -> Dialed | None:
    jump = target.jump_host()
    if jump is None:
        return None
    bastion = replace(
        target,
        name=f"{target.name}-jump",
        address=jump.address,
        port=jump.port,
        user=jump.user or target.user,
        proxy_jump=None,
        become=False,
    )
    try:
        return _dial_once(bastion, settings)
    except HostUnreachable as exc:
        raise type(exc)(f"jump host {target.proxy_jump}: {exc.detail}") from None


def _open_socket(
    target: HostTarget, timeout: float, jump: Dialed | None
) -> socket.socket | paramiko.Channel:
    where = f"{target.address}:{target.port}"
    try:
        if jump is not None:
            return jump.transport.open_channel(
                "direct-tcpip", (target.address, target.port), ("127.0.0.1", 0), timeout=timeout
            )
        sock = socket.create_connection((target.address, target.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    except TimeoutError:
        raise ConnectFailed(f"connect to {where} timed out after {timeout:g}s") from None
    except (OSError, paramiko.SSHException) as exc:
        raise ConnectFailed(f"connect to {where} failed: {exc}") from None


def _handshake(
    sock: socket.socket | paramiko.Channel,
    target: HostTarget,
    settings: DialSettings,
    where: str,
) -> paramiko.Transport:
    transport = paramiko.Transport(sock)
    transport.banner_timeout = settings.connect_timeout
    transport.handshake_timeout = settings.connect_timeout
    transport.auth_timeout = settings.auth_timeout
    _prefer_known_key_types(transport, settings.verifier, target)
    _prefer_aead_ciphers(transport)
    try:
        transport.start_client(timeout=settings.connect_timeout)
        # start_client may return when the transport thread died (e.g. no banner in time);
        # the saved reason is the real error.
        if not transport.is_active():
            raise transport.get_exception() or paramiko.SSHException("connection closed")
        transport.get_remote_server_key()
    except (paramiko.SSHException, EOFError, OSError) as exc:
        transport.close()
        reason = str(exc) or type(exc).__name__
        raise ConnectFailed(f"SSH handshake with {where} failed: {reason}") from None
    return transport


def _prefer_known_key_types(
    transport: paramiko.Transport, verifier: HostKeyVerifier, target: HostTarget
) -> None:
    known = verifier.preferred_algorithms(target.address, target.port)
    if not known:
        return
    options = transport.get_security_options()
    supported = list(options.key_types)
    options.key_types = [a for a in known if a in supported] + [
        a for a in supported if a not in known
    ]


def _prefer_aead_ciphers(transport: paramiko.Transport) -> None:
    options = transport.get_security_options()
    supported = list(options.ciphers)
    options.ciphers = [c for c in _AEAD_CIPHERS if c in supported] + [
        c for c in supported if c not in _AEAD_CIPHERS
    ]


def _authenticate(transport: paramiko.Transport, target: HostTarget, where: str) -> None:
    tried: list[str] = []
    for key_path in _key_paths(target):
        tried.append(f"publickey {key_path}")
        try:
            transport.auth_publickey(target.user, load_private_key(key_path))
            return
        except paramiko.AuthenticationException:
            continue
        except (paramiko.SSHException, OSError, ValueError) as exc:
            tried[-1] += f" (unusable: {type(exc).__name__})"
            continue
    if target.password is not None:
        tried.append("password")
        try:
            transport.auth_password(target.user, target.password, fallback=False)
            return
        except paramiko.AuthenticationException:
            pass
    raise AuthenticationFailed(
        f"authentication failed for {where} (tried: {', '.join(tried) or 'no credentials'})"
    )


def _key_paths(target: HostTarget) -> list[str]:
    if target.key_file is not None:
        return [target.key_file]
    if target.password is not None:
        return []
    return [p for p in (os.path.expanduser(k) for k in _DEFAULT_KEYS) if os.path.exists(p)]


def load_private_key(path: str) -> paramiko.PKey:
    """The key at ``path``, parsed once per process per file version."""
    info = os.stat(path)
    return _load_key(path, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=256)
def _load_key(path: str, mtime_ns: int, size: int) -> paramiko.PKey:
    return paramiko.PKey.from_path(path)
