"""Find a domain and describe it as libvirt reports it: state, CPUs, memory, devices, VNC, and
its addresses and how far it is towards being reachable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import libvirt

from orchestrator.errors import NotFound
from workers.domains.addresses import guest_addresses, primary_address
from workers.facts import domain_state_name

LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"


def find_domain(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    """The domain called ``name``, or None when the hypervisor has none."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def require_domain(conn: libvirt.virConnect, name: str) -> libvirt.virDomain:
    domain = find_domain(conn, name)
    if domain is None:
        raise NotFound(f"domain {name!r} does not exist on this hypervisor", name=name)
    return domain


def state_of(domain: libvirt.virDomain) -> str:
    """libvirt's state name: running, paused, shutoff, ..."""
    state, _reason = domain.state()
    return domain_state_name(state)


def describe_domain(domain: libvirt.virDomain) -> dict[str, Any]:
    """What ``GET /v1/domains/<hv>/<name>`` shows; the live XML when running, else the config."""
    state, _max_kib, memory_kib, vcpus, _cpu_time = domain.info()
    root = ET.fromstring(domain.XMLDesc(0))
    persistent = bool(domain.isPersistent())
    addresses = guest_addresses(domain, root) if state == libvirt.VIR_DOMAIN_RUNNING else []
    address = primary_address(addresses)
    return {
        "name": domain.name(),
        "uuid": domain.UUIDString(),
        "state": domain_state_name(state),
        "persistent": persistent,
        "autostart": bool(domain.autostart()) if persistent else False,
        "vcpus": vcpus,
        "memory_mib": memory_kib // 1024,
        "os_variant": _os_id(root),
        "disks": [_disk(domain.connect(), el) for el in root.iterfind("devices/disk")],
        "interfaces": [_interface(el) for el in root.iterfind("devices/interface")],
        "vnc": _vnc(root),
        "serials": [_serial(el) for el in root.iterfind("devices/serial")],
        "address": address,
        "addresses": [a.as_result() for a in addresses],
        "readiness": _readiness(state, address),
    }


def _readiness(state: int, address: str | None) -> str | None:
    """How far towards reachable, as vm.provision's ``wait_for`` names the steps: running,
    then an address. Whether SSH answers is probed only by the job that waits for it: a read
    connects to no guest."""
    if state != libvirt.VIR_DOMAIN_RUNNING:
        return None
    return "address" if address else "running"


def _os_id(root: ET.Element) -> str | None:
    found = root.find(f"metadata/{{{LIBOSINFO_NS}}}libosinfo/{{{LIBOSINFO_NS}}}os")
    return found.get("id") if found is not None else None


def _disk(conn: libvirt.virConnect, el: ET.Element) -> dict[str, Any]:
    source = el.find("source")
    attrs = dict(source.attrib) if source is not None else {}
    target = el.find("target")
    driver = el.find("driver")
    return {
        "device": el.get("device"),
        "target": target.get("dev") if target is not None else None,
        "bus": target.get("bus") if target is not None else None,
        "format": driver.get("type") if driver is not None else None,
        "path": attrs.get("file") or attrs.get("dev") or _volume_path(conn, attrs),
        "pool": attrs.get("pool"),
        "volume": attrs.get("volume"),
        "readonly": el.find("readonly") is not None,
    }


def _volume_path(conn: libvirt.virConnect, attrs: dict[str, str]) -> str | None:
    if not (attrs.get("pool") and attrs.get("volume")):
        return None
    try:
        return str(
            conn.storagePoolLookupByName(attrs["pool"])
            .storageVolLookupByName(attrs["volume"])
            .path()
        )
    except libvirt.libvirtError:
        return None  # the volume or its pool is gone; the disk still names it


def _interface(el: ET.Element) -> dict[str, Any]:
    source, mac, model = el.find("source"), el.find("mac"), el.find("model")
    attrs = source.attrib if source is not None else {}
    return {
        "type": el.get("type"),
        "source": attrs.get("network") or attrs.get("bridge"),
        "mac": mac.get("address") if mac is not None else None,
        "model": model.get("type") if model is not None else None,
    }


def _vnc(root: ET.Element) -> dict[str, Any] | None:
    graphics = root.find("devices/graphics[@type='vnc']")
    if graphics is None:
        return None
    port = int(graphics.get("port", "-1"))
    listen = graphics.get("listen")
    if listen is None:
        listen_el = graphics.find("listen[@type='address']")
        listen = listen_el.get("address") if listen_el is not None else None
    # Port -1 means "not yet chosen": the domain is not running.
    return {
        "host": listen or "127.0.0.1",
        "port": port if port > 0 else None,
        "display": port - 5900 if port >= 5900 else None,
    }


def _serial(el: ET.Element) -> dict[str, Any]:
    source = el.find("source")
    return {"type": el.get("type"), "path": source.get("path") if source is not None else None}
