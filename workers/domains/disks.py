"""A domain's disks on the hypervisor: check the existing ones, create the new ones.

Every disk and ISO must be a volume of a storage pool (a path must lie in a pool's directory).
New volumes are made with the storage kinds' own functions, and each one this attempt creates is
registered with ``ctx.created`` so a failed define removes it again.
"""

from __future__ import annotations

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
from workers.storage.pools import find_pool, require_active
from workers.storage.volumes import (
    describe_volume,
    lookup_volume,
    resolve_reference,
    resolve_target,
)


def existing_formats(conn: libvirt.virConnect, spec: DomainSpec) -> dict[str, str]:
    """Image formats of the spec's existing disks and ISOs ("pool/volume" or path -> format).

    A missing disk is InvalidInput naming the field, unless it is a path with ``size_gib``
    (created later); a path outside every pool directory is InvalidInput too.
    """
    formats: dict[str, str] = {}
    sources: list[tuple[str, IsoSource | PathSource | VolumeSource]] = [
        (f"params.disks.{i}.source", d.source)
        for i, d in enumerate(spec.disks)
        if d.source.type != "new_volume"
    ]
    if spec.cdrom is not None:
        sources.append(("params.cdrom", spec.cdrom))
    for field, source in sources:
        volume = _existing(conn, source, field)
        if volume is not None:
            key = (
                source.path if isinstance(source, PathSource) else f"{source.pool}/{source.volume}"
            )
            formats[key] = describe_volume(volume).format or "raw"
    return formats


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


def paths_to_create(conn: libvirt.virConnect, spec: DomainSpec) -> dict[str, tuple[str, str]]:
    """Path disks with ``size_gib`` whose file does not exist yet: path -> (pool, name)."""
    found: dict[str, tuple[str, str]] = {}
    for index, disk in enumerate(spec.disks):
        source = disk.source
        if isinstance(source, PathSource) and source.size_gib:
            field = f"params.disks.{index}.source.path"
            pool, name = resolve_target(conn, VolumeLocator(path=source.path), field)
            if lookup_volume(pool, name) is None:
                found[source.path] = (pool.name(), name)
    return found


def create_volumes(ctx: JobContext, planned: list[PlannedVolume]) -> list[dict[str, object]]:
    """Ensure each planned volume exists as planned; returns what was created or found.

    Every pool and backing volume is checked before the first volume is created.
    """
    steps = []
    for plan in planned:
        pool = find_pool(ctx.libvirt, plan.pool)
        require_active(pool)
        steps.append((plan, pool, _definition(ctx.libvirt, pool, plan)))
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
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, plan: PlannedVolume
) -> VolumeDefinition:
    if plan.backing_volume is None:
        return VolumeDefinition(plan.name, plan.capacity, plan.format)
    backing = describe_volume(
        resolve_reference(conn, f"{plan.pool}/{plan.backing_volume}", "params.disks", pool)
    )
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
