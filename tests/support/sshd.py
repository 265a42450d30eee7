"""The sshd hosts fleet tests run on. Starting them lives in :mod:`orchestrator.local.sshd_hosts`,
since the demo starts them too; what only tests do to a host (restart it, give it a new host key,
count its logins) lives here."""

from __future__ import annotations

import subprocess

from orchestrator.local.sshd_hosts import (
    SSHD,
    SshdFleet,
    SshdHost,
    free_port,
    keygen,
    missing_parts,
    start_fleet,
)

__all__ = [
    "SshdFleet",
    "SshdHost",
    "free_port",
    "keygen",
    "logins",
    "missing_parts",
    "restart_with_new_host_key",
    "start_fleet",
    "start_same_port",
]


def start_same_port(host: SshdHost) -> None:
    """Start a stopped host again on the address and port it had."""
    host.process = subprocess.Popen(
        [SSHD, "-D", "-f", str(host.dir / "sshd_config"), "-E", str(host.log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not host.wait_ready():
        raise RuntimeError(f"sshd for {host.name} did not restart; see {host.log}")


def restart_with_new_host_key(host: SshdHost) -> None:
    """The same host answering with a different key, as after a reinstall (or an attack)."""
    host.stop()
    host.host_key = keygen(host.dir / "ssh_host_ed25519_key")
    start_same_port(host)


def logins(host: SshdHost) -> int:
    """Successful logins sshd recorded (one per new authenticated connection)."""
    if not host.log.exists():
        return 0
    return host.log.read_text(errors="replace").count("Accepted publickey")
