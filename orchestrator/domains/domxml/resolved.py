"""A domain with every default decided: what the XML builders render, nothing left to guess.

``fill_defaults`` makes one from a spec; the builders only translate it into elements.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

from orchestrator.domains.spec import CpuSpec, KernelBoot


@dataclass(frozen=True)
class HostDefaults:
    """What the hypervisor contributes: its CPU setting, machine types, probed image formats."""

    domain_type: Literal["kvm", "qemu"] = "kvm"
    arch: str = "x86_64"
    # The hypervisor's default guest CPU (settings.cpu_mode); None leaves it to libvirt.
    cpu: CpuSpec | None = None
    machines: tuple[str, ...] = ("pc", "q35")
    # Image formats the job read from existing volumes and files: "pool/volume" or path -> format.
    known_formats: Mapping[str, str] = field(default_factory=dict)
    # Where the job writes cloud-init seed ISOs.
    seed_dir: str = "/var/lib/libvirt/boot"


@dataclass(frozen=True)
class ResolvedDisk:
    device: Literal["disk", "cdrom"]
    # None: an empty cdrom drive (the installation ISO after the install phase).
    source_type: Literal["file", "volume"] | None
    target: str
    bus: str
    driver_type: str
    path: str | None = None
    pool: str | None = None
    volume: str | None = None
    cache: str | None = None
    readonly: bool = False
    # New, sparse qcow2/raw files let the guest's TRIM free host space, as virt-install does.
    discard_unmap: bool = False
    # Set when the job must create the volume first.
    create_size_gib: float | None = None
    backing_volume: str | None = None
    # True for the installation ISO, emptied once the install phase is over.
    install_media: bool = False


@dataclass(frozen=True)
class ResolvedInterface:
    type: Literal["network", "bridge"]
    source: str
    model: str
    mac: str | None = None


@dataclass(frozen=True)
class ResolvedGraphics:
    type: Literal["vnc", "spice"]
    listen: str | None = None
    port: int | None = None
    password: SecretStr | None = None


@dataclass(frozen=True)
class ResolvedSerial:
    type: Literal["pty", "file"]
    path: str | None = None


@dataclass(frozen=True)
class ResolvedBoot:
    """``<os>``: machine, boot devices for each phase, or a kernel to boot directly."""

    machine: str
    arch: str
    boot_devices: tuple[str, ...]
    # Boot devices while installing (cdrom or pxe installs); None: no install phase.
    install_boot_devices: tuple[str, ...] | None = None
    kernel: KernelBoot | None = None


@dataclass(frozen=True)
class ResolvedSpec:
    name: str
    uuid: str | None
    domain_type: str
    vcpus: int
    cpuset: str | None
    memory_mib: int
    os_id: str | None
    clock_offset: Literal["utc", "localtime"]
    boot: ResolvedBoot
    cpu: CpuSpec | None
    disks: tuple[ResolvedDisk, ...]
    interfaces: tuple[ResolvedInterface, ...]
    graphics: ResolvedGraphics | None
    serials: tuple[ResolvedSerial, ...]
    video_model: str | None
    usb_model: str | None
    scsi_controller: bool
    guest_agent_channel: bool
    virtio_rng: bool
    notes: tuple[str, ...] = ()

    @property
    def has_install_phase(self) -> bool:
        return self.boot.install_boot_devices is not None
