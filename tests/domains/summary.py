"""A domain XML reduced to what the oracle comparison checks, the same for ours and virt-install's.

Left out on purpose, and why:
- uuid: random in virt-install's output.
- MAC addresses the command does not give: libvirt or virt-install generate them at random.
- the emulator path and the machine type's version (pc-i440fx-7.2): machine-specific; only the
  machine family (pc or q35) is compared.
- controllers (USB, PCIe root ports, SCSI), input, video, sound, redirdev, rng, memballoon and
  channels: helper devices virt-install adds from libvirt's domain capabilities, which libvirt
  also adds or defaults by itself; they do not change what the user asked for.
- features, clock, pm, currentMemory: the same constants on both sides, not user input.
- disk driver name, discard and cdrom driver of an empty drive: not part of the request.
- how a pool volume is referenced: virt-install writes the volume's file path, we write
  ``type="volume"`` (libvirt resolves it); both are reduced to the file path.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

_UNIT_KIB = {"KiB": 1, "k": 1, "K": 1, "MiB": 1024, "M": 1024, "GiB": 1024**2, "G": 1024**2}


def summarize(xml: str, pool_paths: Mapping[str, str]) -> dict[str, Any]:
    """The comparable parts of one ``<domain>``; ``pool_paths`` maps pool names to directories."""
    root = ET.fromstring(xml)
    memory = root.find("memory")
    assert memory is not None and memory.text
    vcpu = root.find("vcpu")
    assert vcpu is not None
    return {
        "name": root.findtext("name"),
        "type": root.get("type"),
        "memory_kib": int(memory.text) * _UNIT_KIB[memory.get("unit", "KiB")],
        "vcpus": vcpu.text,
        "cpuset": vcpu.get("cpuset"),
        "os": _os(root),
        "os_id": _libosinfo_id(root),
        "cpu": _cpu(root),
        "on_reboot": root.findtext("on_reboot"),
        "disks": [_disk(d, pool_paths) for d in root.iterfind("devices/disk")],
        "interfaces": [_interface(i) for i in root.iterfind("devices/interface")],
        "graphics": [_graphics(g) for g in root.iterfind("devices/graphics")],
        "serials": [_char(c) for c in root.iterfind("devices/serial")],
        "consoles": [_char(c) for c in root.iterfind("devices/console")],
    }


def _os(root: ET.Element) -> dict[str, Any]:
    os_el = root.find("os")
    assert os_el is not None
    machine = os_el.find("type")
    assert machine is not None
    return {
        "machine": "q35" if "q35" in (machine.get("machine") or "") else "pc",
        "boot": [b.get("dev") for b in os_el.iterfind("boot")],
        "kernel": os_el.findtext("kernel"),
        "initrd": os_el.findtext("initrd"),
        "cmdline": os_el.findtext("cmdline"),
    }


def _libosinfo_id(root: ET.Element) -> str | None:
    ns = "{http://libosinfo.org/xmlns/libvirt/domain/1.0}"
    found = root.find(f"metadata/{ns}libosinfo/{ns}os")
    return found.get("id") if found is not None else None


def _cpu(root: ET.Element) -> dict[str, Any] | None:
    cpu = root.find("cpu")
    if cpu is None:
        return None
    return {
        "mode": cpu.get("mode"),
        "model": cpu.findtext("model"),
        "disabled": sorted(
            f.get("name", "") for f in cpu.iterfind("feature") if f.get("policy") == "disable"
        ),
    }


def _disk(disk: ET.Element, pool_paths: Mapping[str, str]) -> dict[str, Any]:
    source = disk.find("source")
    driver = disk.find("driver")
    target = disk.find("target")
    assert target is not None
    path = None
    if source is not None:
        path = source.get("file")
        if source.get("pool"):
            path = f"{pool_paths[source.get('pool', '')]}/{source.get('volume')}"
    return {
        "device": disk.get("device"),
        "path": path,
        "format": driver.get("type") if driver is not None and path else None,
        "cache": driver.get("cache") if driver is not None else None,
        "target": target.get("dev"),
        "bus": target.get("bus"),
        "readonly": disk.find("readonly") is not None,
    }


def _interface(iface: ET.Element) -> dict[str, Any]:
    source = iface.find("source")
    model = iface.find("model")
    mac = iface.find("mac")
    return {
        "type": iface.get("type"),
        "source": dict(source.attrib) if source is not None else None,
        "model": model.get("type") if model is not None else None,
        "mac": mac.get("address") if mac is not None else None,
    }


def _graphics(graphics: ET.Element) -> dict[str, Any]:
    port = graphics.get("port")
    auto = graphics.get("autoport") == "yes" or port in (None, "-1")
    return {
        "type": graphics.get("type"),
        "listen": graphics.get("listen"),
        "port": "auto" if auto else port,
        "password": graphics.get("passwd"),
    }


def _char(char: ET.Element) -> dict[str, Any]:
    source = char.find("source")
    return {"type": char.get("type"), "path": source.get("path") if source is not None else None}


def without_random_macs(summary: dict[str, Any], given_macs: set[str]) -> dict[str, Any]:
    """The summary with MACs the command did not give blanked out."""
    for iface in summary["interfaces"]:
        if iface["mac"] not in given_macs:
            iface["mac"] = None
    return summary
