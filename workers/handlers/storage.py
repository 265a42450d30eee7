"""Handlers for the storage kinds: volumes and directory pools on this worker's hypervisor.

Each volume handler is an "ensure": it looks first and acts only when needed, so a re-delivered
job converges. Before it changes anything it checks confinement (:mod:`workers.storage.managed`):
volumes are made, changed, copied from or deleted only in managed pools, and pools are made only
inside the pool roots. Long writes (full preallocation, clone, upload) go through
:mod:`workers.storage.partials` so a volume under its final name is always complete.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import libvirt

from orchestrator.errors import Conflict, InvalidInput, JobFailed, NotFound
from orchestrator.kinds.storage import (
    PoolDeleteParams,
    PoolEnsureParams,
    PoolListParams,
    VolumeCloneParams,
    VolumeCreateManyParams,
    VolumeCreateParams,
    VolumeDeleteParams,
    VolumeListParams,
    VolumeResizeParams,
    VolumeTarget,
    VolumeUploadParams,
)
from orchestrator.storage.names import is_partial_name
from orchestrator.storage.plan import refuse_different
from orchestrator.storage.sizes import format_size
from orchestrator.storage.spec import VolumeSpec
from orchestrator.storage.volume_xml import VolumeDefinition, VolumeFacts, render_volume_xml
from workers.context import JobContext
from workers.handlers.registry import handles
from workers.storage.ensure import (
    accept_existing,
    check_space,
    create_in_parallel,
    create_or_find,
    volume_result,
)
from workers.storage.managed import HostConfinement
from workers.storage.new_volumes import create_preallocated, plan_new_volumes
from workers.storage.partials import build_and_publish, discard_earlier_partial
from workers.storage.pools import (
    describe_pool,
    ensure_dir_pool,
    find_pool,
    local_pool_dir,
    pool_layout,
    refresh_pool,
    require_active,
)
from workers.storage.spool import spooled_content
from workers.storage.upload import (
    UploadFile,
    opened_source,
    prepare_upload,
    upload_existing_matches,
    write_upload,
)
from workers.storage.volumes import (
    delete_volume,
    describe_volume,
    domains_using,
    empty_pool,
    lookup_volume,
    lookup_volume_or_file,
    resolve_reference,
    resolve_target,
)


@handles(VolumeCreateParams)
def volume_create(ctx: JobContext, params: VolumeCreateParams) -> dict[str, Any]:
    pool, name, confine = _confined_target(ctx, params)
    available = require_active(pool)
    plan = plan_new_volumes(ctx, params, pool, confine)
    capacity = plan.definition.capacity
    definition = replace(plan.definition, name=name)
    if plan.full:
        existing = lookup_volume_or_file(pool, name, plan.directory)
        if existing is not None:
            return accept_existing(ctx, pool, existing, plan.wanted, params.inspect)
        # Read again: planning may have removed a partial volume an earlier attempt left.
        check_space(pool, capacity, "params.capacity", "capacity")
        volume, ours = create_preallocated(ctx, pool, plan.directory, definition)
    else:
        # Sparse: no lookup first. A volume that exists makes createXML fail and is then
        # compared (create_or_find); only a capacity the pool cannot hold looks first, since
        # a volume that already exists as asked needs no space.
        if not params.overcommit and capacity > available:
            existing = lookup_volume(pool, name)
            if existing is not None:
                return accept_existing(ctx, pool, existing, plan.wanted, params.inspect)
            check_space(pool, capacity, "params.capacity", "capacity", available)
        volume, ours = create_or_find(ctx, pool, name, render_volume_xml(definition))
    if not ours:
        return accept_existing(ctx, pool, volume, plan.wanted, params.inspect)
    ctx.event(f"created {params.format} volume {pool.name()}/{name} ({plan.details})")
    return volume_result(ctx, pool, volume, changed=True, inspect=params.inspect)


@handles(VolumeCreateManyParams)
def volume_create_many(ctx: JobContext, params: VolumeCreateManyParams) -> dict[str, Any]:
    pool = find_pool(ctx.libvirt, params.pool)
    confine = HostConfinement(ctx.libvirt, ctx.settings)
    confine.require_pool(pool, "params.pool")
    available = require_active(pool)
    plan = plan_new_volumes(ctx, params, pool, confine)
    wanted = set(params.names)
    # One listing instead of a lookup per name; only the requested ones are described.
    present = {vol.name(): vol for vol in pool.listAllVolumes() if vol.name() in wanted}
    facts = {name: describe_volume(vol) for name, vol in present.items()}
    refuse_different(pool.name(), plan.wanted, facts)
    missing = [name for name in params.names if name not in present]
    if missing and not params.overcommit:
        check_space(pool, plan.definition.capacity, "params.capacity", "capacity", available)
    if missing:
        ctx.event(
            f"creating {len(missing)} {params.format} volumes in pool {pool.name()} "
            f"({plan.details}); {len(present)} already exist"
        )
    made = create_in_parallel(ctx, pool, plan.definition, missing, params.parallel)
    refuse_different(pool.name(), plan.wanted, {n: f for n, (f, ours) in made.items() if not ours})
    facts.update({name: volume_facts for name, (volume_facts, _) in made.items()})
    created = [name for name in params.names if name in made and made[name][1]]
    if created:
        ctx.event(f"created {len(created)} volumes in pool {pool.name()}")
    else:
        ctx.event(f"all {len(params.names)} volumes already exist in pool {pool.name()} as asked")
    return {
        "pool": pool.name(),
        "changed": bool(created),
        "created": created,
        "existing": [name for name in params.names if name not in created],
        "volumes": [facts[name].as_result() for name in params.names],
    }


@handles(VolumeCloneParams)
def volume_clone(ctx: JobContext, params: VolumeCloneParams) -> dict[str, Any]:
    pool, name, confine = _confined_target(ctx, params)
    require_active(pool)
    source = resolve_reference(ctx.libvirt, params.source, "params.source")
    # A copy reads the source's whole chain: each file of it must be a managed pool's.
    confine.probe_image("params.source", confine.require_volume(source, "params.source"))
    src = describe_volume(source)
    if source.storagePoolLookupByVolume().name() == pool.name() and src.name == name:
        raise InvalidInput.of("params.source", "is the target volume itself")
    fmt = params.format or src.format
    if fmt not in ("qcow2", "raw"):
        raise InvalidInput.of("params.format", f"the source is {src.format}; give qcow2 or raw")
    wanted = VolumeSpec(
        format=fmt, capacity=src.capacity, owner=params.owner, group=params.group, mode=params.mode
    )
    directory = local_pool_dir(ctx.libvirt, pool)
    discard_earlier_partial(ctx, pool, directory)
    existing = lookup_volume_or_file(pool, name, directory)
    if existing is not None:
        return accept_existing(ctx, pool, existing, wanted, params.inspect)
    check_space(pool, src.allocation, "params.source", "the source's allocation")
    definition = VolumeDefinition(
        name=name,
        capacity=src.capacity,
        format=fmt,
        owner=params.owner,
        group=params.group,
        mode=params.mode,
    )
    ctx.event(f"copying {src.path} ({src.format}) to {pool.name()}/{name} ({fmt})")

    def copy(temp: str) -> libvirt.virStorageVol:
        xml = render_volume_xml(replace(definition, name=temp))
        try:
            return pool.createXMLFrom(xml, source, 0)
        except libvirt.libvirtError as exc:
            raise JobFailed(f"libvirt could not copy {src.path}: {exc}") from None

    published = build_and_publish(pool, directory, name, ctx.job_id, copy, ctx.created)
    if not published.ours:
        return accept_existing(ctx, pool, published.volume, wanted, params.inspect)
    ctx.event(f"copied {src.path} to {pool.name()}/{name}")
    return volume_result(ctx, pool, published.volume, changed=True, inspect=params.inspect)


@handles(VolumeResizeParams)
def volume_resize(ctx: JobContext, params: VolumeResizeParams) -> dict[str, Any]:
    pool, name, _ = _confined_target(ctx, params)
    require_active(pool)
    volume = _existing_volume(pool, name)
    before = describe_volume(volume).capacity
    label = f"{pool.name()}/{name}"
    if params.capacity == before:
        ctx.event(f"volume {label} already has {format_size(before)} as asked")
        changed = False
    else:
        shrink = params.capacity < before
        if shrink and not params.allow_shrink:
            raise InvalidInput.of(
                "params.capacity",
                f"{format_size(params.capacity)} is below the current {format_size(before)} of "
                f"{label}; set allow_shrink to shrink it (data beyond the new end is lost)",
            )
        try:
            volume.resize(params.capacity, libvirt.VIR_STORAGE_VOL_RESIZE_SHRINK if shrink else 0)
        except libvirt.libvirtError as exc:
            raise JobFailed(f"libvirt could not resize {label}: {exc}") from None
        ctx.event(f"resized {label} from {format_size(before)} to {format_size(params.capacity)}")
        changed = True
    result = volume_result(ctx, pool, volume, changed=changed, inspect=params.inspect)
    return {**result, "previous_capacity": before}


@handles(VolumeDeleteParams)
def volume_delete(ctx: JobContext, params: VolumeDeleteParams) -> dict[str, Any]:
    pool, name, _ = _confined_target(ctx, params)
    require_active(pool)
    label = f"{pool.name()}/{name}"
    volume = lookup_volume(pool, name) or lookup_volume_or_file(
        pool, name, local_pool_dir(ctx.libvirt, pool)
    )
    if volume is None:
        ctx.event(f"volume {label} does not exist; nothing to delete")
        return {"pool": pool.name(), "name": name, "path": None, "changed": False}
    users = domains_using(ctx.libvirt, volume)
    if users:
        raise Conflict(f"volume {label} is a disk of domains {', '.join(users)}", domains=users)
    path = volume.path()
    try:
        delete_volume(volume)
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt could not delete volume {label}: {exc}") from None
    ctx.event(f"deleted volume {label}", data={"path": path})
    return {"pool": pool.name(), "name": name, "path": path, "changed": True}


@handles(VolumeUploadParams)
def volume_upload(ctx: JobContext, params: VolumeUploadParams) -> dict[str, Any]:
    if params.source_path is None:
        return _upload(ctx, params, None)
    with opened_source(params.source_path, ctx.settings.allowed_upload_dirs) as source:
        return _upload(ctx, params, source)


def _upload(
    ctx: JobContext, params: VolumeUploadParams, source: UploadFile | None
) -> dict[str, Any]:
    pool, name, _ = _confined_target(ctx, params)
    require_active(pool)
    directory = local_pool_dir(ctx.libvirt, pool)
    discard_earlier_partial(ctx, pool, directory)
    existing = lookup_volume_or_file(pool, name, directory)
    if existing is not None:
        # Decided before any content is read: the checksum says whether it is already there.
        upload_existing_matches(existing, directory, params.sha256)
        facts = describe_volume(existing)
        wanted = _upload_spec(params, facts.format, facts.capacity)
        result = accept_existing(ctx, pool, existing, wanted, params.inspect)
        return {**result, "sha256": params.sha256}
    if params.content_from_api:
        with spooled_content(ctx, params.sha256, params.content_length) as path:
            return _import(ctx, params, pool, name, directory, UploadFile.sent_content(path))
    assert source is not None  # the parameters require one source
    return _import(ctx, params, pool, name, directory, source)


def _import(
    ctx: JobContext,
    params: VolumeUploadParams,
    pool: libvirt.virStoragePool,
    name: str,
    directory: str | None,
    file: UploadFile,
) -> dict[str, Any]:
    """Write ``file`` into the new volume ``name``, published only once complete (through a
    partial volume when the pool's ``directory`` is local)."""
    source = prepare_upload(file, params.format)
    wanted = _upload_spec(params, source.format, source.capacity)
    check_space(pool, source.size, file.field, "the file")
    ctx.event(f"uploading {file.label} ({format_size(source.size)}) to {pool.name()}/{name}")

    def upload(temp: str) -> libvirt.virStorageVol:
        definition = VolumeDefinition(
            temp, source.size, "raw", owner=params.owner, group=params.group, mode=params.mode
        )
        return write_upload(ctx.libvirt, pool, definition, file, params.sha256)

    published = build_and_publish(pool, directory, name, ctx.job_id, upload, ctx.created)
    volume = published.volume
    if directory is None:
        # Without a publish step libvirt still sees the raw placeholder; let it probe the content.
        refresh_pool(pool)
        volume = _existing_volume(pool, name)
    if not published.ours:
        return accept_existing(ctx, pool, volume, wanted, params.inspect)
    ctx.event(f"uploaded {file.label} to {pool.name()}/{name}, sha256 verified")
    result = volume_result(ctx, pool, volume, changed=True, inspect=params.inspect)
    return {**result, "sha256": params.sha256}


def _upload_spec(params: VolumeUploadParams, fmt: str | None, capacity: int) -> VolumeSpec:
    return VolumeSpec(
        format=fmt, capacity=capacity, owner=params.owner, group=params.group, mode=params.mode
    )


@handles(VolumeListParams)
def volume_list(ctx: JobContext, params: VolumeListParams) -> dict[str, Any]:
    pool = find_pool(ctx.libvirt, params.pool)
    require_active(pool)
    volumes = sorted((describe_volume(vol) for vol in pool.listAllVolumes()), key=_by_name)
    items = [{**facts.as_result(), "partial": is_partial_name(facts.name)} for facts in volumes]
    return {"pool": pool.name(), "volumes": items}


@handles(PoolListParams)
def pool_list(ctx: JobContext, params: PoolListParams) -> dict[str, Any]:
    pools = [describe_pool(pool) for pool in ctx.libvirt.listAllStoragePools()]
    return {"pools": sorted(pools, key=lambda pool: pool["name"])}


@handles(PoolEnsureParams)
def pool_ensure(ctx: JobContext, params: PoolEnsureParams) -> dict[str, Any]:
    HostConfinement(ctx.libvirt, ctx.settings).check_pool_path("params.path", params.path)
    pool, actions = ensure_dir_pool(
        ctx.libvirt, params.name, params.path, params.autostart, ctx.created
    )
    if actions:
        ctx.event(f"storage pool {params.name} at {params.path}: {', '.join(actions)}")
    else:
        ctx.event(f"storage pool {params.name} already exists as asked")
    return {**describe_pool(pool), "actions": actions, "changed": bool(actions)}


@handles(PoolDeleteParams)
def pool_delete(ctx: JobContext, params: PoolDeleteParams) -> dict[str, Any]:
    try:
        pool = ctx.libvirt.storagePoolLookupByName(params.name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        ctx.event(f"storage pool {params.name} does not exist; nothing to delete")
        return {"name": params.name, "path": None, "changed": False, "deleted_volumes": []}
    HostConfinement(ctx.libvirt, ctx.settings).require_pool(pool, "params.name")
    path = pool_layout(pool).path
    active = pool.isActive()
    # An inactive pool's volumes cannot be listed; its files stay in the directory either way.
    deleted = empty_pool(ctx.libvirt, pool, params.delete_volumes) if active else []
    try:
        if active:
            pool.destroy()
        pool.undefine()
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt could not remove storage pool {params.name!r}: {exc}") from None
    volumes = f" and its {len(deleted)} volumes" if deleted else ""
    ctx.event(f"removed storage pool {params.name}{volumes}; its directory {path} stays")
    return {"name": params.name, "path": path, "changed": True, "deleted_volumes": deleted}


def _confined_target(
    ctx: JobContext, params: VolumeTarget
) -> tuple[libvirt.virStoragePool, str, HostConfinement]:
    """The pool and name of the job's volume, which it may change (Forbidden otherwise)."""
    pool, name = resolve_target(ctx.libvirt, params.target)
    confine = HostConfinement(ctx.libvirt, ctx.settings)
    confine.require_target(pool, name, "params.path" if params.path else "params.pool")
    return pool, name, confine


def _existing_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol:
    volume = lookup_volume(pool, name)
    if volume is None:
        raise NotFound(f"volume {pool.name()}/{name} does not exist", pool=pool.name(), name=name)
    return volume


def _by_name(facts: VolumeFacts) -> str:
    return facts.name
