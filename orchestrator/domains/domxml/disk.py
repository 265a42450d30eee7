"""``<disk>``: a volume, a file, or an empty cdrom drive."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.domains.domxml.resolved import ResolvedDisk


def build_disk(disk: ResolvedDisk, *, empty: bool = False) -> ET.Element:
    """The disk element; ``empty`` leaves a cdrom drive without media (after installing)."""
    if empty or disk.source_type is None:
        el = ET.Element("disk", type="file", device=disk.device)
    else:
        el = ET.Element("disk", type=disk.source_type, device=disk.device)
        ET.SubElement(el, "driver", _driver_attrs(disk))
        ET.SubElement(el, "source", _source_attrs(disk))
    ET.SubElement(el, "target", dev=disk.target, bus=disk.bus)
    if disk.readonly:
        ET.SubElement(el, "readonly")
    return el


def _driver_attrs(disk: ResolvedDisk) -> dict[str, str]:
    attrs = {"name": "qemu", "type": disk.driver_type}
    if disk.cache:
        attrs["cache"] = disk.cache
    if disk.discard_unmap:
        attrs["discard"] = "unmap"
    return attrs


def _source_attrs(disk: ResolvedDisk) -> dict[str, str]:
    if disk.source_type == "volume":
        return {"pool": disk.pool or "", "volume": disk.volume or ""}
    return {"file": disk.path or ""}


def build_scsi_controller() -> ET.Element:
    """virtio-scsi, the controller virt-install adds for disks on the scsi bus."""
    return ET.Element("controller", type="scsi", model="virtio-scsi")


def build_usb_controller(model: str) -> ET.Element:
    attrs = {"type": "usb", "model": model}
    if model == "qemu-xhci":
        attrs["ports"] = "15"
    return ET.Element("controller", attrs)
