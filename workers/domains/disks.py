"""A domain's disks on the hypervisor: check the existing ones, create the new ones.

Every disk and ISO must be a volume of a managed storage pool (a path must lie in a managed
pool's directory, symlinks followed). A disk's format is what qemu-img probes, and every file of
its backing chain lies in a managed pool: a job that names another format is refused, never
believed. New volumes are made with the storage kinds' own functions, and each one this attempt
creates is registered with ``ctx.created`` so a failed define removes it again.
"""

from __future__ import annotations

from dataclasses import replace

import libvirt

from orchestrator.domains.devices import IsoSource, PathSource, VolumeSource
from orchestrator.domains.dryrun import PlannedVolume
from orchestrator.domains.spec import DomainSpec
from orchestrator.errors import InvalidInput
from orchestrator.storage.locators import VolumeLocator
from orchestrator.storage.sizes import format_size
from orchestrator.storage.spec import VolumeSpec
from orchestrator.storage.volume_xml import VolumeDefinition, render_volume_xml
from workers.context import JobContext
from workers.storage.ensure import accept_existing, check_space, create_or_find
from workers.storage.managed import HostConfinement
from workers.storage.pools import find_pool, require_active
from workers.storage.volumes import (
    describe_volume,
    lookup_volume,
    resolve_reference,
    resolve_target,
)


def existing_formats(confine: HostConfinement, spec: DomainSpec) -> dict[str, str]:
    """Image formats of the spec's existing disks and ISOs ("pool/volume" or path -> format).

    A missing disk is InvalidInput naming the field, unless it is a path with ``size_gib``
    (created later); a path outside every pool directory is InvalidInput too; a volume outside
    the managed pools, or a disk whose backing chain leaves them, is Forbidden; a disk whose
    ``format`` differs from the probed one is InvalidInput naming both.
    """
    formats: dict[str, str] = {}
    sources: list[tuple[str, IsoSource | PathSource | VolumeSource, str | None]] = [
        (f"params.disks.{i}", d.source, d.format)
        for i, d in enumerate(spec.disks)
        if d.source.type != "new_volume"
    ]
    for field, source, claimed in sources:
        fmt = _existing_format(confine, source, f"{field}.source", probe=True)
        if fmt is not None:
            _check_claimed_format(f"{field}.format", source, claimed, fmt)
            formats[_key(source)] = fmt
    if spec.cdrom is not None:
        # Attached read-only as raw whatever it holds: nothing in it is followed.
        fmt = _existing_format(confine, spec.cdrom, "params.cdrom", probe=False)
        if fmt is not None:
            formats[_key(spec.cdrom)] = fmt
    return formats


def _key(source: IsoSource | PathSource | VolumeSource) -> str:
    return source.path if isinstance(source, PathSource) else f"{source.pool}/{source.volume}"


def _existing_format(
    confine: HostConfinement,
    source: IsoSource | PathSource | VolumeSource,
    field: str,
    *,
    probe: bool,
) -> str | None:
    """The format of the existing file (None when it is yet to be created), its place and
    backing chain checked."""
    volume = _existing(confine.conn, source, field)
    if volume is None:
        return None
    target = f"{field}.path" if isinstance(source, PathSource) else field
    path = confine.require_volume(volume, target)
    probed = confine.probe_image(target, path) if probe else None
    return probed or describe_volume(volume).format or "raw"


def _check_claimed_format(
    field: str, source: IsoSource | PathSource | VolumeSource, claimed: str | None, probed: str
) -> None:
    if claimed is not None and claimed != probed:
        raise InvalidInput.of(
            field,
            f"{claimed} was given, but {_key(source)} is a {probed} image as probed on the "
            f"hypervisor; give {probed} or leave format out",
        )


def _existing(
    conn: libvirt.virConnect, source: IsoSource | PathSource | VolumeSource, field: str
) -> libvirt.virStorageVol | None:
    if isinstance(source, VolumeSource):
        return resolve_reference(conn, f"{source.pool}/{source.volume}", field)
    pool, name = resolve_target(conn, VolumeLocator(path=source.path), f"{field}.path")
    volume = lookup_volume(pool, name)
    if volume is None and not source.size_gib:
        message = f"{source.path} does not exist (give size_gib to create it)"
        raise InvalidInput(message, errors=[{"field": f"{field}.path", "message": message}])
    return volume


def paths_to_create(confine: HostConfinement, spec: DomainSpec) -> dict[str, tuple[str, str]]:
    """Path disks with ``size_gib`` whose file does not exist yet: path -> (pool, name)."""
    found: dict[str, tuple[str, str]] = {}
    for index, disk in enumerate(spec.disks):
        source = disk.source
        if isinstance(source, PathSource) and source.size_gib:
            field = f"params.disks.{index}.source.path"
            pool, name = resolve_target(confine.conn, VolumeLocator(path=source.path), field)
            confine.require_target(pool, name, field)
            if lookup_volume(pool, name) is None:
                found[source.path] = (pool.name(), name)
    return found


def check_new_volumes(
    confine: HostConfinement, planned: list[PlannedVolume]
) -> list[tuple[PlannedVolume, libvirt.virStoragePool, VolumeDefinition]]:
    """Each planned volume with its pool and definition; every pool and backing volume is
    checked (running, managed, backing chain in managed pools) before anything is created."""
    steps = []
    for plan in planned:
        pool = find_pool(confine.conn, plan.pool)
        confine.require_target(pool, plan.name, "params.disks")
        require_active(pool)
        steps.append((plan, pool, _definition(confine, pool, plan)))
    return steps


def create_volumes(
    ctx: JobContext, steps: list[tuple[PlannedVolume, libvirt.virStoragePool, VolumeDefinition]]
) -> list[dict[str, object]]:
    """Ensure each checked volume exists as planned; returns what was created or found."""
    return [_ensure_volume(ctx, plan, pool, definition) for plan, pool, definition in steps]


def _ensure_volume(
    ctx: JobContext,
    plan: PlannedVolume,
    pool: libvirt.virStoragePool,
    definition: VolumeDefinition,
) -> dict[str, object]:
    wanted = VolumeSpec(
        format=plan.format, capacity=definition.capacity, backing_path=definition.backing_path
    )
    existing = lookup_volume(pool, plan.name)
    if existing is not None:
        return accept_existing(ctx, pool, existing, wanted, inspect=False)
    # An overlay starts empty; only a volume without backing can be checked against the space.
    if definition.backing_path is None:
        check_space(pool, definition.capacity, "params.disks", "a disk")
    volume, ours = create_or_find(ctx, pool, plan.name, render_volume_xml(definition))
    if not ours:
        return accept_existing(ctx, pool, volume, wanted, inspect=False)
    backed = f", backed by {definition.backing_path}" if definition.backing_path else ""
    ctx.event(
        f"created disk {plan.pool}/{plan.name} ({plan.format}, "
        f"{format_size(definition.capacity)}{backed})"
    )
    return {"pool": plan.pool, "name": plan.name, "path": volume.path(), "changed": True}


def _definition(
    confine: HostConfinement, pool: libvirt.virStoragePool, plan: PlannedVolume
) -> VolumeDefinition:
    if plan.backing_volume is None:
        return VolumeDefinition(plan.name, plan.capacity, plan.format)
    reference = f"{plan.pool}/{plan.backing_volume}"
    found = resolve_reference(confine.conn, reference, "params.disks", pool)
    probed = confine.probe_image("params.disks", confine.require_volume(found, "params.disks"))
    backing = describe_volume(found)
    if probed is not None:
        backing = replace(backing, format=probed)
    if plan.format != "qcow2":
        message = "a disk with backing_volume must be qcow2"
        raise InvalidInput(message, errors=[{"field": "params.disks", "message": message}])
    # An overlay smaller than its backing would hide the backing's end; grow it to fit.
    capacity = max(plan.capacity, backing.capacity)
    return VolumeDefinition(
        plan.name,
        capacity,
        "qcow2",
        backing_path=backing.path,
        backing_format=backing.format or "raw",
    )
