"""``<os>``: machine type, boot devices for the install or final phase, or a direct kernel."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Literal

from orchestrator.domains.domxml.resolved import ResolvedBoot

Phase = Literal["install", "final"]


def build_os(boot: ResolvedBoot, phase: Phase = "final") -> ET.Element:
    el = ET.Element("os")
    ET.SubElement(el, "type", arch=boot.arch, machine=boot.machine).text = "hvm"
    if boot.kernel is not None:
        ET.SubElement(el, "kernel").text = boot.kernel.kernel
        if boot.kernel.initrd:
            ET.SubElement(el, "initrd").text = boot.kernel.initrd
        if boot.kernel.cmdline:
            ET.SubElement(el, "cmdline").text = boot.kernel.cmdline
    devices = boot.boot_devices
    if phase == "install" and boot.install_boot_devices is not None:
        devices = boot.install_boot_devices
    for dev in devices:
        ET.SubElement(el, "boot", dev=dev)
    return el
