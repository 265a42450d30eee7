"""What the hypervisor contributes to a domain definition, and the checks against its limits.

Reads libvirt's capabilities into :class:`~workers.domxml.HostDefaults` (KVM or TCG, machine
types, the configured CPU) and refuses, before anything is created, a spec the host cannot run:
more vCPUs or memory than it has, a network or bridge it lacks.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import replace
from typing import Literal

import libvirt

from orchestrator.domains.spec import DomainSpec
from orchestrator.domains.virtinstall import cpu_from_setting
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.settings import Settings
from workers.domxml import HostDefaults


def host_defaults(
    conn: libvirt.virConnect,
    settings: Settings,
    *,
    known_formats: Mapping[str, str] | None = None,
    seed_dir: str | None = None,
) -> HostDefaults:
    caps = ET.fromstring(conn.getCapabilities())
    arch = caps.findtext("host/cpu/arch") or "x86_64"
    guest = caps.find(f"guest/arch[@name='{arch}']")
    machines: set[str] = set()
    domain_types: set[str] = set()
    if guest is not None:
        machines = {m.text or "" for m in guest.iterfind("machine")}
        machines |= {m.get("canonical", "") for m in guest.iterfind("machine")}
        domain_types = {d.get("type", "") for d in guest.iterfind("domain")}
    domain_type: Literal["kvm", "qemu"] = (
        "kvm" if "kvm" in domain_types and _kvm_usable(conn, arch) else "qemu"
    )
    defaults = HostDefaults(
        domain_type=domain_type,
        arch=arch,
        cpu=cpu_from_setting(settings.cpu_mode),
        machines=tuple(sorted(m for m in machines if m)),
        known_formats=dict(known_formats or {}),
    )
    return replace(defaults, seed_dir=seed_dir) if seed_dir is not None else defaults


def _kvm_usable(conn: libvirt.virConnect, arch: str) -> bool:
    """Whether libvirt can start KVM guests here (``/dev/kvm`` exists and qemu may open it)."""
    if not os.path.exists("/dev/kvm"):
        return False
    try:
        conn.getDomainCapabilities(None, arch, None, "kvm", 0)
    except libvirt.libvirtError:
        return False
    return True


def check_host_limits(conn: libvirt.virConnect, spec: DomainSpec) -> None:
    """InvalidInput when the spec asks for more vCPUs or memory than the host has."""
    _model, memory_mib, cpus, *_ = conn.getInfo()
    if spec.vcpus is not None and spec.vcpus > cpus:
        _invalid("params.vcpus", f"{spec.vcpus} vCPUs are more than the host's {cpus} CPUs")
    if spec.memory_mib > memory_mib:
        _invalid(
            "params.memory_mib",
            f"{spec.memory_mib} MiB is more than the host's {memory_mib} MiB of memory",
        )


def check_networks(conn: libvirt.virConnect, spec: DomainSpec) -> None:
    """Every NIC's libvirt network exists and runs; every bridge exists on the host."""
    for index, nic in enumerate(spec.networks):
        field = f"params.networks.{index}.source"
        if nic.type == "bridge":
            if not os.path.isdir(f"/sys/class/net/{nic.source}"):
                _invalid(field, f"the host has no bridge {nic.source!r}")
            continue
        try:
            network = conn.networkLookupByName(nic.source)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                raise
            known = ", ".join(sorted(n.name() for n in conn.listAllNetworks())) or "none"
            _invalid(field, f"no libvirt network {nic.source!r} (known: {known})")
        if not network.isActive():
            raise Conflict(
                f"libvirt network {nic.source!r} is not running; start it first "
                f"(virsh net-start {nic.source})",
                network=nic.source,
            )


def _invalid(field: str, message: str) -> None:
    raise InvalidInput(message, errors=[{"field": field, "message": message}])
