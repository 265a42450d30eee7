"""Power actions on a domain, each an "ensure": look at the state, act only when needed.

Each function returns ``(changed, message)``; the handler reports the message and the domain.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import partial

import libvirt

from orchestrator.errors import Conflict, JobFailed
from workers.context import JobContext
from workers.domains.define import undefine_domain
from workers.domains.host import HostFacts, check_defined_cpu
from workers.domains.state import state_of
from workers.storage.managed import HostConfinement
from workers.storage.volumes import delete_volume, domains_using

Outcome = tuple[bool, str]


def start(domain: libvirt.virDomain, facts: HostFacts | None = None) -> Outcome:
    """Start the domain unless it runs. With the host's ``facts``, a domain whose CPU failed to
    boot when the worker probed it is refused (422) instead: qemu would abort as it starts."""
    state = state_of(domain)
    if state == "paused":
        raise Conflict(f"domain {domain.name()} is paused; resume it (domain.resume)")
    if domain.isActive():
        return False, f"domain {domain.name()} is already running"
    if facts is not None:
        check_defined_cpu(facts, domain)
    _call(domain.create, f"start domain {domain.name()}")
    return True, f"started domain {domain.name()}"


def shutdown(ctx: JobContext, domain: libvirt.virDomain, timeout: float, force: bool) -> Outcome:
    """Ask the guest to power off (ACPI) and wait; destroy after ``timeout`` when ``force``."""
    name = domain.name()
    if not domain.isActive():
        return False, f"domain {name} is already shut off"
    _call(domain.shutdown, f"shut down domain {name}")
    ctx.event(f"asked domain {name} to shut down; waiting up to {timeout:g}s")
    if _wait_inactive(ctx, domain, timeout):
        return True, f"domain {name} shut down"
    if not force:
        raise JobFailed(
            f"domain {name} did not shut down within {timeout:g}s; "
            "use force to destroy it after the timeout"
        )
    ctx.event(
        f"domain {name} did not shut down within {timeout:g}s; destroying it", level="warning"
    )
    _destroy(domain)
    return True, f"domain {name} destroyed after the shutdown timeout"


def reboot(domain: libvirt.virDomain, force: bool) -> Outcome:
    name = domain.name()
    if state_of(domain) != "running":
        raise Conflict(f"domain {name} is {state_of(domain)}, not running; nothing to reboot")
    if force:
        _call(lambda: domain.reset(0), f"reset domain {name}")
        return True, f"reset domain {name}"
    _call(lambda: domain.reboot(0), f"reboot domain {name}")
    return True, f"asked domain {name} to reboot"


def destroy(domain: libvirt.virDomain) -> Outcome:
    if not domain.isActive():
        return False, f"domain {domain.name()} is already shut off"
    _destroy(domain)
    return True, f"destroyed domain {domain.name()}"


def suspend(domain: libvirt.virDomain) -> Outcome:
    state = state_of(domain)
    if state == "paused":
        return False, f"domain {domain.name()} is already paused"
    if not domain.isActive():
        raise Conflict(f"domain {domain.name()} is {state}; only a running domain can be paused")
    _call(domain.suspend, f"pause domain {domain.name()}")
    return True, f"paused domain {domain.name()}"


def resume(domain: libvirt.virDomain) -> Outcome:
    state = state_of(domain)
    if state != "paused":
        if domain.isActive():
            return False, f"domain {domain.name()} is already running"
        raise Conflict(f"domain {domain.name()} is {state}; start it (domain.start)")
    _call(domain.resume, f"resume domain {domain.name()}")
    return True, f"resumed domain {domain.name()}"


def set_autostart(domain: libvirt.virDomain, autostart: bool) -> Outcome:
    if bool(domain.autostart()) == autostart:
        return False, f"autostart of domain {domain.name()} is already {autostart}"
    _call(lambda: domain.setAutostart(int(autostart)), f"set autostart of {domain.name()}")
    return True, f"autostart of domain {domain.name()} set to {autostart}"


def undefine(
    ctx: JobContext, domain: libvirt.virDomain, remove_storage: bool
) -> tuple[bool, str, list[str]]:
    """Remove a stopped domain's definition; with ``remove_storage`` its volumes too."""
    name = domain.name()
    if domain.isActive():
        raise Conflict(f"domain {name} is {state_of(domain)}; shut it down or destroy it first")
    volumes = _owned_volumes(ctx.libvirt, domain) if remove_storage else []
    confine = HostConfinement(ctx.libvirt, ctx.settings)
    removed = []
    # Volumes first, the definition last: a delete that fails leaves the domain defined, so the
    # same job again finds the disks still to delete, instead of a domain already gone.
    for volume in volumes:
        users = [user for user in domains_using(ctx.libvirt, volume) if user != name]
        if users:
            ctx.event(f"kept {volume.path()}: also a disk of {', '.join(users)}", level="warning")
            continue
        if not confine.is_managed_volume(volume):
            # A domain defined elsewhere may use disks no job may delete; keep them.
            ctx.event(
                f"kept {volume.path()}: not in a managed pool (ORCH_POOL_ROOTS)", level="warning"
            )
            continue
        path = volume.path()
        _call(partial(delete_volume, volume), f"delete volume {path}")
        removed.append(path)
        ctx.event(f"deleted volume {path}")
    _call(lambda: undefine_domain(domain), f"undefine domain {name}")
    return True, f"undefined domain {name}", removed


def _owned_volumes(
    conn: libvirt.virConnect, domain: libvirt.virDomain
) -> list[libvirt.virStorageVol]:
    """The domain's disks that are pool volumes, and its cloud-init seed (not other media)."""
    root = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    seed_name = f"{domain.name()}-cidata.iso"
    found = []
    for disk in root.iterfind("devices/disk"):
        source = disk.find("source")
        if source is None:
            continue
        volume = _volume_of(conn, source)
        if volume is None:
            continue
        if disk.get("device") == "disk" or volume.name() == seed_name:
            found.append(volume)
    return found


def _volume_of(conn: libvirt.virConnect, source: ET.Element) -> libvirt.virStorageVol | None:
    try:
        if source.get("pool") and source.get("volume"):
            pool = conn.storagePoolLookupByName(source.get("pool"))
            return pool.storageVolLookupByName(source.get("volume"))
        path = source.get("file") or source.get("dev")
        return conn.storageVolLookupByPath(path) if path else None
    except libvirt.libvirtError:
        return None  # not a volume of any pool: not ours to delete


def _wait_inactive(ctx: JobContext, domain: libvirt.virDomain, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not domain.isActive():
            return True
        if ctx.cancel_requested():
            raise JobFailed(f"cancelled while waiting for domain {domain.name()} to shut down")
        time.sleep(0.2)
    return not domain.isActive()


def _destroy(domain: libvirt.virDomain) -> None:
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        if domain.isActive():
            raise JobFailed(f"libvirt could not destroy domain {domain.name()}: {exc}") from None


def _call(action: Callable[[], object], what: str) -> None:
    try:
        action()
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt could not {what}: {exc}") from None
