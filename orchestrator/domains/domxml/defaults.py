"""Fill the defaults of a domain spec from its OS variant and the hypervisor, as virt-install does.

Pure: the job reads what it needs from libvirt (image formats, machine types) into
:class:`HostDefaults` first. Nothing here renders XML.
"""

from __future__ import annotations

from dataclasses import replace

from orchestrator.domains.devices import DiskSpec, NetworkSpec, PathSource, VolumeSource
from orchestrator.domains.domxml.resolved import (
    HostDefaults,
    ResolvedBoot,
    ResolvedDisk,
    ResolvedGraphics,
    ResolvedInterface,
    ResolvedSerial,
    ResolvedSpec,
)
from orchestrator.domains.domxml.targets import TargetAllocator
from orchestrator.domains.osinfo import OsVariant
from orchestrator.domains.spec import DomainSpec


def fill_defaults(
    spec: DomainSpec,
    osinfo: OsVariant,
    host: HostDefaults,
    *,
    cloud_init_iso: str | None = None,
) -> ResolvedSpec:
    """Decide everything ``spec`` leaves open; ``osinfo`` is the resolved ``spec.os_variant``.

    ``cloud_init_iso`` is where the job puts the seed ISO; default ``<seed_dir>/<name>-cidata.iso``.
    """
    machine = "q35" if osinfo.supports_q35 and "q35" in host.machines else "pc"
    notes = []
    if osinfo.minimum_ram_mib and spec.memory_mib < osinfo.minimum_ram_mib:
        notes.append(
            f"memory_mib {spec.memory_mib} is below the {osinfo.minimum_ram_mib} MiB "
            f"{osinfo.short_id} needs"
        )
    return ResolvedSpec(
        name=spec.name,
        uuid=str(spec.uuid) if spec.uuid else None,
        domain_type=spec.virt_type or host.domain_type,
        vcpus=spec.vcpus or osinfo.recommended_vcpus or 1,
        cpuset=spec.cpuset,
        memory_mib=spec.memory_mib,
        os_id=None if osinfo.is_generic else osinfo.id,
        clock_offset="localtime" if osinfo.is_windows else "utc",
        boot=_boot(spec, machine, host.arch),
        # The host's CPU setting is for KVM; under TCG qemu emulates its default CPU.
        cpu=spec.cpu or (host.cpu if (spec.virt_type or host.domain_type) == "kvm" else None),
        disks=_disks(spec, osinfo, machine, host, cloud_init_iso),
        interfaces=tuple(_interface(net, osinfo, machine) for net in spec.networks),
        graphics=_graphics(spec),
        serials=tuple(ResolvedSerial(s.type, s.path) for s in spec.serials),
        video_model=_video_model(spec, osinfo),
        usb_model="qemu-xhci" if osinfo.supports_usb3 else None,
        scsi_controller=any(d.bus == "scsi" for d in spec.disks),
        guest_agent_channel=osinfo.supports_virtio_serial,
        virtio_rng=osinfo.supports_virtio_rng,
        notes=tuple(notes),
    )


def _boot(spec: DomainSpec, machine: str, arch: str) -> ResolvedBoot:
    if spec.boot_source == "kernel":
        return ResolvedBoot(machine, arch, spec.boot_order, kernel=spec.kernel)
    final = spec.boot_order or ("hd",)
    install = {"cdrom": ("cdrom", "hd"), "pxe": ("network", "hd")}.get(spec.boot_source)
    return ResolvedBoot(machine, arch, final, install_boot_devices=install)


def _disks(
    spec: DomainSpec,
    osinfo: OsVariant,
    machine: str,
    host: HostDefaults,
    cloud_init_iso: str | None,
) -> tuple[ResolvedDisk, ...]:
    targets = TargetAllocator()
    disks = [_disk(spec, i, d, osinfo, machine, host, targets) for i, d in enumerate(spec.disks)]
    cdrom_bus = osinfo.default_cdrom_bus(machine)
    if spec.cdrom is not None:
        # Windows setup reboots into its second stage from the media, so it stays attached.
        install_media = not osinfo.is_windows
        disks.append(_iso(spec.cdrom, cdrom_bus, targets, "cdrom", install_media=install_media))
    if spec.cloud_init is not None:
        seed = cloud_init_iso or f"{host.seed_dir}/{spec.name}-cidata.iso"
        disks.append(_iso(PathSource(type="path", path=seed), cdrom_bus, targets, "cloud_init"))
    return tuple(disks)


def _disk(
    spec: DomainSpec,
    index: int,
    disk: DiskSpec,
    osinfo: OsVariant,
    machine: str,
    host: HostDefaults,
    targets: TargetAllocator,
) -> ResolvedDisk:
    if disk.device == "cdrom":
        bus = disk.bus or osinfo.default_cdrom_bus(machine)
    else:
        bus = disk.bus or osinfo.default_disk_bus(machine)
    base = ResolvedDisk(
        device=disk.device,
        source_type="file",
        bus=bus,
        target=targets.allocate(bus, f"disks.{index}"),
        driver_type="raw",
        cache=disk.cache,
        readonly=disk.readonly or disk.device == "cdrom",
    )
    source = disk.source
    if source.type == "new_volume":
        fmt = disk.format or "qcow2"
        return replace(
            base,
            source_type="volume",
            pool=source.pool,
            volume=source.name or _new_volume_name(spec, index, fmt),
            driver_type=fmt,
            discard_unmap=True,
            create_size_gib=source.size_gib,
            backing_volume=source.backing_volume,
        )
    if source.type == "volume":
        known = host.known_formats.get(f"{source.pool}/{source.volume}")
        return replace(
            base,
            source_type="volume",
            pool=source.pool,
            volume=source.volume,
            driver_type=disk.format or known or "raw",
        )
    known = host.known_formats.get(source.path)
    return replace(
        base,
        path=source.path,
        driver_type=disk.format or known or ("qcow2" if source.size_gib else "raw"),
        discard_unmap=bool(source.size_gib),
        create_size_gib=source.size_gib,
    )


def _new_volume_name(spec: DomainSpec, index: int, fmt: str) -> str:
    # virt-install's names: c73.qcow2, then c73-1.qcow2, c73-2.qcow2, ...
    ext = "img" if fmt == "raw" else fmt
    earlier = sum(1 for d in spec.disks[:index] if d.source.type == "new_volume")
    return f"{spec.name}.{ext}" if earlier == 0 else f"{spec.name}-{earlier}.{ext}"


def _iso(
    source: VolumeSource | PathSource,
    bus: str,
    targets: TargetAllocator,
    field: str,
    install_media: bool = False,
) -> ResolvedDisk:
    iso = ResolvedDisk(
        device="cdrom",
        source_type="file",
        bus=bus,
        target=targets.allocate(bus, field),
        driver_type="raw",
        readonly=True,
        install_media=install_media,
    )
    if isinstance(source, VolumeSource):
        return replace(iso, source_type="volume", pool=source.pool, volume=source.volume)
    return replace(iso, path=source.path)


def _interface(net: NetworkSpec, osinfo: OsVariant, machine: str) -> ResolvedInterface:
    return ResolvedInterface(
        type=net.type,
        source=net.source,
        model=net.model or osinfo.default_nic_model(machine),
        mac=net.mac,
    )


def _graphics(spec: DomainSpec) -> ResolvedGraphics | None:
    g = spec.graphics
    if g.type == "none":
        return None
    listen = str(g.listen) if g.listen is not None else None
    return ResolvedGraphics(type=g.type, listen=listen, port=g.port, password=g.password)


def _video_model(spec: DomainSpec, osinfo: OsVariant) -> str | None:
    # virtinst's order: virtio-gpu when the guest drives it, qxl with spice, else vga.
    if spec.graphics.type == "none":
        return None
    if osinfo.supports_virtio_gpu:
        return "virtio"
    return "qxl" if spec.graphics.type == "spice" else "vga"
