"""Host key checking: ``strict`` (the key must be known), ``accept-new`` (record first-seen
keys in the product's own store) and ``off``. A changed key always fails closed."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import threading
from dataclasses import dataclass

import paramiko

from orchestrator.fleet.options import HostKeyPolicy
from workers.fleet.errors import HostKeyRejected

# The host key algorithms a client may ask for, per key type found in known_hosts, so the
# server shows the key we already know instead of another type we would call "new".
_ALGORITHMS_FOR_TYPE = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
}

_cache_lock = threading.Lock()
_store_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], paramiko.HostKeys]] = {}
_parses = 0


def parse_count() -> int:
    """How many times a known_hosts file was parsed in this process (each file once per
    change)."""
    return _parses


def known_hosts_name(address: str, port: int) -> str:
    """The name OpenSSH writes for a host: ``address`` on port 22, ``[address]:port`` else."""
    return address if port == 22 else f"[{address}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it (``SHA256:...``)."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).rstrip(b"=")
    return f"SHA256:{digest.decode()}"


def load_known_hosts(path: str) -> paramiko.HostKeys | None:
    """The parsed file, from the cache while its mtime and size are unchanged; None when it
    does not exist."""
    global _parses
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    stamp = (info.st_mtime_ns, info.st_size)
    with _cache_lock:
        cached = _cache.get(path)
        if cached and cached[0] == stamp:
            return cached[1]
        keys = paramiko.HostKeys(path)
        _parses += 1
        _cache[path] = (stamp, keys)
        return keys


@dataclass(frozen=True)
class HostKeyVerifier:
    """Checks a server's key against the known_hosts files under one policy."""

    policy: HostKeyPolicy
    files: tuple[str, ...]
    store: str | None = None

    def _known(self, name: str) -> list[paramiko.PKey]:
        found: list[paramiko.PKey] = []
        for path in (*self.files, *([self.store] if self.store else [])):
            keys = load_known_hosts(path)
            entry = keys.lookup(name) if keys is not None else None
            if entry:
                found.extend(entry.values())
        return found

    def preferred_algorithms(self, address: str, port: int) -> list[str]:
        """Host key algorithms to ask for first: those of the keys already known."""
        if self.policy == "off":
            return []
        algorithms: list[str] = []
        for key in self._known(known_hosts_name(address, port)):
            for algorithm in _ALGORITHMS_FOR_TYPE.get(key.get_name(), (key.get_name(),)):
                if algorithm not in algorithms:
                    algorithms.append(algorithm)
        return algorithms

    def verify(self, address: str, port: int, key: paramiko.PKey) -> str:
        """Accept the key (returning how: ``matched``, ``recorded`` or ``off``) or raise
        HostKeyRejected."""
        if self.policy == "off":
            return "off"
        name = known_hosts_name(address, port)
        known = self._known(name)
        if any(k.asbytes() == key.asbytes() for k in known):
            return "matched"
        if known:
            raise HostKeyRejected(
                f"host key for {name} has CHANGED: server offered {key.get_name()} "
                f"{fingerprint(key)}, which matches no recorded key; refusing to connect"
            )
        if self.policy == "strict":
            raise HostKeyRejected(
                f"host key for {name} is not known ({key.get_name()} {fingerprint(key)}) "
                "and host_key_policy is strict"
            )
        return self._record(name, key)

    def _record(self, name: str, key: paramiko.PKey) -> str:
        assert self.store is not None  # FleetOptions requires a store for accept-new
        os.makedirs(os.path.dirname(os.path.abspath(self.store)), exist_ok=True)
        with _store_lock, open(self.store, "a+", encoding="utf-8") as handle:
            # Another worker process may have recorded this host since we looked: re-read
            # under the file lock so two first contacts cannot record two different keys.
            fcntl.flock(handle, fcntl.LOCK_EX)
            os.chmod(self.store, 0o600)
            handle.seek(0)
            for line in handle:
                entry = _entry(line)
                if entry is not None and name in entry.hostnames:
                    if entry.key.asbytes() == key.asbytes():
                        return "matched"
                    raise HostKeyRejected(f"host key for {name} has CHANGED; refusing to connect")
            handle.seek(0, os.SEEK_END)
            handle.write(f"{name} {key.get_name()} {key.get_base64()}\n")
        return "recorded"


def _entry(line: str) -> paramiko.hostkeys.HostKeyEntry | None:
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    try:
        return paramiko.hostkeys.HostKeyEntry.from_line(line)
    except paramiko.SSHException:
        return None
