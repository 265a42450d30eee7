"""libvirt as the oracle of our domain XML: its own parser reads a document on ``test:///default``
and its dump is what libvirt understood, independent of the code that wrote the document.

Three questions are asked of that dump: did libvirt keep every element and attribute we wrote
(``lost_in_libvirt``); do the parts a user cares about read the same after the defaults libvirt
fills in (``semantic_differences``); and does it hold what the spec asked for, read from the
spec as the API takes it rather than from our resolved model (``unmet_requests``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from typing import Any

import libvirt

from orchestrator.domains.domxml import HostDefaults
from tests.domains.summary import summarize, without_random_macs

_INACTIVE_WITH_SECRETS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
# libvirt generates a guest agent channel's socket path when the domain starts; an inactive
# definition omits the empty ``<source mode="bind"/>`` that asks for it.
_GENERATED_AT_START = re.compile(r"/channel\[\d+\]/source\[0\]$")


class _PoolNames(dict[str, str]):
    """Pool name -> itself, so a pool volume summarizes as ``pool/volume`` on both sides."""

    def __missing__(self, key: str) -> str:
        return key


def libvirt_view(conn: libvirt.virConnect, xml: str) -> str:
    """libvirt's dump of ``xml`` defined on ``conn`` (a private ``test:///default``)."""
    domain = conn.defineXML(xml)
    try:
        return str(domain.XMLDesc(_INACTIVE_WITH_SECRETS))
    finally:
        domain.undefine()


def cpus(cpuset: str | None) -> set[int] | None:
    """The host CPUs a libvirt cpuset (``1-3,^2``) names."""
    if cpuset is None:
        return None
    chosen: set[int] = set()
    for part in cpuset.split(","):
        first, _, last = part.lstrip("^").partition("-")
        span = set(range(int(first), int(last or first) + 1))
        chosen = chosen - span if part.startswith("^") else chosen | span
    return chosen


def lost_in_libvirt(ours: str, theirs: str) -> list[str]:
    """Each element, attribute or text of ``ours`` that libvirt's dump ``theirs`` lacks or
    changed; libvirt may add defaults, but dropping what we wrote means it did not read it."""
    return _lost(ET.fromstring(ours), ET.fromstring(theirs), "domain")


def _lost(ours: ET.Element, theirs: ET.Element, path: str) -> list[str]:
    lost = [
        f"{path}/@{key}={value!r}, libvirt has {theirs.get(key)!r}"
        for key, value in ours.attrib.items()
        if not _same_attribute(key, value, theirs.get(key))
    ]
    if (ours.text or "").strip() != (theirs.text or "").strip():
        lost.append(f"{path} text {ours.text!r}, libvirt has {theirs.text!r}")
    seen: Counter[str] = Counter()
    for child in ours:
        where = f"{path}/{child.tag}[{seen[child.tag]}]"
        match = _counterpart(child, theirs, seen[child.tag])
        seen[child.tag] += 1
        if match is not None:
            lost += _lost(child, match, where)
        elif not (_GENERATED_AT_START.search(where) and child.attrib == {"mode": "bind"}):
            lost.append(f"{where} dropped")
    return lost


def _same_attribute(key: str, ours: str, theirs: str | None) -> bool:
    if key == "cpuset":  # libvirt writes the set in its canonical form: 1-3,^2 -> 1,3
        return cpus(ours) == cpus(theirs)
    return ours == theirs


def _counterpart(child: ET.Element, theirs: ET.Element, index: int) -> ET.Element | None:
    if child.tag == "disk":  # libvirt sorts disks by bus and target
        return theirs.find(f"disk/target[@dev='{_target(child)}']/..")
    candidates = theirs.findall(child.tag)
    return candidates[index] if index < len(candidates) else None


def _target(disk: ET.Element) -> str:
    target = disk.find("target")
    assert target is not None, "a disk without a target"
    return target.get("dev", "")


def semantic_differences(ours: str, theirs: str) -> dict[str, tuple[Any, Any]]:
    """Summary field -> (ours, libvirt's) where they differ, after libvirt's own defaults."""
    macs = {m.get("address", "") for m in ET.fromstring(ours).iterfind("devices/interface/mac")}
    mine, other = (_normalized(summarize(xml, _PoolNames()), macs) for xml in (ours, theirs))
    return {key: (mine[key], other[key]) for key in mine if mine[key] != other[key]}


def _normalized(summary: dict[str, Any], given_macs: set[str]) -> dict[str, Any]:
    summary = without_random_macs(summary, given_macs)
    summary["cpuset"] = cpus(summary["cpuset"])
    summary["disks"] = sorted(summary["disks"], key=lambda d: d["target"])
    # libvirt's defaults: restart on reboot; boot from the first disk.
    summary["on_reboot"] = summary["on_reboot"] or "restart"
    summary["os"]["boot"] = summary["os"]["boot"] or ["hd"]
    # A serial console is serial port 0: libvirt writes each of the pair when given the other.
    serials, consoles = summary.pop("serials"), summary.pop("consoles")
    summary["serial_ports"] = serials or consoles
    return summary


def unmet_requests(
    raw: Mapping[str, Any], host: HostDefaults, final: str, install: str | None
) -> list[str]:
    """What ``raw`` (a spec as the API takes it) states that libvirt's dumps of the final and
    install-phase XML do not hold. Only stated values are checked, not our defaults."""
    seen = summarize(final, _PoolNames())
    unmet: list[str] = []

    def want(what: str, asked: Any, got: Any) -> None:
        if asked != got:
            unmet.append(f"{what}: asked {asked!r}, libvirt has {got!r}")

    want("name", raw["name"], seen["name"])
    want("uuid", raw.get("uuid"), ET.fromstring(final).findtext("uuid"))
    want("memory", raw["memory_mib"] * 1024, seen["memory_kib"])
    if "vcpus" in raw:
        want("vcpus", str(raw["vcpus"]), seen["vcpus"])
    if "cpuset" in raw:
        want("cpuset", cpus(raw["cpuset"]), cpus(seen["cpuset"]))
    want("domain type", raw.get("virt_type", host.domain_type), seen["type"])
    asked_cpu, seen_cpu = _asked_cpu(raw, host), seen["cpu"]
    want(
        "cpu",
        asked_cpu,
        {k: seen_cpu[k] for k in asked_cpu} if asked_cpu and seen_cpu else seen_cpu,
    )
    _check_disks(raw, seen["disks"], want)
    want("interfaces", _asked_interfaces(raw), _seen_interfaces(raw, seen["interfaces"]))
    want("graphics", _asked_graphics(raw), seen["graphics"])
    if raw.get("serials"):
        want("serials", [_asked_serial(s) for s in raw["serials"]], seen["serials"])
    _check_boot(raw, seen["os"], install, want)
    return unmet


def _asked_cpu(raw: Mapping[str, Any], host: HostDefaults) -> dict[str, Any] | None:
    if "cpu" in raw:
        return {"mode": raw["cpu"]["mode"]}
    # The hypervisor's CPU setting is for KVM guests; a TCG guest gets QEMU's emulated default.
    if host.cpu is None or raw.get("virt_type", host.domain_type) != "kvm":
        return None
    model = host.cpu.model if host.cpu.mode == "custom" else None
    return {"mode": host.cpu.mode, "model": model, "disabled": sorted(host.cpu.disabled_features)}


def _check_disks(raw: Mapping[str, Any], disks: list[dict[str, Any]], want: Any) -> None:
    by_path = {d["path"]: d for d in disks}
    for index, disk in enumerate(raw.get("disks", ())):
        path = _disk_path(raw["name"], disk)
        got = by_path.get(path)
        if got is None:
            want(f"disk {index}", path, None)
            continue
        stated = {k: disk[k] for k in ("device", "format", "bus", "cache", "readonly") if k in disk}
        want(f"disk {index} ({path})", stated, {k: got[k] for k in stated})
    if "cloud_init" in raw:
        seed = f"/{raw['name']}-cidata.iso"
        cdroms = [d["path"] for d in disks if d["device"] == "cdrom"]
        want("cloud-init seed cdrom", True, any((p or "").endswith(seed) for p in cdroms))


def _disk_path(name: str, disk: Mapping[str, Any]) -> str:
    source = disk["source"]
    if source["type"] == "path":
        return str(source["path"])
    if source["type"] == "volume":
        return f"{source['pool']}/{source['volume']}"
    volume = source.get("name") or f"{name}.{disk.get('format', 'qcow2')}"
    return f"{source['pool']}/{volume}"


def _asked_interfaces(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    asked = []
    for nic in raw.get("networks", [{}]):
        kind = nic.get("type", "network")
        entry = {"type": kind, "source": {kind: nic.get("source", "default")}}
        entry |= {k: nic[k].lower() for k in ("model", "mac") if k in nic}
        asked.append(entry)
    return asked


def _seen_interfaces(raw: Mapping[str, Any], seen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stated = [nic.keys() & {"model", "mac"} for nic in raw.get("networks", [{}])]
    if len(stated) != len(seen):
        return seen
    return [
        {"type": s["type"], "source": s["source"]} | {k: s[k] for k in keys}
        for s, keys in zip(seen, stated, strict=True)
    ]


def _asked_graphics(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    graphics = raw.get("graphics", {})
    if graphics.get("type") == "none":
        return []
    port = graphics.get("port")
    return [
        {
            "type": graphics.get("type", "vnc"),
            "listen": graphics.get("listen"),
            "port": str(port) if port else "auto",
            # Shown XML never carries the display password.
            "password": None,
        }
    ]


def _asked_serial(serial: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": serial.get("type", "pty"), "path": serial.get("path")}


def _check_boot(
    raw: Mapping[str, Any], final_os: dict[str, Any], install: str | None, want: Any
) -> None:
    kernel = raw.get("kernel")
    if kernel:
        asked = {k: kernel.get(k) for k in ("kernel", "initrd", "cmdline")}
        want("direct kernel boot", asked, {k: final_os[k] for k in asked})
    elif raw.get("boot_order"):
        want("boot order", list(raw["boot_order"]), final_os["boot"])
    else:
        want("first boot device", ["hd"], final_os["boot"][:1])
    first = {"cdrom": "cdrom", "pxe": "network"}.get(raw["boot_source"])
    if first is None:
        want("install phase", False, install is not None)
        return
    assert install is not None, f"boot_source {raw['boot_source']} has an install phase"
    installing = summarize(install, _PoolNames())
    want("install boot device", first, installing["os"]["boot"][0])
    if "cdrom" in raw:
        cdrom = {"device": "cdrom", "path": _disk_path(raw["name"], {"source": raw["cdrom"]})}
        media = [{k: d[k] for k in cdrom} for d in installing["disks"]]
        want("installation media", True, cdrom in media)
