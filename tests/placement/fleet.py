"""Hypervisor records for the placement tests: one-liners with sensible defaults, and a
seeded random fleet for the property-style checks."""

from __future__ import annotations

import random
from collections.abc import Mapping

from orchestrator.placement import (
    Capacity,
    Group,
    GroupPolicy,
    HostState,
    HostView,
    PlacementRequest,
    PoolCapacity,
    Resources,
    Strategy,
)

GIB = 2**30
MIB = 2**20


def hypervisor(
    name: str,
    *,
    cpus: int = 8,
    memory_mib: int = 16384,
    state: HostState = HostState.UP,
    labels: Mapping[str, str] | None = None,
    pools: Mapping[str, PoolCapacity] | None = None,
    cpu_modes: frozenset[str] = frozenset({"host-model", "custom"}),
    allocated: Resources | None = None,
    claimed: Resources | None = None,
    provisioning: int = 0,
    reserved_memory_mib: int | None = None,
) -> HostView:
    if pools is None:
        pools = {"default": PoolCapacity(500 * GIB, 400 * GIB, frozenset({"c7.qcow2"}))}
    return HostView(
        name,
        state,
        Capacity(cpus, memory_mib, pools, cpu_modes),
        labels or {},
        allocated or Resources(),
        claimed or Resources(),
        provisioning,
        reserved_memory_mib,
    )


def random_fleet(rng: random.Random, size: int) -> list[HostView]:
    """Hypervisors of varied sizes, some partly used, some not up."""
    states = [HostState.UP] * 8 + [HostState.DOWN, HostState.DRAINING]
    fleet = []
    for i in range(size):
        cpus = rng.choice([4, 8, 16, 32])
        memory = rng.choice([4096, 8192, 16384, 65536])
        total = rng.choice([50, 200, 1000]) * GIB
        free = rng.randint(0, total)
        pools = {"default": PoolCapacity(total, free, frozenset({"c7.qcow2"}))}
        allocated = Resources(rng.randint(0, cpus * 3), rng.randint(0, memory // 2))
        fleet.append(
            hypervisor(
                f"hv{i:03d}",
                cpus=cpus,
                memory_mib=memory,
                state=rng.choice(states),
                labels={"zone": rng.choice(["a", "b"]), "rack": f"r{rng.randint(1, 4)}"},
                pools=pools,
                allocated=allocated,
                provisioning=rng.randint(0, 3),
            )
        )
    return fleet


def random_request(rng: random.Random) -> PlacementRequest:
    group = None
    if rng.random() < 0.3:
        policy = rng.choice(list(GroupPolicy))
        group = Group("g", policy, frozenset())
    return PlacementRequest(
        vcpus=rng.choice([1, 2, 4, 8]),
        memory_mib=rng.choice([512, 1024, 2048, 4096, 8192]),
        disk_bytes={"default": rng.choice([1, 10, 40, 100]) * GIB},
        pool="default",
        zone=rng.choice([None, "a", "b"]),
        group=group,
        strategy=rng.choice(list(Strategy)),
    )
