"""The operator's placement settings, with OpenStack Nova's defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlacementPolicy:
    """Allocation ratios let a hypervisor promise more than it has (vCPUs mostly sit idle;
    memory and disk do not). ``max_provisioning_per_host`` bounds the provisioning jobs one
    hypervisor runs at once, as Nova's ``max_io_ops_per_host``; ``None`` lifts the bound.
    The weights scale each weigher's 0..1 score; ``ranked`` is how many candidates a decision
    lists."""

    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mib: int = 512
    max_provisioning_per_host: int | None = 8
    memory_weight: float = 1.0
    vcpu_weight: float = 0.5
    ranked: int = 10

    def __post_init__(self) -> None:
        ratios = (self.cpu_allocation_ratio, self.ram_allocation_ratio, self.disk_allocation_ratio)
        if min(ratios) <= 0:
            raise ValueError("allocation ratios must be positive")
        if self.ranked < 1:
            raise ValueError("a decision lists at least the chosen candidate")
