"""``<graphics>`` with what a display needs beside it: a video card and a USB tablet.

The password is a secret: rendered only when the XML goes to libvirt. Shown XML (dry runs,
``--print-xml``) leaves ``passwd`` out, as ``virsh dumpxml`` does without ``--security-info``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from orchestrator.domains.domxml.resolved import ResolvedGraphics


def build_graphics(graphics: ResolvedGraphics, *, reveal_secrets: bool = False) -> ET.Element:
    attrs: dict[str, str] = {"type": graphics.type}
    if graphics.port is None:
        attrs["autoport"] = "yes"
    else:
        attrs["port"] = str(graphics.port)
        attrs["autoport"] = "no"
    if graphics.listen:
        attrs["listen"] = graphics.listen
    if graphics.password is not None and reveal_secrets:
        attrs["passwd"] = graphics.password.get_secret_value()
    return ET.Element("graphics", attrs)


def build_video(model: str) -> ET.Element:
    video = ET.Element("video")
    ET.SubElement(video, "model", type=model)
    return video


def build_tablet() -> ET.Element:
    # An absolute pointer keeps the guest's cursor under the viewer's.
    return ET.Element("input", type="tablet", bus="usb")
