"""``render_domain_xml``: the whole ``<domain>`` from a resolved spec, deterministic and indented.

Every value passes through ElementTree, which escapes it; nothing is formatted into XML by hand.
A cdrom or PXE install has two phases, as with virt-install: the install XML boots the media and
stops the domain at its first reboot; the final XML (defined afterwards) boots the disk.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.domains.domxml.cpu import build_cpu, build_vcpu
from orchestrator.domains.domxml.disk import build_disk, build_scsi_controller, build_usb_controller
from orchestrator.domains.domxml.graphics import build_graphics, build_tablet, build_video
from orchestrator.domains.domxml.interface import build_interface
from orchestrator.domains.domxml.os_boot import Phase, build_os
from orchestrator.domains.domxml.resolved import ResolvedSpec
from orchestrator.domains.domxml.serial import (
    build_guest_agent_channel,
    build_serials,
    build_virtio_rng,
)

LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"


def render_domain_xml(
    resolved: ResolvedSpec, *, phase: Phase = "final", reveal_secrets: bool = False
) -> str:
    """The domain XML; ``reveal_secrets`` only for the copy handed to libvirt."""
    root = ET.Element("domain", type=resolved.domain_type)
    ET.SubElement(root, "name").text = resolved.name
    if resolved.uuid:
        ET.SubElement(root, "uuid").text = resolved.uuid
    if resolved.os_id:
        root.append(_libosinfo_metadata(resolved.os_id))
    kib = str(resolved.memory_mib * 1024)
    ET.SubElement(root, "memory", unit="KiB").text = kib
    ET.SubElement(root, "currentMemory", unit="KiB").text = kib
    root.append(build_vcpu(resolved.vcpus, resolved.cpuset))
    root.append(build_os(resolved.boot, phase))
    features = ET.SubElement(root, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    if resolved.cpu is not None:
        root.append(build_cpu(resolved.cpu))
    root.append(_clock(resolved.clock_offset))
    if phase == "install" and resolved.has_install_phase:
        # Stop at the installer's reboot so the job can switch to the final definition.
        ET.SubElement(root, "on_reboot").text = "destroy"
    root.append(_power_management())
    root.append(_devices(resolved, phase, reveal_secrets))
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def _libosinfo_metadata(os_id: str) -> ET.Element:
    # Prefixed names written as virt-install writes them, so libvirt keeps the prefix.
    metadata = ET.Element("metadata")
    info = ET.SubElement(metadata, "libosinfo:libosinfo", {"xmlns:libosinfo": LIBOSINFO_NS})
    ET.SubElement(info, "libosinfo:os", id=os_id)
    return metadata


def _clock(offset: str) -> ET.Element:
    # virt-install's timers: catch up a lagging RTC, delay PIT ticks, no HPET.
    clock = ET.Element("clock", offset=offset)
    ET.SubElement(clock, "timer", name="rtc", tickpolicy="catchup")
    ET.SubElement(clock, "timer", name="pit", tickpolicy="delay")
    ET.SubElement(clock, "timer", name="hpet", present="no")
    return clock


def _power_management() -> ET.Element:
    pm = ET.Element("pm")
    ET.SubElement(pm, "suspend-to-mem", enabled="no")
    ET.SubElement(pm, "suspend-to-disk", enabled="no")
    return pm


def _devices(resolved: ResolvedSpec, phase: Phase, reveal_secrets: bool) -> ET.Element:
    devices = ET.Element("devices")
    after_install = phase == "final" and resolved.has_install_phase
    for disk in resolved.disks:
        devices.append(build_disk(disk, empty=after_install and disk.install_media))
    if resolved.usb_model:
        devices.append(build_usb_controller(resolved.usb_model))
    if resolved.scsi_controller:
        devices.append(build_scsi_controller())
    devices.extend(build_interface(iface) for iface in resolved.interfaces)
    devices.extend(build_serials(resolved.serials))
    if resolved.guest_agent_channel:
        devices.append(build_guest_agent_channel())
    if resolved.graphics is not None:
        devices.append(build_tablet())
        devices.append(build_graphics(resolved.graphics, reveal_secrets=reveal_secrets))
    if resolved.video_model:
        devices.append(build_video(resolved.video_model))
    if resolved.virtio_rng:
        devices.append(build_virtio_rng())
    return devices
