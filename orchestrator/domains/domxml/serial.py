"""Serial ports, the console, and the guest agent's channel."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.domains.domxml.resolved import ResolvedSerial


def build_serials(serials: tuple[ResolvedSerial, ...]) -> list[ET.Element]:
    """Each serial port; without any, a pty console as virt-install adds by default."""
    if not serials:
        return [ET.Element("console", type="pty")]
    return [_serial(serial) for serial in serials]


def _serial(serial: ResolvedSerial) -> ET.Element:
    el = ET.Element("serial", type=serial.type)
    if serial.type == "file" and serial.path:
        ET.SubElement(el, "source", path=serial.path)
    return el


def build_guest_agent_channel() -> ET.Element:
    """The virtio channel qemu-guest-agent talks on; libvirt picks the socket path."""
    el = ET.Element("channel", type="unix")
    ET.SubElement(el, "source", mode="bind")
    ET.SubElement(el, "target", type="virtio", name="org.qemu.guest_agent.0")
    return el


def build_virtio_rng() -> ET.Element:
    el = ET.Element("rng", model="virtio")
    ET.SubElement(el, "backend", model="random").text = "/dev/urandom"
    return el
