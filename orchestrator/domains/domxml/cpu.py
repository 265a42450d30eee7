"""``<vcpu>`` and ``<cpu>``: how many vCPUs, where they may run, and what CPU they show."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.domains.spec import CpuSpec


def build_vcpu(vcpus: int, cpuset: str | None) -> ET.Element:
    el = ET.Element("vcpu", {"cpuset": cpuset} if cpuset else {})
    el.text = str(vcpus)
    return el


def build_cpu(cpu: CpuSpec) -> ET.Element:
    """The CPU element; a custom model may fall back and is not checked against the host,
    which is what runs under nested KVM (host-passthrough aborts there)."""
    if cpu.mode != "custom":
        return ET.Element("cpu", mode=cpu.mode)
    el = ET.Element("cpu", mode="custom", match="exact", check="none")
    ET.SubElement(el, "model", fallback="allow").text = cpu.model
    for feature in cpu.disabled_features:
        ET.SubElement(el, "feature", policy="disable", name=feature)
    return el
