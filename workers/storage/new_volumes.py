"""New volumes of a create job on the hypervisor: the plan resolved once per job (backing
volume looked up, partial of an earlier attempt removed), and full preallocation published
only once complete."""

from __future__ import annotations

from dataclasses import dataclass, replace

import libvirt

from orchestrator.kinds.storage import VolumeSpecFields
from orchestrator.storage.plan import (
    check_backing,
    describe_new_volume,
    new_volume_definition,
    wanted_spec,
)
from orchestrator.storage.spec import VolumeSpec
from orchestrator.storage.volume_xml import VolumeDefinition, VolumeFacts, render_volume_xml
from workers.context import JobContext
from workers.storage.managed import HostConfinement
from workers.storage.partials import build_and_publish, discard_earlier_partial
from workers.storage.pools import local_pool_dir
from workers.storage.volumes import create_volume, describe_volume, resolve_reference


@dataclass(frozen=True)
class NewVolumes:
    """What each volume of a create job is to be, resolved once per job."""

    definition: VolumeDefinition  # its name is set per volume
    wanted: VolumeSpec
    full: bool
    directory: str | None  # set for full preallocation, which writes through a partial volume
    details: str  # for events: "10 GiB, sparse, backed by /path"


def plan_new_volumes(
    ctx: JobContext,
    params: VolumeSpecFields,
    pool: libvirt.virStoragePool,
    confine: HostConfinement,
) -> NewVolumes:
    definition = new_volume_definition(params, _backing(ctx, params, pool, confine))
    full = params.allocation == "full"
    # Only the slow full preallocation goes through a partial volume; it needs the directory.
    directory = local_pool_dir(ctx.libvirt, pool) if full else None
    if directory:
        discard_earlier_partial(ctx, pool, directory)
    details = describe_new_volume(definition, params.allocation)
    return NewVolumes(definition, wanted_spec(definition, params), full, directory, details)


def create_preallocated(
    ctx: JobContext,
    pool: libvirt.virStoragePool,
    directory: str | None,
    definition: VolumeDefinition,
) -> tuple[libvirt.virStorageVol, bool]:
    """The fully allocated volume and whether this job made it."""
    # For qcow2 this flag with allocation == capacity makes libvirt preallocate with falloc;
    # raw volumes are preallocated by the allocation alone.
    qcow2 = definition.format == "qcow2"
    flags = libvirt.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA if qcow2 else 0

    def build(volume_name: str) -> libvirt.virStorageVol:
        xml = render_volume_xml(replace(definition, name=volume_name))
        return create_volume(pool, xml, flags)

    published = build_and_publish(pool, directory, definition.name, ctx.job_id, build, ctx.created)
    return published.volume, published.ours


def _backing(
    ctx: JobContext,
    params: VolumeSpecFields,
    pool: libvirt.virStoragePool,
    confine: HostConfinement,
) -> VolumeFacts | None:
    if params.backing is None:
        return None
    found = resolve_reference(ctx.libvirt, params.backing, "params.backing", known_pool=pool)
    probed = confine.probe_image("params.backing", confine.require_volume(found, "params.backing"))
    backing = describe_volume(found)
    if probed is not None:
        # The overlay records the format qemu-img probed, never one libvirt or a job assumed.
        backing = replace(backing, format=probed)
    check_backing(params, backing)
    return backing
