"""What a worker's heartbeat tells placement about its hypervisor: capacity, what its domains
hold, the CPU modes that boot there.

Read defensively: a key a worker does not send means "unknown", and an unknown never removes a
hypervisor by itself (pools and CPU modes it does not report are taken as having what the
request asks); unknown CPUs or memory count as none, so a request for resources never lands
where nobody knows there is room. The registry-backed choice of a hypervisor is
``orchestrator.hypervisors.placer``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.placement.hosts import Capacity, PoolCapacity, Resources
from orchestrator.placement.request import PlacementRequest

# A pool nobody reported: room enough for any request.
UNKNOWN_POOL_BYTES = 2**62


def capacity_from_beat(
    beat: Mapping[str, Any], request: PlacementRequest | None = None
) -> Capacity:
    """``capacity`` {cpus, memory_mib, pools {name: {capacity, available, images}}} and
    ``cpu_modes`` (beside ``capacity`` or in it)."""
    capacity = _mapping(beat.get("capacity"))
    pools = _pools(capacity.get("pools"), request)
    modes = beat.get("cpu_modes", capacity.get("cpu_modes"))
    if isinstance(modes, list):
        cpu_modes = frozenset(str(mode) for mode in modes)
    else:
        cpu_modes = frozenset({request.cpu_mode} if request and request.cpu_mode else ())
    return Capacity(_int(capacity.get("cpus")), _int(capacity.get("memory_mib")), pools, cpu_modes)


def allocated_from_beat(beat: Mapping[str, Any]) -> Resources:
    """``allocated`` {vcpus, memory_mib, disk_bytes_by_pool} (beside ``capacity`` or in it);
    ``disk_bytes`` counts per pool when it is a mapping."""
    allocated = _mapping(beat.get("allocated", _mapping(beat.get("capacity")).get("allocated")))
    disk = allocated.get("disk_bytes_by_pool", allocated.get("disk_bytes"))
    per_pool = {str(k): _int(v) for k, v in disk.items()} if isinstance(disk, Mapping) else {}
    return Resources(_int(allocated.get("vcpus")), _int(allocated.get("memory_mib")), per_pool)


def _pools(raw: Any, request: PlacementRequest | None) -> dict[str, PoolCapacity]:
    if not isinstance(raw, Mapping):
        return _unknown_pools(request)
    pools = {}
    for name, pool in raw.items():
        info = _mapping(pool)
        images = frozenset(str(image) for image in info.get("images") or ())
        total = _int(info.get("capacity"))
        pools[str(name)] = PoolCapacity(total, _int(info.get("available")), images)
    return pools


def _unknown_pools(request: PlacementRequest | None) -> dict[str, PoolCapacity]:
    if request is None:
        return {}
    names = {*request.disk_bytes, *([request.pool] if request.pool else [])}
    images = frozenset({request.base_image} if request.base_image else ())
    return {name: PoolCapacity(UNKNOWN_POOL_BYTES, UNKNOWN_POOL_BYTES, images) for name in names}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def listed_domains(beat: Mapping[str, Any]) -> set[str] | None:
    """The domains the heartbeat's last libvirt read listed; None when it lists none."""
    capacity = beat.get("capacity")
    domains = capacity.get("domains") if isinstance(capacity, Mapping) else None
    if not isinstance(domains, list):
        return None
    return {str(d.get("name")) for d in domains if isinstance(d, Mapping)}
