"""What a VM asks of placement: its size, where it may land, and how it sits beside others."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

_NONE: Mapping[str, int] = MappingProxyType({})
_NO_LABELS: Mapping[str, str] = MappingProxyType({})


class Strategy(StrEnum):
    SPREAD = "spread"  # most free first: load evens out, one failure hurts fewer VMs
    PACK = "pack"  # least free first: keeps whole hypervisors empty for large VMs


class GroupPolicy(StrEnum):
    AFFINITY = "affinity"  # every member on the same hypervisor
    ANTI_AFFINITY = "anti-affinity"  # no two members on the same hypervisor


@dataclass(frozen=True)
class Group:
    """A server group the VM joins, and the hypervisors its members already run on."""

    name: str
    policy: GroupPolicy
    hosts: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """How explanations name it: ``anti-affinity group web``."""
        return f"{self.policy.value} group {self.name}"

    def with_member_on(self, host: str) -> Group:
        return Group(self.name, self.policy, self.hosts | {host})


@dataclass(frozen=True)
class PlacementRequest:
    """One VM to place. ``disk_bytes`` maps each storage pool to the bytes its disks take
    there; ``pool`` (and ``base_image`` in it) must exist on the hypervisor; ``labels`` and
    ``zone`` must match the hypervisor's labels exactly."""

    vcpus: int
    memory_mib: int
    disk_bytes: Mapping[str, int] = field(default_factory=lambda: _NONE)
    pool: str | None = None
    base_image: str | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: _NO_LABELS)
    zone: str | None = None
    group: Group | None = None
    cpu_mode: str | None = None
    strategy: Strategy = Strategy.SPREAD

    def __post_init__(self) -> None:
        if self.vcpus < 0 or self.memory_mib < 0 or min(self.disk_bytes.values(), default=0) < 0:
            raise ValueError("a placement request cannot ask for a negative amount")
        if self.base_image is not None and self.pool is None:
            raise ValueError("a base image is looked up in a pool: name the pool too")
        if self.zone is not None and self.labels.get("zone", self.zone) != self.zone:
            raise ValueError("zone and labels['zone'] disagree")

    @property
    def required_labels(self) -> Mapping[str, str]:
        """The labels a hypervisor must carry, ``zone`` included."""
        if self.zone is None:
            return self.labels
        return {**self.labels, "zone": self.zone}
