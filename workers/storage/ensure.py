"""The shared steps of volume "ensure" jobs: accept or refuse an existing volume, check space,
and report a volume as a job result."""

from __future__ import annotations

import os
from typing import Any

import libvirt

from orchestrator.errors import Conflict, InvalidInput, JobFailed
from orchestrator.storage.sizes import format_size
from orchestrator.storage.spec import VolumeSpec, describe_differences, spec_differences
from workers.context import JobContext
from workers.storage.pools import available_bytes, is_local, local_pool_dir
from workers.storage.qemu_img import image_info
from workers.storage.volumes import describe_volume, lookup_volume_or_file


def accept_existing(
    ctx: JobContext,
    pool: libvirt.virStoragePool,
    volume: libvirt.virStorageVol,
    wanted: VolumeSpec,
    inspect: bool,
) -> dict[str, Any]:
    """The result for a volume that already exists as asked; Conflict naming every difference."""
    facts = describe_volume(volume)
    label = f"{pool.name()}/{facts.name}"
    diffs = spec_differences(wanted, facts.state)
    if diffs:
        raise Conflict(
            f"volume {label} already exists with other properties: {describe_differences(diffs)}",
            differences=diffs,
        )
    ctx.event(f"volume {label} already exists as asked", data={"path": facts.path})
    return volume_result(ctx, pool, volume, changed=False, inspect=inspect)


def create_or_find(
    ctx: JobContext, pool: libvirt.virStoragePool, name: str, xml: str, flags: int = 0
) -> tuple[libvirt.virStorageVol, bool]:
    """Create the volume: (volume, True); or, when it appeared meanwhile (another job, or an
    earlier attempt whose libvirtd call finished after its worker died), (existing, False)."""
    try:
        volume = pool.createXML(xml, flags)
    except libvirt.libvirtError as exc:
        existing = lookup_volume_or_file(pool, name, local_pool_dir(ctx.libvirt, pool))
        if existing is None:
            raise JobFailed(
                f"libvirt could not create volume {pool.name()}/{name}: {exc}"
            ) from None
        return existing, False
    ctx.created(f"volume {pool.name()}/{name}", lambda: volume.delete(0))
    return volume, True


def check_space(pool: libvirt.virStoragePool, needed: int, field: str, what: str) -> None:
    """InvalidInput naming ``field`` when ``needed`` bytes exceed the pool's available space."""
    available = available_bytes(pool)
    if needed > available:
        message = (
            f"{what} of {format_size(needed)} is more than the {format_size(available)} "
            f"available in storage pool {pool.name()!r}"
        )
        raise InvalidInput(message, errors=[{"field": field, "message": message}])


def volume_result(
    ctx: JobContext,
    pool: libvirt.virStoragePool,
    volume: libvirt.virStorageVol,
    *,
    changed: bool,
    inspect: bool,
) -> dict[str, Any]:
    """A volume as libvirt reports it and, when its file is local, as ``qemu-img info`` does."""
    facts = describe_volume(volume)
    result = {"pool": pool.name(), **facts.as_result(), "qemu_img": None, "changed": changed}
    if inspect and is_local(ctx.libvirt) and os.path.exists(facts.path):
        try:
            result["qemu_img"] = image_info(facts.path)
        except (RuntimeError, OSError, ValueError) as exc:
            ctx.event(f"qemu-img info {facts.path} failed: {exc}", level="warning")
    return result
