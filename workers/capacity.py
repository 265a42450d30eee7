"""What a hypervisor has and what its domains hold, as its heartbeat reports it for placement.

Read every few seconds, so libvirt is asked little: one bulk statistics call covers every
defined domain, running or not (state, vCPUs, memory, each disk's path and capacity), and each
storage pool costs its info, its directory and its volume names. A driver whose statistics lack
the vCPU, balloon or block groups (the test driver) is read from each domain's definition
instead, one call per domain.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import libvirt

from workers.facts import domain_state_name, leased_addresses
from workers.storage.pools import pool_layout

# File names that hold a disk image or an installation medium a job can start from.
IMAGE_SUFFIXES = (".qcow2", ".qcow", ".img", ".raw", ".iso")
_STATS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_VCPU
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_BLOCK
)
# A domain busy with a long job (a destroy, a migration) would hold the whole read up.
_NOWAIT = libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
_OFF = frozenset({libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED})


@dataclass(frozen=True)
class DomainUse:
    """One defined domain: its state, and the vCPUs, memory and disks it is given."""

    domain: libvirt.virDomain
    state: int
    vcpus: int
    memory_mib: int
    # disk path -> capacity in bytes (None: unknown this read)
    disks: Mapping[str, int | None]


@dataclass(frozen=True)
class PoolSpace:
    """One running storage pool: bytes as libvirt counts them, its directory, its volumes."""

    name: str
    capacity: int
    allocation: int
    available: int
    directory: str | None
    volumes: tuple[str, ...]


class CapacityReader:
    """Reads capacity and allocation; remembers each disk's last capacity so that a read which
    could not ask a busy domain (one starting, say) still counts its disks, asking the disk's
    pool only for a disk it never saw."""

    def __init__(self) -> None:
        self._disk_capacity: dict[str, int | None] = {}

    def read(self, conn: libvirt.virConnect) -> dict[str, Any]:
        """The heartbeat's ``capacity`` (with the domain registry) and ``allocated``."""
        model, memory_mib, cpus, *_ = conn.getInfo()
        domains = self._domains(conn)
        pools = read_pools(conn)
        return {
            "capacity": {
                "cpus": cpus,
                "cpu_model": model,
                "memory_mib": memory_mib,
                "free_memory_mib": conn.getFreeMemory() // (1024 * 1024),
                "running_domains": sum(1 for use in domains if use.state not in _OFF),
                "domains": [_registry_entry(use) for use in domains],
                "pools": {pool.name: _pool_entry(pool, domains) for pool in pools},
            },
            "allocated": allocation(domains, pools),
        }

    def _domains(self, conn: libvirt.virConnect) -> list[DomainUse]:
        uses = [_from_stats(conn, dom, stats) for dom, stats in _all_stats(conn)]
        earlier, self._disk_capacity = self._disk_capacity, {}  # forget disks now gone
        return [replace(use, disks=self._known(conn, use.disks, earlier)) for use in uses]

    def _known(
        self,
        conn: libvirt.virConnect,
        disks: Mapping[str, int | None],
        earlier: Mapping[str, int | None],
    ) -> dict[str, int | None]:
        for path, size in disks.items():
            if size is None:
                size = earlier[path] if path in earlier else _volume_capacity(conn, path)
            self._disk_capacity[path] = size
        return {path: self._disk_capacity[path] for path in disks}


def read_capacity(conn: libvirt.virConnect) -> dict[str, Any]:
    """One read with nothing remembered from earlier ones."""
    return CapacityReader().read(conn)


def allocation(domains: Iterable[DomainUse], pools: Iterable[PoolSpace]) -> dict[str, Any]:
    """What the domains are given: vCPUs, memory, and per pool the capacity of their disks that
    lie in it, each file counted once however many domains share it (an ISO, say)."""
    domains = list(domains)
    pool_of = {pool.directory: pool.name for pool in pools if pool.directory}
    by_pool: dict[str, int] = {}
    seen: set[str] = set()
    for use in domains:
        for path, size in use.disks.items():
            pool = pool_of.get(os.path.dirname(os.path.normpath(path)))
            if pool is None or path in seen or size is None:
                continue
            seen.add(path)
            by_pool[pool] = by_pool.get(pool, 0) + size
    return {
        "domains": len(domains),
        "vcpus": sum(use.vcpus for use in domains),
        "memory_mib": sum(use.memory_mib for use in domains),
        "disk_bytes": by_pool,
        "disk_bytes_total": sum(by_pool.values()),
    }


def read_pools(conn: libvirt.virConnect) -> list[PoolSpace]:
    """Every running pool; an inactive one has no space and no volumes to offer."""
    spaces = []
    for pool in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        try:
            _state, capacity, allocated, available = pool.info()
            layout = pool_layout(pool)
            volumes = tuple(pool.listVolumes())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (
                libvirt.VIR_ERR_NO_STORAGE_POOL,
                libvirt.VIR_ERR_OPERATION_INVALID,
            ):
                continue  # stopped or removed while it was being read
            raise
        spaces.append(PoolSpace(layout.name, capacity, allocated, available, layout.path, volumes))
    return spaces


def base_images(pool: PoolSpace, domains: Iterable[DomainUse]) -> list[str]:
    """The pool's images a new domain can start from: disk images and ISOs, less the disks of
    defined domains (a disk a domain writes is no base for another; an ISO is read-only)."""
    attached = {os.path.normpath(path) for use in domains for path in use.disks}
    return sorted(
        name
        for name in pool.volumes
        if name.lower().endswith(IMAGE_SUFFIXES)
        and (
            name.lower().endswith(".iso")
            or pool.directory is None
            or os.path.join(pool.directory, name) not in attached
        )
    )


def _pool_entry(pool: PoolSpace, domains: Iterable[DomainUse]) -> dict[str, Any]:
    return {
        "capacity": pool.capacity,
        "allocation": pool.allocation,
        "available": pool.available,
        "images": base_images(pool, domains),
    }


def _all_stats(conn: libvirt.virConnect) -> list[tuple[libvirt.virDomain, dict[str, Any]]]:
    try:
        return list(conn.getAllDomainStats(_STATS, _NOWAIT))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:
            raise
        return list(conn.getAllDomainStats(_STATS, 0))  # a driver without NOWAIT


def _from_stats(
    conn: libvirt.virConnect, dom: libvirt.virDomain, stats: dict[str, Any]
) -> DomainUse:
    state = int(stats.get("state.state", libvirt.VIR_DOMAIN_NOSTATE))
    if "vcpu.current" not in stats or "balloon.maximum" not in stats or "block.count" not in stats:
        return _from_definition(conn, dom, state)
    disks: dict[str, int | None] = {}
    for index in range(int(stats["block.count"])):
        path = stats.get(f"block.{index}.path")
        if path:
            capacity = stats.get(f"block.{index}.capacity")
            disks[str(path)] = int(capacity) if capacity is not None else None
    return DomainUse(
        dom, state, int(stats["vcpu.current"]), int(stats["balloon.maximum"]) // 1024, disks
    )


def _from_definition(conn: libvirt.virConnect, dom: libvirt.virDomain, state: int) -> DomainUse:
    """The same from the domain's XML (the test driver's statistics have only the state)."""
    try:
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
        return DomainUse(dom, libvirt.VIR_DOMAIN_SHUTOFF, 0, 0, {})  # undefined meanwhile
    vcpu = root.find("vcpu")
    vcpus = int((vcpu.get("current") or vcpu.text or "1") if vcpu is not None else "1")
    memory = root.find("memory")
    memory_kib = _kib(memory) if memory is not None else 0
    disks = {path: _volume_capacity(conn, path) for path in _disk_paths(conn, root)}
    return DomainUse(dom, state, vcpus, memory_kib // 1024, disks)


def _kib(element: ET.Element) -> int:
    factors = {"b": 1 / 1024, "bytes": 1 / 1024, "kib": 1, "k": 1, "mib": 1024, "m": 1024,
               "gib": 1024**2, "g": 1024**2}  # fmt: skip
    return int(int(element.text or 0) * factors.get(element.get("unit", "KiB").lower(), 1))


def _disk_paths(conn: libvirt.virConnect, root: ET.Element) -> list[str]:
    paths = []
    for source in root.iterfind("devices/disk/source"):
        path = source.get("file") or source.get("dev")
        if path is None and source.get("pool") and source.get("volume"):
            path = _volume_path(conn, source.get("pool", ""), source.get("volume", ""))
        if path:
            paths.append(path)
    return paths


def _volume_path(conn: libvirt.virConnect, pool: str, volume: str) -> str | None:
    try:
        return str(conn.storagePoolLookupByName(pool).storageVolLookupByName(volume).path())
    except libvirt.libvirtError:
        return None


def _volume_capacity(conn: libvirt.virConnect, path: str) -> int | None:
    try:
        return int(conn.storageVolLookupByPath(path).info()[1])
    except libvirt.libvirtError:
        return None  # not a volume of any pool


def _registry_entry(use: DomainUse) -> dict[str, Any]:
    """A domain as the inventory's built-in ``domains`` group reads it."""
    running = use.state not in _OFF
    return {
        "name": use.domain.name(),
        "state": domain_state_name(use.state),
        "addresses": leased_addresses(use.domain) if running else [],
    }
