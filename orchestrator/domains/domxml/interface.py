"""``<interface>``: a NIC on a libvirt network or a host bridge."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.domains.domxml.resolved import ResolvedInterface


def build_interface(iface: ResolvedInterface) -> ET.Element:
    el = ET.Element("interface", type=iface.type)
    ET.SubElement(el, "source", {iface.type: iface.source})
    if iface.mac:
        ET.SubElement(el, "mac", address=iface.mac)
    ET.SubElement(el, "model", type=iface.model)
    return el
