"""A VM that has landed is counted once by placement: between the heartbeat listing its domain
(its room now in the hypervisor's allocation) and the recorder dropping its claim, the claim
is not counted on top. Before, a count placed right after another could be refused for room
that was there. The placer runs in-process on a real Redis and database; the heartbeat is
written as a worker writes it."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.hypervisors.claims import ClaimBook, Limits
from orchestrator.hypervisors.placer import Placer
from orchestrator.jobs.livestate import LiveState
from orchestrator.kinds import get_kind, parse_params
from orchestrator.placement import NoHypervisorFits, PlacementPolicy, Resources

GIB = 1024**3


@pytest.fixture
def live(empty_redis: redis.Redis) -> LiveState:
    return LiveState(empty_redis)


def beat(live: LiveState, domains: list[str], vcpus: int) -> None:
    """hv1 with 4 CPUs, as its worker reports it, holding ``domains`` of ``vcpus`` in all."""
    capacity = {
        "cpus": 4,
        "memory_mib": 16384,
        "pools": {"default": {"capacity": 100 * GIB, "allocation": 0, "available": 100 * GIB}},
        "domains": [{"name": name} for name in domains],
    }
    allocated = {"vcpus": vcpus, "memory_mib": 1024 * len(domains), "disk_bytes_by_pool": {}}
    live.beat("hv1", {"capacity": capacity, "allocated": allocated}, ttl=60)


def vm(name: str, vcpus: int) -> Any:
    disk = {"pool": "default", "size": "1G"}
    params = {"name": name, "vcpus": vcpus, "memory_mib": 1024, "disk": disk}
    return parse_params(get_kind("vm.provision"), {**params, "graphics": "none"})


def test_a_landed_vms_claim_is_not_counted_on_top_of_its_allocation(
    live: LiveState, database_url: str
) -> None:
    policy = PlacementPolicy(cpu_allocation_ratio=1.0, reserved_host_memory_mib=0)
    placer = Placer(make_sessionmaker(make_engine(database_url)), live, "hv1", policy)
    # web-1 landed: its 2 vCPUs are in the heartbeat's allocation, and its claim is not
    # dropped yet (the recorder drops it at its next pass).
    ClaimBook(live.redis).claim("hv1", Resources(2, 1024), Limits(), domain="web-1")
    beat(live, ["web-1"], vcpus=2)

    placed = placer.place("vm.provision", vm("web-2", 2))

    assert placed.hypervisor == "hv1"
    # Counted once is not counted never: the 4 vCPUs are now all taken.
    with pytest.raises(NoHypervisorFits, match="vcpus removed 1"):
        placer.place("vm.provision", vm("web-3", 1))
