"""libvirt volume XML: render the definition of a new volume, read back what libvirt reports.

XML is built with ElementTree, so every value is escaped; names and paths were validated before.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from orchestrator.storage.spec import VolumeState


@dataclass(frozen=True)
class VolumeDefinition:
    """Everything a new volume's XML says."""

    name: str
    capacity: int
    format: str
    allocation: int = 0
    backing_path: str | None = None
    backing_format: str | None = None
    owner: int | None = None
    group: int | None = None
    mode: str | None = None


@dataclass(frozen=True)
class VolumeFacts:
    """A volume as libvirt describes it."""

    name: str
    path: str
    format: str | None
    capacity: int
    allocation: int
    backing_path: str | None
    backing_format: str | None
    owner: int | None
    group: int | None
    mode: str | None

    @property
    def state(self) -> VolumeState:
        return VolumeState(
            format=self.format,
            capacity=self.capacity,
            allocation=self.allocation,
            backing_path=self.backing_path,
            owner=self.owner,
            group=self.group,
            mode=self.mode,
        )

    def as_result(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "capacity": self.capacity,
            "allocation": self.allocation,
            "backing": {"path": self.backing_path, "format": self.backing_format}
            if self.backing_path
            else None,
        }


def render_volume_xml(volume: VolumeDefinition) -> str:
    root = ET.Element("volume")
    ET.SubElement(root, "name").text = volume.name
    ET.SubElement(root, "capacity", unit="bytes").text = str(volume.capacity)
    ET.SubElement(root, "allocation", unit="bytes").text = str(volume.allocation)
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "format", type=volume.format)
    if volume.format == "qcow2":
        # libvirt would otherwise write the old 0.10 header; qemu-img's own default is 1.1.
        ET.SubElement(target, "compat").text = "1.1"
    _permissions(target, volume)
    if volume.backing_path:
        backing = ET.SubElement(root, "backingStore")
        ET.SubElement(backing, "path").text = volume.backing_path
        ET.SubElement(backing, "format", type=volume.backing_format or "raw")
    return ET.tostring(root, encoding="unicode")


def parse_volume_xml(xml: str) -> VolumeFacts:
    root = ET.fromstring(xml)
    backing = root.find("backingStore")
    return VolumeFacts(
        name=root.findtext("name") or "",
        path=root.findtext("target/path") or "",
        format=_format(root.find("target")),
        capacity=_bytes(root.find("capacity")),
        allocation=_bytes(root.find("allocation")),
        backing_path=backing.findtext("path") if backing is not None else None,
        backing_format=_format(backing),
        owner=_int(root.findtext("target/permissions/owner")),
        group=_int(root.findtext("target/permissions/group")),
        mode=root.findtext("target/permissions/mode"),
    )


def _permissions(target: ET.Element, volume: VolumeDefinition) -> None:
    if volume.owner is None and volume.group is None and volume.mode is None:
        return
    permissions = ET.SubElement(target, "permissions")
    if volume.mode is not None:
        ET.SubElement(permissions, "mode").text = volume.mode.rjust(4, "0")
    if volume.owner is not None:
        ET.SubElement(permissions, "owner").text = str(volume.owner)
    if volume.group is not None:
        ET.SubElement(permissions, "group").text = str(volume.group)


def _format(element: ET.Element | None) -> str | None:
    found = element.find("format") if element is not None else None
    return found.get("type") if found is not None else None


def _bytes(element: ET.Element | None) -> int:
    # libvirt always reports sizes in bytes (unit='bytes').
    return int(element.text) if element is not None and element.text else 0


def _int(text: str | None) -> int | None:
    return int(text) if text and text.lstrip("-").isdigit() else None
