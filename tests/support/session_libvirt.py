"""A second real libvirt on this machine for tests: a private ``qemu:///session`` libvirtd.

As root, libvirt's client sends ``qemu:///session`` to the system daemon's socket (the per-user
daemon is only for a uid other than 0) and the system daemon serves it as ``qemu:///system``:
the same hypervisor under another name. A libvirtd whose uid is not 0 runs in session mode, so
the second hypervisor is a libvirtd run as an unprivileged user (with the kvm group, for KVM),
its HOME and XDG directories in a temporary directory: it writes nothing under /root or /run.
A root process reaches it through the socket named in the URI (``?socket=``), which needs no
environment variable.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libvirt

from orchestrator.local.processes import ServiceProcess
from tests.support.libvirtd import libvirtd_answers, remove_domain

DAEMON_USER = "nobody"
# qemu writes its log itself: the session default (virtlogd) would spawn a daemon of its own
# that outlives this one.
QEMU_CONF = 'stdio_handler = "file"\n'
SYSTEM_CAPABILITIES = Path("/var/cache/libvirt/qemu/capabilities")
_DIRECTORIES = ("HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")


@dataclass(frozen=True)
class SessionLibvirt:
    """A running session libvirtd: the URI that reaches it, the directory it lives in, the
    user it runs as, and the process (stopped by its PID).

    ``uri`` is all a root process (a worker) needs. ``env`` is the daemon's own environment:
    a process running as its user would reach it as plain ``qemu:///session`` with it."""

    uri: str
    root: Path
    env: dict[str, str]
    uid: int
    gid: int
    process: ServiceProcess

    def make_directory(self, name: str) -> Path:
        """A directory under ``root`` that the daemon's qemu may write (pools, serial logs)."""
        path = self.root / name
        path.mkdir(mode=0o755)
        os.chown(path, self.uid, self.gid)
        return path


def daemon_environment(root: Path) -> dict[str, str]:
    """HOME and the XDG directories under ``root``: where a session libvirtd keeps its
    configuration (``XDG_CONFIG_HOME/libvirt``), logs (``XDG_CACHE_HOME/libvirt``) and
    sockets (``XDG_RUNTIME_DIR/libvirt/libvirt-sock``)."""
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": str(root / "home"),
        "XDG_RUNTIME_DIR": str(root / "run"),
        "XDG_CONFIG_HOME": str(root / "config"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "XDG_DATA_HOME": str(root / "data"),
    }


def session_uri(env: dict[str, str]) -> str:
    return f"qemu:///session?socket={env['XDG_RUNTIME_DIR']}/libvirt/libvirt-sock"


def start_session_libvirtd(parent: Path) -> SessionLibvirt:
    """Start a session libvirtd in a new directory under ``parent`` (which the daemon's user
    must be able to traverse) and wait until ``qemu:///session`` answers through its socket."""
    libvirtd = shutil.which("libvirtd", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if libvirtd is None:
        raise RuntimeError("libvirtd is not installed (Debian package libvirt-daemon-system)")
    user = pwd.getpwnam(DAEMON_USER)
    root = Path(tempfile.mkdtemp(prefix="orch-session-", dir=parent))
    root.chmod(0o755)
    env = daemon_environment(root)
    _lay_out(env, user.pw_uid, user.pw_gid)
    uri = session_uri(env)
    process = ServiceProcess(
        "libvirtd-session",
        [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            *_groups(),
            "--inh-caps=-all",
            "--",
            libvirtd,
        ],
        log_path=root / "libvirtd.log",
        env=env,
        ready=lambda: _answers(uri),
    )
    try:
        process.start(timeout=60)
    except BaseException:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return SessionLibvirt(uri, root, env, user.pw_uid, user.pw_gid, process)


def _lay_out(env: dict[str, str], uid: int, gid: int) -> None:
    made = [Path(env[key]) for key in _DIRECTORIES]
    for path in made:
        path.mkdir(mode=0o700)
    config = Path(env["XDG_CONFIG_HOME"]) / "libvirt"
    config.mkdir()
    (config / "qemu.conf").write_text(QEMU_CONF)
    made += [config, config / "qemu.conf", *_seed_capabilities(Path(env["XDG_CACHE_HOME"]))]
    for path in made:
        os.chown(path, uid, gid)


def _seed_capabilities(cache: Path) -> list[Path]:
    """Copy the system daemon's probe of each qemu binary: probing them anew takes the session
    daemon several seconds before it answers. libvirt probes again any it finds stale."""
    if not SYSTEM_CAPABILITIES.is_dir():
        return []
    target = cache / "libvirt" / "qemu" / "cache" / "capabilities"
    target.mkdir(parents=True)
    copied = [Path(shutil.copy(f, target)) for f in SYSTEM_CAPABILITIES.glob("*.xml")]
    return [*target.parents[:3][::-1], target, *copied]


def _answers(uri: str) -> bool:
    # The first connection waits until the daemon has probed its qemu binaries.
    try:
        return libvirtd_answers(uri)
    except subprocess.TimeoutExpired:
        return False


def _groups() -> list[str]:
    """The kvm group, so that the daemon's qemu opens /dev/kvm (else guests run on TCG)."""
    try:
        return [f"--groups={grp.getgrnam('kvm').gr_gid}"]
    except KeyError:
        return ["--clear-groups"]


def stop_session_libvirtd(session: SessionLibvirt) -> None:
    """Remove the daemon's domains (their qemu processes would outlive it) and pools, stop the
    daemon by its PID, and remove its directory."""
    try:
        if session.process.alive():
            _remove_objects(session.uri)
    finally:
        session.process.stop()
        shutil.rmtree(session.root, ignore_errors=True)


def _remove_objects(uri: str) -> None:
    conn = libvirt.open(uri)
    try:
        for domain in conn.listAllDomains():
            remove_domain(conn, domain.name())
        for pool in conn.listAllStoragePools():
            if pool.isActive():
                pool.destroy()
            if pool.isPersistent():
                pool.undefine()
    finally:
        conn.close()


@contextmanager
def session_libvirtd(parent: Path) -> Iterator[SessionLibvirt]:
    session = start_session_libvirtd(parent)
    try:
        yield session
    finally:
        stop_session_libvirtd(session)
