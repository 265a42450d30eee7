"""What placement knows about one hypervisor: its state, labels, capacity, what its domains
already hold and what jobs have claimed but not yet made. Memory is MiB, disk bytes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

_NO_DISK: Mapping[str, int] = MappingProxyType({})


class HostState(StrEnum):
    UP = "up"  # heartbeats arrive; takes new work
    DOWN = "down"  # heartbeats stopped; stays listed, takes nothing
    DISABLED = "disabled"  # an operator took it out; takes nothing
    DRAINING = "draining"  # finishes the jobs it has; takes nothing new


@dataclass(frozen=True)
class Resources:
    """An amount of vCPUs, memory and disk per storage pool: what a hypervisor's domains
    hold, or what running jobs have claimed there."""

    vcpus: int = 0
    memory_mib: int = 0
    disk_bytes: Mapping[str, int] = field(default_factory=lambda: _NO_DISK)


@dataclass(frozen=True)
class PoolCapacity:
    """One storage pool as libvirt reports it, and the base images (volume names) in it.

    The pool's total is what the disk allocation ratio scales, as in Nova's DiskFilter."""

    total_bytes: int
    free_bytes: int
    images: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Capacity:
    """What the hypervisor has: host CPUs, memory, its storage pools, and the guest CPU modes
    that were seen to boot there (nested KVM refuses some)."""

    cpus: int
    memory_mib: int
    pools: Mapping[str, PoolCapacity] = field(default_factory=dict)
    cpu_modes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class HostView:
    """One hypervisor as the registry sees it at the moment of a decision.

    ``allocated`` is what its domains hold (from libvirt); ``claimed`` what placed jobs have
    reserved and not yet made, released when they finish or fail; ``provisioning`` how many
    provisioning jobs run on it now. ``reserved_memory_mib`` overrides the policy's reserved
    host memory for this hypervisor."""

    name: str
    state: HostState
    capacity: Capacity
    labels: Mapping[str, str] = field(default_factory=dict)
    allocated: Resources = Resources()
    claimed: Resources = Resources()
    provisioning: int = 0
    reserved_memory_mib: int | None = None
