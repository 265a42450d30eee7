"""Start (when needed) and probe the machine's real libvirtd for ``qemu:///system`` tests."""

from __future__ import annotations

import shutil
import subprocess
import time

import libvirt

QEMU_URI = "qemu:///system"


def libvirtd_answers(uri: str = QEMU_URI) -> bool:
    if not shutil.which("virsh"):
        return False
    probe = subprocess.run(
        ["virsh", "-c", uri, "version"], capture_output=True, timeout=20, check=False
    )
    return probe.returncode == 0


def ensure_libvirtd(uri: str = QEMU_URI) -> str | None:
    """Start virtlogd and libvirtd as daemons when they are not running (there is no systemd).

    Returns None when libvirtd answers, else the reason it cannot, for the skip message.
    """
    if libvirtd_answers(uri):
        return None
    if not shutil.which("libvirtd"):
        return "libvirtd is not installed (Debian package libvirt-daemon-system)"
    for daemon in ("virtlogd", "libvirtd"):
        if subprocess.run(["pgrep", "-x", daemon], capture_output=True).returncode != 0:
            subprocess.run([daemon, "-d"], check=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if libvirtd_answers(uri):
            return None
        time.sleep(0.3)
    return f"libvirtd does not answer on {uri}"


def remove_domain(conn: libvirt.virConnect, name: str) -> None:
    """Stop and undefine domain ``name`` if it exists: what a test's teardown wants."""
    try:
        domain = conn.lookupByName(name)
        if domain.isActive():
            domain.destroy()
        if domain.isPersistent():
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
