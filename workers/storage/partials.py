"""Write a volume under a private temporary name, then publish it under its final name.

libvirt has no volume rename, so a copy, upload or full preallocation interrupted half-way would
leave a volume that looks finished. In a pool whose volumes are local files the volume is written
as ``.partial-<job>`` (user names never start with a dot) and published with ``os.link``: the
final name appears atomically, complete, and never replaces a volume someone else made. The
temporary name is then deleted and the pool refreshed so libvirt sees the final name. A job
re-delivered after its worker died first removes its own partial volume and starts over.

Where the pool's files are not local (remote URI, non-file pools) the volume is written under
its final name directly; the ensure check of a re-run then compares its spec only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from orchestrator.storage.names import partial_name
from workers.context import JobContext
from workers.storage.pools import refresh_pool
from workers.storage.volumes import Created, delete_volume, lookup_volume

Build = Callable[[str], libvirt.virStorageVol]


@dataclass(frozen=True)
class Published:
    volume: libvirt.virStorageVol
    # False when another job published the same name first; the caller compares specs.
    ours: bool


def remove_partial(pool: libvirt.virStoragePool, directory: str | None, job_id: str) -> bool:
    """Remove what an earlier attempt of this job left under its temporary name."""
    name = partial_name(job_id)
    volume = lookup_volume(pool, name)
    if volume is not None:
        delete_volume(volume)
        return True
    if directory and os.path.lexists(path := os.path.join(directory, name)):
        os.unlink(path)
        return True
    return False


def discard_earlier_partial(
    ctx: JobContext, pool: libvirt.virStoragePool, directory: str | None
) -> None:
    """Remove the partial volume an earlier attempt of ``ctx``'s job left, and say so."""
    if remove_partial(pool, directory, ctx.job_id):
        ctx.event("removed an unfinished volume left by an earlier attempt", level="warning")


def build_and_publish(
    pool: libvirt.virStoragePool,
    directory: str | None,
    name: str,
    job_id: str,
    build: Build,
    created: Created,
) -> Published:
    """Run ``build(volume_name)`` and make its result appear as ``name`` only once complete."""
    label = f"volume {pool.name()}/{name}"
    if directory is None:
        volume = build(name)
        created(label, lambda: delete_volume(volume))
        return Published(volume, ours=True)
    temporary = partial_name(job_id)
    partial = build(temporary)

    def undo_partial() -> None:
        remove_partial(pool, directory, job_id)

    created(f"unfinished {label}", undo_partial)
    final_path = os.path.join(directory, name)
    try:
        os.link(partial.path(), final_path)
    except FileExistsError:
        delete_volume(partial)
        return Published(_lookup_after_refresh(pool, name), ours=False)
    created(label, lambda: _unlink_and_refresh(pool, final_path))
    # The data stays reachable under the final name; this only drops the temporary one.
    delete_volume(partial)
    return Published(_lookup_after_refresh(pool, name), ours=True)


def _lookup_after_refresh(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol:
    refresh_pool(pool)
    volume = lookup_volume(pool, name)
    if volume is None:  # pragma: no cover - only if someone deletes it in between
        raise FileNotFoundError(f"volume {name!r} vanished while it was being published")
    return volume


def _unlink_and_refresh(pool: libvirt.virStoragePool, path: str) -> None:
    if os.path.lexists(path):
        os.unlink(path)
    refresh_pool(pool)
