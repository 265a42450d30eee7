"""What each hypervisor can still take under the policy's ratios, worked out once per view so
that every filter is a comparison and a batch can claim into it as it goes."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.placement.hosts import HostState, HostView
from orchestrator.placement.policy import PlacementPolicy
from orchestrator.placement.request import PlacementRequest


class Headroom:
    """One hypervisor's free amounts under the ratios, less what it holds and has claimed.

    ``vcpus_free`` is cpus x cpu ratio - allocated - claimed; ``memory_free_mib`` is memory x
    ram ratio - reserved - allocated - claimed (Nova's RamFilter); ``disk_free[pool]`` is
    free - total x (1 - disk ratio) - claimed (Nova's DiskFilter: physical use plus the bytes
    claimed and not yet written). A negative value means the hypervisor is already over."""

    __slots__ = (
        "cpu_modes",
        "disk_free",
        "host",
        "images",
        "labels",
        "memory_free_mib",
        "name",
        "provisioning",
        "state",
        "vcpus_free",
    )

    def __init__(self, host: HostView, policy: PlacementPolicy) -> None:
        capacity, allocated, claimed = host.capacity, host.allocated, host.claimed
        reserved = host.reserved_memory_mib
        if reserved is None:
            reserved = policy.reserved_host_memory_mib
        self.host = host
        self.name = host.name
        self.state: HostState = host.state
        self.labels = host.labels
        self.cpu_modes = capacity.cpu_modes
        self.provisioning = host.provisioning
        self.vcpus_free = (
            capacity.cpus * policy.cpu_allocation_ratio - allocated.vcpus - claimed.vcpus
        )
        self.memory_free_mib = (
            capacity.memory_mib * policy.ram_allocation_ratio
            - reserved
            - allocated.memory_mib
            - claimed.memory_mib
        )
        overcommit = 1.0 - policy.disk_allocation_ratio
        in_flight = claimed.disk_bytes
        self.disk_free: dict[str, float] = {
            pool: space.free_bytes - space.total_bytes * overcommit - in_flight.get(pool, 0)
            for pool, space in capacity.pools.items()
        }
        self.images: Mapping[str, frozenset[str]] = {
            pool: space.images for pool, space in capacity.pools.items()
        }

    def take(self, request: PlacementRequest) -> None:
        """Count ``request`` as claimed here: one more VM being provisioned."""
        self._add(request, -1)

    def give_back(self, request: PlacementRequest) -> None:
        """Undo :meth:`take`."""
        self._add(request, 1)

    def _add(self, request: PlacementRequest, sign: int) -> None:
        self.vcpus_free += sign * request.vcpus
        self.memory_free_mib += sign * request.memory_mib
        for pool, size in request.disk_bytes.items():
            self.disk_free[pool] = self.disk_free.get(pool, 0) + sign * size
        self.provisioning -= sign
