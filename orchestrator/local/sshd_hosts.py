"""Real OpenSSH sshd hosts on this machine, one sshd per loopback address (127.0.0.X), with
host keys and a client key generated per run and stopped by PID afterwards: what the fleet
demo, the fleet tests and the fleet benchmark run commands on. Needs root and openssh-server.

Root logs in with the fleet's own authorized_keys file; any other user with the usual
``~/.ssh/authorized_keys`` (the fleet benchmark's unprivileged login user, for one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.fleet.target import HostTarget

SSHD = "/usr/sbin/sshd"
_CONFIG = """\
ListenAddress {address}:{port}
HostKey {dir}/ssh_host_ed25519_key
PidFile {dir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
AllowTcpForwarding yes
MaxStartups 200:30:400
MaxSessions 50
LogLevel VERBOSE
Subsystem sftp internal-sftp
Match User *,!root
    AuthorizedKeysFile .ssh/authorized_keys
"""


def missing_parts() -> str | None:
    """Why sshd hosts cannot run here, or None when they can."""
    for tool in (SSHD, shutil.which("ssh-keygen")):
        if not tool or not os.path.exists(tool):
            return "OpenSSH server is not installed (Debian package openssh-server)"
    if os.geteuid() != 0:
        return "sshd hosts log in as root and need to run as root"
    return None


def keygen(path: Path) -> str:
    """Write a new ed25519 key pair at ``path``; returns the public key line."""
    for old in (path, path.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class SshdHost:
    """One sshd listening on ``address:port``."""

    name: str
    address: str
    dir: Path
    authorized_keys: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    host_key: str = ""

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(self.dir / "ssh_host_ed25519_key")

    def start(self) -> None:
        """Start sshd on a free port (retrying if another process takes the port first)."""
        for _ in range(5):
            self.port = free_port(self.address)
            config = self.dir / "sshd_config"
            config.write_text(
                _CONFIG.format(
                    address=self.address,
                    port=self.port,
                    dir=self.dir,
                    authorized_keys=self.authorized_keys,
                )
            )
            self.process = subprocess.Popen(
                [SSHD, "-D", "-f", str(config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self.wait_ready():
                return
            self.stop()
        raise RuntimeError(f"sshd for {self.name} did not start; see {self.log}")

    def wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection((self.address, self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop the listener and the per-connection sshd processes it forked, by PID."""
        if self.process is None:
            return
        for pid in [*_children(self.process.pid), self.process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def known_hosts_line(self) -> str:
        key_type, key = self.host_key.split()[:2]
        return f"[{self.address}]:{self.port} {key_type} {key}\n"


@dataclass
class SshdFleet:
    """A set of sshd hosts sharing one client key and one known_hosts file."""

    root: Path
    hosts: list[SshdHost] = field(default_factory=list)
    user: str = "root"  # who targets() logs in as

    @property
    def client_key(self) -> Path:
        return self.root / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    def write_known_hosts(self) -> None:
        self.known_hosts.write_text("".join(h.known_hosts_line() for h in self.hosts))

    def targets(self, hosts: list[SshdHost] | None = None, **overrides: object) -> list[HostTarget]:
        return [
            HostTarget(
                **{  # type: ignore[arg-type]
                    "name": h.name,
                    "address": h.address,
                    "port": h.port,
                    "user": self.user,
                    "key_file": str(self.client_key),
                    **overrides,
                }
            )
            for h in (self.hosts if hosts is None else hosts)
        ]

    def add_hosts(self, count: int, first_octet: int) -> list[SshdHost]:
        """Create and start ``count`` more hosts in parallel on 127.0.<n>.<m> addresses."""
        new = []
        for i in range(count):
            index = first_octet + i
            address = f"127.0.{index // 250}.{index % 250 + 2}"
            name = f"host{index:03d}"
            new.append(SshdHost(name, address, self.root / name, self.root / "authorized_keys"))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda h: (h.prepare(), h.start()), new))
        self.hosts.extend(new)
        self.write_known_hosts()
        return new

    def stop(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(SshdHost.stop, self.hosts))
        shutil.rmtree(self.root, ignore_errors=True)


def start_fleet(count: int, first_octet: int = 0) -> SshdFleet:
    """Start ``count`` sshd hosts with a fresh client key authorized on all of them."""
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
    fleet = SshdFleet(Path(tempfile.mkdtemp(prefix="fleet-sshd-")))
    (fleet.root / "authorized_keys").write_text(keygen(fleet.client_key) + "\n")
    try:
        fleet.add_hosts(count, first_octet)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (sshd forks one per connection)."""
    found: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    for task in task_dir.glob("*"):
        try:
            found.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found
