"""What the hypervisor contributes to a domain definition, and the checks against its limits.

Reads libvirt's capabilities into :class:`~orchestrator.domains.domxml.HostDefaults` (KVM or
TCG, machine types, the guest CPU: the configured one, or with ``auto`` the best that booted when
the worker started) and refuses, before anything is created, a spec the host cannot run: more
vCPUs or memory than it has, a CPU mode seen failing to start, a network or bridge it lacks. The
host's facts are probed once per libvirt connection, not once per job: they change only with the
host's hardware or qemu, and a worker reopens its connection when libvirtd restarts, which probes
them again.
"""

from __future__ import annotations

import os
import threading
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import libvirt
from pydantic import ValidationError

from orchestrator.domains.domxml import HostDefaults
from orchestrator.domains.spec import CpuSpec, DomainSpec
from orchestrator.domains.virtinstall import cpu_from_setting
from orchestrator.errors import Conflict, InvalidInput
from orchestrator.settings import Settings
from workers.domains.cpu_probe import CpuModes, chosen_cpu, learn_cpu_modes


@dataclass(frozen=True)
class HostFacts:
    """What a libvirt connection's host offers guests, as its capabilities and node info say."""

    arch: str
    domain_type: Literal["kvm", "qemu"]
    machines: tuple[str, ...]
    cpus: int
    memory_mib: int
    # The guest CPUs seen to boot when the worker started; None when it did not learn them.
    cpu_modes: CpuModes | None = None


class HostFactsCache:
    """The facts of each libvirt connection's host, probed on the connection's first use and
    then reused; a reopened connection (libvirtd restarted) is probed again. The guest CPU
    modes are the hypervisor's, learned once by the worker's start-up for every connection."""

    def __init__(self) -> None:
        self._facts: weakref.WeakKeyDictionary[libvirt.virConnect, HostFacts] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self.cpu_modes: CpuModes | None = None

    def get(self, conn: libvirt.virConnect) -> HostFacts:
        with self._lock:  # one probe per connection even when many jobs start at once
            facts = self._facts.get(conn)
            if facts is None or facts.cpu_modes is not self.cpu_modes:
                facts = replace(facts or _probe(conn), cpu_modes=self.cpu_modes)
                self._facts[conn] = facts
            return facts

    def learn_cpu_modes(self, conn: libvirt.virConnect, var_dir: Path) -> CpuModes:
        """Which guest CPU modes boot on ``conn``'s host, recorded in ``var_dir`` or probed by
        starting tiny domains; every job's facts carry them from then on."""
        facts = self.get(conn)
        modes = learn_cpu_modes(conn, facts.domain_type, facts.arch, var_dir)
        with self._lock:
            self.cpu_modes = modes
        return modes


def _probe(conn: libvirt.virConnect) -> HostFacts:
    caps = ET.fromstring(conn.getCapabilities())
    arch = caps.findtext("host/cpu/arch") or "x86_64"
    guest = caps.find(f"guest/arch[@name='{arch}']")
    machines: set[str] = set()
    domain_types: set[str] = set()
    if guest is not None:
        machines = {m.text or "" for m in guest.iterfind("machine")}
        machines |= {m.get("canonical", "") for m in guest.iterfind("machine")}
        domain_types = {d.get("type", "") for d in guest.iterfind("domain")}
    kvm = "kvm" in domain_types and _kvm_usable(conn, arch)
    _model, memory_mib, cpus, *_ = conn.getInfo()
    return HostFacts(
        arch=arch,
        domain_type="kvm" if kvm else "qemu",
        machines=tuple(sorted(m for m in machines if m)),
        cpus=cpus,
        memory_mib=memory_mib,
    )


def host_defaults(
    facts: HostFacts,
    settings: Settings,
    *,
    known_formats: Mapping[str, str] | None = None,
    seed_dir: str | None = None,
) -> HostDefaults:
    defaults = HostDefaults(
        domain_type=facts.domain_type,
        arch=facts.arch,
        cpu=default_cpu(facts, settings),
        machines=facts.machines,
        known_formats=dict(known_formats or {}),
    )
    return replace(defaults, seed_dir=seed_dir) if seed_dir is not None else defaults


def default_cpu(facts: HostFacts, settings: Settings) -> CpuSpec | None:
    """The guest CPU of a spec that names none; None leaves it to libvirt (``auto`` before the
    worker learned what boots)."""
    value = chosen_cpu(settings.cpu_mode, facts.cpu_modes)
    return cpu_from_setting(value) if value is not None else None


def _kvm_usable(conn: libvirt.virConnect, arch: str) -> bool:
    """Whether libvirt can start KVM guests here (``/dev/kvm`` exists and qemu may open it)."""
    if not os.path.exists("/dev/kvm"):
        return False
    try:
        conn.getDomainCapabilities(None, arch, None, "kvm", 0)
    except libvirt.libvirtError:
        return False
    return True


def check_host_limits(facts: HostFacts, spec: DomainSpec) -> None:
    """InvalidInput when the spec asks for more vCPUs or memory than the host has, or for a
    guest CPU that failed to start when the worker probed it."""
    check_cpu(facts, spec)
    if spec.vcpus is not None and spec.vcpus > facts.cpus:
        raise InvalidInput.of(
            "params.vcpus", f"{spec.vcpus} vCPUs are more than the host's {facts.cpus} CPUs"
        )
    if spec.memory_mib > facts.memory_mib:
        raise InvalidInput.of(
            "params.memory_mib",
            f"{spec.memory_mib} MiB is more than the host's {facts.memory_mib} MiB of memory",
        )


def check_cpu(facts: HostFacts, spec: DomainSpec) -> None:
    """InvalidInput naming the modes that boot when ``spec.cpu`` is one seen failing to start:
    qemu would otherwise abort with an assertion (nested KVM and host-passthrough)."""
    refusal = _cpu_refusal(facts.cpu_modes, spec.cpu)
    if refusal is not None:
        raise InvalidInput.of("params.cpu", refusal)


def check_defined_cpu(facts: HostFacts, domain: libvirt.virDomain) -> None:
    """The same refusal for a domain already defined, before it is started: its definition
    may predate what the worker learned, or come from elsewhere."""
    root = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    refusal = _cpu_refusal(facts.cpu_modes, _defined_cpu(root.find("cpu")))
    if refusal is not None:
        raise InvalidInput.of(
            "params.name",
            f"domain {domain.name()}: {refusal}; its definition needs one of them to start here",
        )


def _cpu_refusal(modes: CpuModes | None, cpu: CpuSpec | None) -> str | None:
    refused = modes.refusal(cpu) if modes is not None and cpu is not None else None
    if modes is None or refused is None:
        return None
    boots = ", ".join(modes.boots) or "none"
    return (
        f"cpu {refused} does not boot on this hypervisor (a probe domain with it failed to "
        f"start: {modes.refused[refused]}); CPUs that boot here, best first: {boots}"
    )


def _defined_cpu(element: ET.Element | None) -> CpuSpec | None:
    """A definition's ``<cpu>`` as a spec; None when it has none or one no candidate can be
    (another mode, a model without a name): nothing is known against it."""
    if element is None:
        return None
    disabled = tuple(
        f.get("name", "") for f in element.iterfind("feature") if f.get("policy") == "disable"
    )
    try:
        return CpuSpec.model_validate(
            {
                "mode": element.get("mode", "custom"),
                "model": element.findtext("model"),
                "disabled_features": disabled,
            }
        )
    except ValidationError:
        return None


def check_networks(conn: libvirt.virConnect, spec: DomainSpec) -> None:
    """Every NIC's libvirt network exists and runs; every bridge exists on the host."""
    for index, nic in enumerate(spec.networks):
        field = f"params.networks.{index}.source"
        if nic.type == "bridge":
            if not os.path.isdir(f"/sys/class/net/{nic.source}"):
                raise InvalidInput.of(field, f"the host has no bridge {nic.source!r}")
            continue
        try:
            network = conn.networkLookupByName(nic.source)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                raise
            known = ", ".join(sorted(n.name() for n in conn.listAllNetworks())) or "none"
            raise InvalidInput.of(
                field, f"no libvirt network {nic.source!r} (known: {known})"
            ) from None
        if not network.isActive():
            raise Conflict(
                f"libvirt network {nic.source!r} is not running; start it first "
                f"(virsh net-start {nic.source})",
                network=nic.source,
            )
