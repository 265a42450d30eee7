"""The shared steps of volume "ensure" jobs: accept or refuse an existing volume, check space,
and report a volume as a job result."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import libvirt

from orchestrator.errors import Conflict, InvalidInput, JobFailed
from orchestrator.storage.sizes import format_size
from orchestrator.storage.spec import VolumeSpec, describe_differences, spec_differences
from orchestrator.storage.volume_xml import VolumeDefinition, VolumeFacts, render_volume_xml
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
        # The pool's own connection: this may run on a helper thread of create_in_parallel.
        existing = lookup_volume_or_file(pool, name, local_pool_dir(pool.connect(), pool))
        if existing is None:
            raise JobFailed(
                f"libvirt could not create volume {pool.name()}/{name}: {exc}"
            ) from None
        return existing, False
    ctx.created(f"volume {pool.name()}/{name}", lambda: volume.delete(0))
    return volume, True


def create_in_parallel(
    ctx: JobContext,
    pool: libvirt.virStoragePool,
    definition: VolumeDefinition,
    names: list[str],
    parallel: int,
) -> dict[str, tuple[VolumeFacts, bool]]:
    """Create volumes ``names`` like ``definition``, ``parallel`` at a time, on the pool's
    connection (libvirt serves concurrent calls on one connection).

    Returns each volume's facts and whether this job made it (False: it appeared meanwhile).
    After a failure or a cancel request no further volume is started; once the running ones
    are done, the first failure is raised, and the runner removes what the job created.
    """
    made: dict[str, tuple[VolumeFacts, bool]] = {}
    failures: list[Exception] = []
    stop = threading.Event()

    def create(name: str) -> None:
        if stop.is_set():
            return
        if ctx.cancel_requested():
            stop.set()
            failures.append(JobFailed(f"cancelled after {len(made)} of {len(names)} volumes"))
            return
        try:
            xml = render_volume_xml(replace(definition, name=name))
            volume, ours = create_or_find(ctx, pool, name, xml)
            made[name] = (describe_volume(volume), ours)
        except Exception as exc:
            stop.set()
            failures.append(exc)

    if names:
        with ThreadPoolExecutor(min(parallel, len(names)), thread_name_prefix="volume") as run:
            list(run.map(create, names))
    if failures:
        raise failures[0]
    return made


def check_space(
    pool: libvirt.virStoragePool,
    needed: int,
    field: str,
    what: str,
    available: int | None = None,
) -> None:
    """InvalidInput naming ``field`` when ``needed`` bytes exceed the pool's available space
    (``available``, when the caller has just read it, saves asking libvirt again)."""
    if available is None:
        available = available_bytes(pool)
    if needed > available:
        message = (
            f"{what} of {format_size(needed)} is more than the {format_size(available)} "
            f"available in storage pool {pool.name()!r}"
        )
        raise InvalidInput.of(field, message)


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
