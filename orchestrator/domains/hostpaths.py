"""Every path on the hypervisor a domain spec names, with the field naming it and its use.

The API refuses system directories among them (:mod:`orchestrator.kinds.domains`); the worker
resolves each one and checks it against its roots before defining anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.domains.devices import PathSource
from orchestrator.domains.spec import DomainSpec

# disk: a volume of a managed pool (disks and ISOs); read: a file only read (kernel, initrd,
# display password); console: a file the domain writes (a serial log).
Use = Literal["disk", "read", "console"]


@dataclass(frozen=True)
class HostPath:
    field: str
    path: str
    use: Use


def host_paths(spec: DomainSpec, prefix: str = "params") -> list[HostPath]:
    """The host paths of ``spec``, in the order of its fields."""
    found = [
        HostPath(f"{prefix}.disks.{index}.source.path", disk.source.path, "disk")
        for index, disk in enumerate(spec.disks)
        if isinstance(disk.source, PathSource)
    ]
    if isinstance(spec.cdrom, PathSource):
        found.append(HostPath(f"{prefix}.cdrom.path", spec.cdrom.path, "disk"))
    if spec.kernel is not None:
        found.append(HostPath(f"{prefix}.kernel.kernel", spec.kernel.kernel, "read"))
        if spec.kernel.initrd is not None:
            found.append(HostPath(f"{prefix}.kernel.initrd", spec.kernel.initrd, "read"))
    if spec.graphics.password_file is not None:
        found.append(
            HostPath(f"{prefix}.graphics.password_file", spec.graphics.password_file, "read")
        )
    found += [
        HostPath(f"{prefix}.serials.{index}.path", serial.path, "console")
        for index, serial in enumerate(spec.serials)
        if serial.path is not None
    ]
    return found
