"""Heartbeats read for placement: what a worker reports, and what it leaves unknown."""

from __future__ import annotations

from orchestrator.hypervisors.claims import HostClaims
from orchestrator.hypervisors.view import Entry, host_views
from orchestrator.placement import (
    HostState,
    PlacementRequest,
    PoolCapacity,
    Resources,
    place,
)

GIB = 1024**3
POOL = {
    "capacity": 100 * GIB,
    "allocation": 40 * GIB,
    "available": 60 * GIB,
    "images": ["c7.qcow2"],
}
FULL_BEAT = {
    "name": "hv1",
    "alive": True,
    "capacity": {"cpus": 8, "memory_mib": 16384, "pools": {"default": POOL}},
    "allocated": {"vcpus": 6, "memory_mib": 4096, "disk_bytes": 0,
                  "disk_bytes_by_pool": {"default": 30 * GIB}},
    "cpu_modes": ["custom"],
}  # fmt: skip


def test_a_full_heartbeat_gives_capacity_allocation_and_claims() -> None:
    claims = {"hv1": HostClaims(Resources(2, 1024, {"default": GIB}), 1, "3")}
    [view] = host_views([Entry("hv1", "up", {"zone": "a"})], [FULL_BEAT], claims)
    assert view.state is HostState.UP and view.labels == {"zone": "a"}
    assert (view.capacity.cpus, view.capacity.memory_mib) == (8, 16384)
    assert view.capacity.pools["default"] == PoolCapacity(
        100 * GIB, 60 * GIB, frozenset({"c7.qcow2"})
    )
    assert view.capacity.cpu_modes == frozenset({"custom"})
    assert view.allocated == Resources(6, 4096, {"default": 30 * GIB})
    assert (view.claimed, view.provisioning) == (Resources(2, 1024, {"default": GIB}), 1)


def test_what_a_heartbeat_leaves_out_never_removes_a_hypervisor_by_itself() -> None:
    old_beat = {"name": "hv1", "alive": True, "capacity": {"cpus": 8, "memory_mib": 16384}}
    request = PlacementRequest(
        vcpus=1, memory_mib=512, disk_bytes={"default": GIB}, pool="default",
        base_image="c7.qcow2", cpu_mode="host-model",
    )  # fmt: skip
    views = host_views([], [old_beat], {}, request)
    assert place(views, request).chosen == "hv1"
    # Unknown CPUs and memory are none: a VM never lands where nobody knows there is room.
    blind = {"name": "hv2", "alive": True, "capacity": None}
    decision = place(host_views([], [blind], {}, request), request)
    assert decision.chosen is None and "vcpus removed 1" in decision.explain()


def test_liveness_comes_from_the_heartbeat_and_the_operator_state_from_the_registry() -> None:
    entries = [Entry("hv1", "up"), Entry("hv2", "draining"), Entry("hv3", "up")]
    beats = [FULL_BEAT, {**FULL_BEAT, "name": "hv2"}, {**FULL_BEAT, "name": "hv3", "alive": False}]
    states = {
        v.name: v.state for v in host_views(entries, [*beats, {**FULL_BEAT, "name": "hv4"}], {})
    }
    assert states == {
        "hv1": HostState.UP,
        "hv2": HostState.DRAINING,
        "hv3": HostState.DOWN,
        "hv4": HostState.UP,  # beating before the recorder wrote it down
    }
