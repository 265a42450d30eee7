"""Which guest CPU modes start on this hypervisor, learned when the worker starts.

libvirt accepts a host-passthrough or host-model definition on nested KVM, and then qemu aborts
as the vCPU starts ("failed to set MSR 0x10a"): only starting a domain tells. So the worker
starts a tiny transient domain per candidate (a few MiB of memory, no disk), lets its vCPU run,
destroys it, and keeps the outcome in ``var_dir`` keyed by the libvirt and hypervisor versions,
the host CPU and the URI: a restarted worker reads it instead of starting domains again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt

from orchestrator.domains.domxml.cpu import build_cpu
from orchestrator.domains.spec import CpuSpec
from orchestrator.domains.virtinstall import cpu_from_setting

log = logging.getLogger(__name__)

# ``--cpu`` values, best first: the host's own CPU, then the closest libvirt model of it, then
# a plain model without the nested-virtualization flag, which nested KVM runs.
CANDIDATES = ("host-passthrough", "host-model", "qemu64,-svm")
AUTO = "auto"
PROBE_PREFIX = "orch-cpu-probe-"
_PROBE_MEMORY_KIB = 16 * 1024
_RUN_TIMEOUT = 10.0
RECORDS_DIR = "cpu-modes"  # under the var dir: one JSON file per libvirt, qemu and host CPU
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z ")


@dataclass(frozen=True)
class CpuModes:
    """The candidates that started a domain (``--cpu`` values, best first) and why the others
    did not. ``probed_at`` is when the domains were started; ``cached`` says this worker read
    the outcome from ``var_dir`` instead."""

    boots: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)
    probed_at: float = 0.0
    cached: bool = False

    @property
    def best(self) -> str | None:
        return self.boots[0] if self.boots else None

    @property
    def modes(self) -> list[str]:
        """libvirt's mode names of the candidates that boot, best first (``custom`` for a
        model), as placement matches a job's CPU mode against them."""
        return list(dict.fromkeys(cpu_from_setting(value).mode for value in self.boots))

    def refusal(self, cpu: CpuSpec) -> str | None:
        """The candidate ``cpu`` asks for when that one failed to start, else None (it boots,
        or no candidate is that CPU: nothing is known against it)."""
        wanted = _comparable(cpu)
        return next((v for v in self.refused if _comparable(cpu_from_setting(v)) == wanted), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "boots": list(self.boots),
            "refused": dict(self.refused),
            "probed_at": self.probed_at,
            "cached": self.cached,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CpuModes:
        return cls(
            tuple(data["boots"]),
            dict(data["refused"]),
            float(data["probed_at"]),
            bool(data.get("cached", False)),
        )


def chosen_cpu(setting: str, modes: CpuModes | None) -> str | None:
    """The ``--cpu`` value jobs get by default: the setting as given, or with ``auto`` the
    best candidate that booted (None while unknown: libvirt's default then applies)."""
    if setting != AUTO:
        return setting
    return modes.best if modes is not None else None


def learn_cpu_modes(
    conn: libvirt.virConnect, domain_type: str, arch: str, var_dir: Path
) -> CpuModes:
    """The modes recorded for this hypervisor in ``var_dir``, else probed (and recorded when
    any candidate booted: a host where none does may be failing for another reason)."""
    key = probe_key(conn, domain_type, arch)
    path = var_dir / RECORDS_DIR / f"{hashlib.sha256(_canonical(key)).hexdigest()[:24]}.json"
    recorded = _read_recorded(path, key)
    if recorded is not None:
        return recorded
    modes = probe_cpu_modes(conn, domain_type, arch)
    if modes.boots:
        _record(path, key, modes)
    return modes


def probe_key(conn: libvirt.virConnect, domain_type: str, arch: str) -> dict[str, Any]:
    """What the outcome depends on: versions, the host CPU as libvirt describes it, the URI."""
    host_cpu = ET.fromstring(conn.getCapabilities()).find("host/cpu")
    described = ET.tostring(host_cpu) if host_cpu is not None else b""
    return {
        "uri": conn.getURI(),
        "libvirt": conn.getLibVersion(),
        "hypervisor": conn.getVersion(),
        "host_cpu_model": host_cpu.findtext("model") if host_cpu is not None else None,
        "host_cpu": hashlib.sha256(described).hexdigest(),
        "domain_type": domain_type,
        "arch": arch,
        "candidates": list(CANDIDATES),
    }


def probe_cpu_modes(conn: libvirt.virConnect, domain_type: str, arch: str) -> CpuModes:
    """Start a probe domain with each candidate CPU; the test driver accepts every one."""
    boots: list[str] = []
    refused: dict[str, str] = {}
    for candidate in CANDIDATES:
        reason = _start_probe(conn, probe_domain_xml(domain_type, arch, candidate))
        if reason is None:
            boots.append(candidate)
        else:
            refused[candidate] = reason
    log.info("guest CPUs that boot: %s; refused: %s", boots or "none", refused or "none")
    return CpuModes(tuple(boots), refused, time.time())


def probe_domain_xml(domain_type: str, arch: str, candidate: str) -> str:
    root = ET.Element("domain", type=domain_type)
    ET.SubElement(root, "name").text = f"{probe_name_prefix()}{uuid.uuid4().hex[:12]}"
    ET.SubElement(root, "memory", unit="KiB").text = str(_PROBE_MEMORY_KIB)
    ET.SubElement(root, "vcpu").text = "1"
    os_el = ET.SubElement(root, "os")
    ET.SubElement(os_el, "type", arch=arch).text = "hvm"
    root.append(build_cpu(cpu_from_setting(candidate)))
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        ET.SubElement(root, event).text = "destroy"
    devices = ET.SubElement(root, "devices")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(root, encoding="unicode")


def probe_name_prefix() -> str:
    """How this process's probe domains are named: an operator seeing one knows whose it is."""
    return f"{PROBE_PREFIX}{os.getpid()}-"


def _start_probe(conn: libvirt.virConnect, xml: str) -> str | None:
    """None when a domain from ``xml`` started and its vCPU ran; else why it did not."""
    try:
        domain = conn.createXML(xml, 0)
    except libvirt.libvirtError as exc:
        return _reason(str(exc))
    try:
        return _wait_until_ran(domain)
    finally:
        _destroy(domain)


def _wait_until_ran(domain: libvirt.virDomain) -> str | None:
    """qemu may also abort after libvirt let the vCPU go: the domain must outlive its first
    instructions. A domain still running when the wait ends counts as booting."""
    deadline = time.monotonic() + _RUN_TIMEOUT
    delay = 0.02
    while time.monotonic() < deadline:
        try:
            vcpus, _ = domain.vcpus()
        except libvirt.libvirtError:
            return "the probe domain stopped right after it started"
        if any(cpu_time > 0 for _, _, cpu_time, _ in vcpus):
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    return None


def _destroy(domain: libvirt.virDomain) -> None:
    try:
        domain.destroy()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (
            libvirt.VIR_ERR_NO_DOMAIN,
            libvirt.VIR_ERR_OPERATION_INVALID,
        ):
            log.warning("could not destroy CPU probe domain %s: %s", domain.name(), exc)


def _reason(message: str) -> str:
    """libvirt's message without qemu's assertion line and timestamps, which say nothing more."""
    lines = [_TIMESTAMP.sub("", line).strip() for line in message.splitlines() if line.strip()]
    kept = [line for line in lines if "Assertion" not in line] or lines
    text = " ".join(kept)
    return text if len(text) <= 400 else text[:397] + "..."


def _comparable(cpu: CpuSpec) -> tuple[str, str | None, frozenset[str]]:
    return cpu.mode, cpu.model, frozenset(cpu.disabled_features)


def _canonical(key: Mapping[str, Any]) -> bytes:
    return json.dumps(key, sort_keys=True).encode()


def _read_recorded(path: Path, key: Mapping[str, Any]) -> CpuModes | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != key:
            return None
        return CpuModes.from_json({**data, "cached": True})
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none recorded, or a file this version cannot read: probe again


def _record(path: Path, key: Mapping[str, Any], modes: CpuModes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")
        partial.write_text(json.dumps({"key": key, **modes.to_json()}), encoding="utf-8")
        os.replace(partial, path)  # another worker reading it sees a whole file or none
    except OSError as exc:
        log.warning("could not record the CPU probe in %s: %s", path, exc)
