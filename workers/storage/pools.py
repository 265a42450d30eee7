"""Storage pools: find one, read its directory, check its space, refresh it, ensure a dir pool."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import libvirt

from orchestrator.errors import Conflict, JobFailed, NotFound

# Pool types whose volumes are plain files in the target directory.
FILE_POOL_TYPES = frozenset({"dir", "fs", "netfs"})
_STATES = {
    libvirt.VIR_STORAGE_POOL_INACTIVE: "inactive",
    libvirt.VIR_STORAGE_POOL_BUILDING: "building",
    libvirt.VIR_STORAGE_POOL_RUNNING: "running",
    libvirt.VIR_STORAGE_POOL_DEGRADED: "degraded",
    libvirt.VIR_STORAGE_POOL_INACCESSIBLE: "inaccessible",
}


@dataclass(frozen=True)
class PoolLayout:
    """A pool's type and target directory, from its XML."""

    name: str
    type: str
    path: str | None


def find_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    """The pool called ``name``; NotFound when the hypervisor has none."""
    try:
        return conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise NotFound(f"storage pool {name!r} does not exist", pool=name) from None
        raise


_ACTIVE_STATES = (libvirt.VIR_STORAGE_POOL_RUNNING, libvirt.VIR_STORAGE_POOL_DEGRADED)


def require_active(pool: libvirt.virStoragePool) -> int:
    """Conflict unless the pool runs; returns its available bytes (the same libvirt call)."""
    state, _capacity, _allocation, available = pool.info()
    if state not in _ACTIVE_STATES:
        raise Conflict(
            f"storage pool {pool.name()!r} is not running; start it (pool.ensure) first",
            pool=pool.name(),
        )
    return int(available)


def pool_layout(pool: libvirt.virStoragePool) -> PoolLayout:
    root = ET.fromstring(pool.XMLDesc(0))
    path = root.findtext("target/path")
    return PoolLayout(pool.name(), root.get("type", ""), os.path.normpath(path) if path else None)


def pool_dirs(conn: libvirt.virConnect) -> dict[str, str]:
    """Pool name -> target directory, for every pool whose volumes are files."""
    layouts = (pool_layout(pool) for pool in conn.listAllStoragePools())
    return {lay.name: lay.path for lay in layouts if lay.type in FILE_POOL_TYPES and lay.path}


def is_local(conn: libvirt.virConnect) -> bool:
    """Whether the hypervisor's files are this machine's files (a local, non-test URI)."""
    uri = urlsplit(conn.getURI())
    driver, _, transport = uri.scheme.partition("+")
    return not uri.netloc and transport in ("", "unix") and driver != "test"


def local_pool_dir(conn: libvirt.virConnect, pool: libvirt.virStoragePool) -> str | None:
    """The pool's directory when its volumes are files this process can reach, else None."""
    if not is_local(conn):
        return None
    layout = pool_layout(pool)
    if layout.type not in FILE_POOL_TYPES or not layout.path:
        return None
    return layout.path if os.path.isdir(layout.path) else None


def unseen_file(pool: libvirt.virStoragePool, name: str, directory: str | None = None) -> bool:
    """Whether a file ``name`` lies in the pool's directory on this machine (libvirt may not
    have seen it yet). ``directory`` saves reading the pool's XML; "" means none here."""
    if directory is None:
        directory = local_pool_dir(pool.connect(), pool)
    if not directory or "/" in name or name in (".", ".."):
        return False
    return os.path.lexists(os.path.join(directory, name))


def available_bytes(pool: libvirt.virStoragePool) -> int:
    return int(pool.info()[3])


def describe_pool(pool: libvirt.virStoragePool) -> dict[str, Any]:
    state, capacity, allocation, available = pool.info()
    layout = pool_layout(pool)
    return {
        "name": layout.name,
        "type": layout.type,
        "path": layout.path,
        "state": _STATES.get(state, "unknown"),
        "active": bool(pool.isActive()),
        "persistent": bool(pool.isPersistent()),
        "autostart": bool(pool.autostart()),
        "capacity": capacity,
        "allocation": allocation,
        "available": available,
    }


def refresh_pool(pool: libvirt.virStoragePool, timeout: float = 120.0) -> None:
    """Re-read the pool's volumes, waiting while libvirt is still building other volumes in it.

    libvirt refuses to refresh a pool while any volume in it is being created, which under load
    (many creates at once) is often; so retry until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            pool.refresh(0)
            return
        except libvirt.libvirtError as exc:
            busy = "asynchronous jobs" in str(exc)
            if not busy or time.monotonic() + delay > deadline:
                raise JobFailed(f"could not refresh storage pool {pool.name()!r}: {exc}") from None
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def render_dir_pool_xml(name: str, path: str) -> str:
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    target = ET.SubElement(root, "target")
    ET.SubElement(target, "path").text = path
    return ET.tostring(root, encoding="unicode")


def ensure_dir_pool(
    conn: libvirt.virConnect,
    name: str,
    path: str,
    autostart: bool,
    created: Callable[[str, Callable[[], None]], None],
) -> tuple[libvirt.virStoragePool, list[str]]:
    """A running directory pool ``name`` at ``path``; returns it and what had to be done.

    A pool of that name with another type or directory, or another pool on that directory, is a
    Conflict and nothing is changed.
    """
    actions: list[str] = []
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise
        pool = _define_dir_pool(conn, name, path, created)
        actions.append("defined")
    else:
        _check_existing_pool(pool, path)
    try:
        if not pool.isActive():
            _start(pool, path, created, actions)
        if bool(pool.autostart()) != autostart:
            pool.setAutostart(int(autostart))
            actions.append("autostart on" if autostart else "autostart off")
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt could not set up storage pool {name!r}: {exc}") from None
    return pool, actions


def _start(
    pool: libvirt.virStoragePool,
    path: str,
    created: Callable[[str, Callable[[], None]], None],
    actions: list[str],
) -> None:
    if not os.path.isdir(path):
        pool.build(0)  # creates the directory
        actions.append("built")
    pool.create(0)
    if "defined" in actions:
        created(f"running pool {pool.name()}", pool.destroy)
    actions.append("started")


def _define_dir_pool(
    conn: libvirt.virConnect,
    name: str,
    path: str,
    created: Callable[[str, Callable[[], None]], None],
) -> libvirt.virStoragePool:
    for other, other_dir in pool_dirs(conn).items():
        if other_dir == path:
            raise Conflict(
                f"directory {path} already belongs to storage pool {other!r}",
                differences=[{"field": "path", "wanted": name, "actual": other}],
            )
    pool = conn.storagePoolDefineXML(render_dir_pool_xml(name, path), 0)
    created(f"pool definition {name}", pool.undefine)
    return pool


def _check_existing_pool(pool: libvirt.virStoragePool, path: str) -> None:
    layout = pool_layout(pool)
    diffs: list[dict[str, Any]] = []
    if layout.type != "dir":
        diffs.append({"field": "type", "wanted": "dir", "actual": layout.type})
    if layout.path != path:
        diffs.append({"field": "path", "wanted": path, "actual": layout.path})
    if not pool.isPersistent():
        diffs.append({"field": "persistent", "wanted": True, "actual": False})
    if diffs:
        shown = "; ".join(f"{d['field']}: wanted {d['wanted']}, found {d['actual']}" for d in diffs)
        raise Conflict(
            f"storage pool {layout.name!r} exists differently: {shown}", differences=diffs
        )
