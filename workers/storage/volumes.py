"""Storage volumes: resolve how a request names one, look it up, describe, create, delete."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable

import libvirt

from orchestrator.errors import Conflict, InvalidInput, JobFailed
from orchestrator.storage.locators import VolumeLocator, parse_volume_locator, volume_in_pool_dirs
from orchestrator.storage.names import check_volume_name
from orchestrator.storage.volume_xml import VolumeFacts, parse_volume_xml
from workers.storage.pools import find_pool, is_local, pool_dirs, refresh_pool, unseen_file

Created = Callable[[str, Callable[[], None]], None]


def resolve_target(
    conn: libvirt.virConnect, target: VolumeLocator, field: str = "params.path"
) -> tuple[libvirt.virStoragePool, str]:
    """The pool and volume name a request means; a path must lie directly in a pool's directory."""
    if target.path is None:
        assert target.pool is not None and target.name is not None
        return find_pool(conn, target.pool), target.name
    dirs = pool_dirs(conn)
    found = volume_in_pool_dirs(target.path, dirs)
    if found is None:
        listed = ", ".join(f"{name}: {path}" for name, path in sorted(dirs.items())) or "none"
        raise InvalidInput.of(
            field, f"{target.path} is not inside a storage pool directory ({listed})"
        )
    pool_name, name = found
    try:
        check_volume_name(name)
    except ValueError as exc:
        raise InvalidInput.of(field, f"file name {name!r} {exc}") from None
    return find_pool(conn, pool_name), name


def resolve_reference(
    conn: libvirt.virConnect,
    text: str,
    field: str,
    known_pool: libvirt.virStoragePool | None = None,
) -> libvirt.virStorageVol:
    """The existing volume ``pool/name`` or path ``text``; InvalidInput naming ``field`` if none.

    ``known_pool``, already looked up by the caller, saves a round trip when it is the one named.
    """
    locator = parse_volume_locator(text)
    try:
        if locator.path is not None:
            volume = lookup_volume_by_path(conn, locator.path)
        elif locator.pool is None or locator.name is None:
            raise InvalidInput.of(field, f"no volume {text} on this hypervisor")
        elif known_pool is not None and known_pool.name() == locator.pool:
            volume = lookup_volume(known_pool, locator.name)
        else:
            volume = lookup_volume(conn.storagePoolLookupByName(locator.pool), locator.name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise InvalidInput.of(field, f"no volume {text} on this hypervisor") from None
        raise
    if volume is None:
        raise InvalidInput.of(field, f"no volume {text} on this hypervisor")
    return volume


def lookup_volume(
    pool: libvirt.virStoragePool, name: str, directory: str | None = None
) -> libvirt.virStorageVol | None:
    """The volume ``name`` of ``pool``, or None.

    libvirt sees a file put in a pool's directory by other means (copied there by hand, or
    published by a worker that stopped before refreshing) only once the pool is refreshed; so
    on a miss, when such a file is there, the pool is refreshed once and asked again, as
    virt-install does. A miss with no file costs one look at the directory, never a refresh.
    ``directory`` is the pool's, when the caller knows it.
    """
    volume = _volume_named(pool, name)
    if volume is None and unseen_file(pool, name, directory):
        refresh_pool(pool)
        volume = _volume_named(pool, name)
    return volume


def lookup_volume_or_file(
    pool: libvirt.virStoragePool, name: str, directory: str | None
) -> libvirt.virStorageVol | None:
    """:func:`lookup_volume` with the pool's directory known (None: not this machine's)."""
    return lookup_volume(pool, name, directory or "")


def lookup_volume_by_path(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    """The volume whose file is ``path``, or None; a file libvirt has not seen yet in a pool's
    directory is found by refreshing that pool once, as in :func:`lookup_volume`."""
    volume = _volume_at(conn, path)
    if volume is not None or not is_local(conn) or not os.path.lexists(path):
        return volume
    found = volume_in_pool_dirs(path, pool_dirs(conn))
    if found is None:
        return None
    return lookup_volume(find_pool(conn, found[0]), found[1], os.path.dirname(path))


def _volume_named(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def _volume_at(conn: libvirt.virConnect, path: str) -> libvirt.virStorageVol | None:
    try:
        return conn.storageVolLookupByPath(path)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
            return None
        raise


def describe_volume(volume: libvirt.virStorageVol) -> VolumeFacts:
    return parse_volume_xml(volume.XMLDesc(0))


def create_volume(pool: libvirt.virStoragePool, xml: str, flags: int = 0) -> libvirt.virStorageVol:
    """``pool.createXML`` with libvirt's failure turned into JobFailed (exists is re-raised)."""
    try:
        return pool.createXML(xml, flags)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_STORAGE_VOL_EXIST:
            raise
        raise JobFailed(f"libvirt could not create the volume: {exc}") from None


def delete_volume(volume: libvirt.virStorageVol) -> None:
    """Delete a volume; one that is already gone counts as deleted."""
    try:
        volume.delete(0)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
            raise


def domains_using(conn: libvirt.virConnect, volume: libvirt.virStorageVol) -> list[str]:
    """Names of the domains (running or only defined) with a disk on ``volume``."""
    path, name = volume.path(), volume.name()
    pool = volume.storagePoolLookupByVolume().name()
    users = []
    for domain in conn.listAllDomains():
        try:
            root = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # undefined while we listed (a transient domain that stopped): no user
            raise
        for source in root.iterfind("devices/disk/source"):
            by_path = path in (source.get("file"), source.get("dev"))
            if by_path or (source.get("pool"), source.get("volume")) == (pool, name):
                users.append(domain.name())
                break
    return sorted(users)


def empty_pool(
    conn: libvirt.virConnect, pool: libvirt.virStoragePool, delete_volumes: bool
) -> list[str]:
    """Delete the running pool's volumes when asked; Conflict when it holds any otherwise, or
    when one is a disk of a domain. Nothing is deleted unless everything may be."""
    refresh_pool(pool)
    volumes = sorted(pool.listAllVolumes(), key=lambda volume: volume.name())
    if not volumes:
        return []
    names = [volume.name() for volume in volumes]
    if not delete_volumes:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise Conflict(
            f"storage pool {pool.name()!r} holds {len(names)} volumes ({shown}); set "
            "delete_volumes to delete them with it",
            volumes=names,
        )
    in_use = {v.name(): users for v in volumes if (users := domains_using(conn, v))}
    if in_use:
        listed = "; ".join(f"{name}: {', '.join(users)}" for name, users in in_use.items())
        raise Conflict(f"volumes of pool {pool.name()!r} are disks of domains: {listed}")
    for volume in volumes:
        delete_volume(volume)
    return names
