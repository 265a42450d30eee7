"""Each filter's rule at its boundary: exactly at the limit fits, one unit over does not, and
the refusal says what was missing."""

from __future__ import annotations

import random

import pytest

from orchestrator.placement import (
    Group,
    GroupPolicy,
    HostState,
    HostView,
    PlacementPolicy,
    PlacementRequest,
    PlacementView,
    PoolCapacity,
    Resources,
    default_filters,
)
from tests.placement.fleet import GIB, MIB, hypervisor, random_fleet, random_request


def refusal(host: HostView, request: PlacementRequest, policy: PlacementPolicy | None = None):
    """What the one hypervisor lacks, per filter; empty when it takes the request."""
    decision = PlacementView([host], policy).place(request)
    if decision.placed:
        return {}
    assert decision.closest is not None
    return dict(decision.closest.lacks)


def test_only_up_hypervisors_take_work_and_the_others_are_named_by_state() -> None:
    hosts = [
        hypervisor("hv1"),
        hypervisor("hv2", state=HostState.DOWN),
        hypervisor("hv3", state=HostState.DISABLED),
        hypervisor("hv4", state=HostState.DRAINING),
        hypervisor("hv5", state=HostState.DOWN),
    ]
    decision = PlacementView(hosts).place(PlacementRequest(1, 1024))
    assert decision.chosen == "hv1"
    state = decision.filters[0]
    assert (state.name, state.removed) == ("state", 4)
    assert dict(state.by_reason) == {
        "down": ("hv2", "hv5"),
        "disabled": ("hv3",),
        "draining": ("hv4",),
    }
    assert refusal(hosts[3], PlacementRequest(1, 1024)) == {"state": "is draining"}


def test_memory_fits_exactly_at_the_ratio_less_reserved_and_not_one_mib_more() -> None:
    # 16384 - 512 reserved - 4096 held by domains - 1024 claimed = 10752 MiB left.
    host = hypervisor(
        "hv1", allocated=Resources(memory_mib=4096), claimed=Resources(memory_mib=1024)
    )
    assert refusal(host, PlacementRequest(1, 10752)) == {}
    assert refusal(host, PlacementRequest(1, 10753)) == {
        "memory": "needs 1 MiB more memory under ratio 1.0"
    }


def test_memory_ratio_and_a_hypervisors_own_reserve_move_the_boundary() -> None:
    policy = PlacementPolicy(ram_allocation_ratio=1.5)
    assert refusal(hypervisor("hv1"), PlacementRequest(1, 24064), policy) == {}  # 24576 - 512
    assert refusal(hypervisor("hv1"), PlacementRequest(1, 24065), policy) == {
        "memory": "needs 1 MiB more memory under ratio 1.5"
    }
    own = hypervisor("hv2", reserved_memory_mib=2048)
    assert refusal(own, PlacementRequest(1, 14336)) == {}
    assert "memory" in refusal(own, PlacementRequest(1, 14337))


def test_vcpus_fit_under_the_cpu_ratio_of_four_and_not_one_more() -> None:
    # 8 CPUs x 4.0 = 32; 20 held and 4 claimed leave 8.
    host = hypervisor("hv1", allocated=Resources(vcpus=20), claimed=Resources(vcpus=4))
    assert refusal(host, PlacementRequest(8, 512)) == {}
    assert refusal(host, PlacementRequest(9, 512)) == {
        "vcpus": "needs 1 more vCPUs under ratio 4.0"
    }
    assert refusal(host, PlacementRequest(16, 512), PlacementPolicy(cpu_allocation_ratio=5.0)) == {}


def test_disk_fits_the_free_bytes_less_claims_and_not_one_mib_more() -> None:
    pools = {"default": PoolCapacity(100 * GIB, 30 * GIB)}
    host = hypervisor("hv1", pools=pools, claimed=Resources(disk_bytes={"default": 5 * GIB}))
    assert refusal(host, PlacementRequest(1, 512, {"default": 25 * GIB})) == {}
    assert refusal(host, PlacementRequest(1, 512, {"default": 25 * GIB + MIB})) == {
        "disk": "needs 1 MiB more disk in pool default under ratio 1.0"
    }


def test_a_disk_ratio_above_one_lends_a_share_of_the_pools_total() -> None:
    # Nova's DiskFilter: free - total x (1 - ratio) = 30 + 20 GiB, less 5 GiB claimed.
    pools = {"default": PoolCapacity(100 * GIB, 30 * GIB)}
    host = hypervisor("hv1", pools=pools, claimed=Resources(disk_bytes={"default": 5 * GIB}))
    policy = PlacementPolicy(disk_allocation_ratio=1.2)
    assert refusal(host, PlacementRequest(1, 512, {"default": 45 * GIB}), policy) == {}
    assert refusal(host, PlacementRequest(1, 512, {"default": 45 * GIB + 1}), policy) == {
        "disk": "needs 1 B more disk in pool default under ratio 1.2"
    }


def test_the_required_pool_and_base_image_must_be_there() -> None:
    host = hypervisor("hv1")  # pool "default" holding c7.qcow2
    assert refusal(host, PlacementRequest(1, 512, pool="default", base_image="c7.qcow2")) == {}
    assert refusal(host, PlacementRequest(1, 512, pool="fast")) == {"pool": "has no pool fast"}
    assert refusal(host, PlacementRequest(1, 512, pool="default", base_image="c8.qcow2")) == {
        "pool": "has no base image c8.qcow2 in pool default"
    }
    # A disk in a pool the hypervisor lacks is a missing pool, not a lack of space.
    assert refusal(host, PlacementRequest(1, 512, {"fast": GIB})) == {"pool": "has no pool fast"}


def test_labels_and_zone_must_match_exactly() -> None:
    host = hypervisor("hv1", labels={"zone": "a", "rack": "r1"})
    assert refusal(host, PlacementRequest(1, 512, zone="a", labels={"rack": "r1"})) == {}
    assert refusal(host, PlacementRequest(1, 512, zone="b")) == {
        "labels": "lacks label zone=b (has a)"
    }
    assert refusal(host, PlacementRequest(1, 512, labels={"gpu": "yes"})) == {
        "labels": "lacks label gpu=yes"
    }


def test_the_cpu_mode_must_be_one_seen_to_boot() -> None:
    host = hypervisor("hv1", cpu_modes=frozenset({"custom", "host-model"}))
    assert refusal(host, PlacementRequest(1, 512, cpu_mode="custom")) == {}
    assert refusal(host, PlacementRequest(1, 512, cpu_mode="host-passthrough")) == {
        "cpu mode": "cannot boot cpu mode host-passthrough (boots: custom, host-model)"
    }


def test_anti_affinity_keeps_members_apart_and_affinity_together() -> None:
    hosts = [hypervisor("hv1"), hypervisor("hv2"), hypervisor("hv3", memory_mib=65536)]
    apart = Group("web", GroupPolicy.ANTI_AFFINITY, frozenset({"hv3"}))
    decision = PlacementView(hosts).place(PlacementRequest(1, 512, group=apart))
    assert decision.chosen in {"hv1", "hv2"}
    assert [(o.name, o.removed) for o in decision.filters][-2] == ("anti-affinity group web", 1)
    together = Group("db", GroupPolicy.AFFINITY, frozenset({"hv2"}))
    assert PlacementView(hosts).place(PlacementRequest(1, 512, group=together)).chosen == "hv2"
    assert refusal(hosts[0], PlacementRequest(1, 512, group=together)) == {
        "affinity group db": "runs no member of affinity group db (members on hv2)"
    }
    first = Group("db", GroupPolicy.AFFINITY)  # no member yet: anywhere, by weight
    assert PlacementView(hosts).place(PlacementRequest(1, 512, group=first)).chosen == "hv3"


def test_concurrent_provisioning_is_capped_per_hypervisor() -> None:
    assert refusal(hypervisor("hv1", provisioning=7), PlacementRequest(1, 512)) == {}
    assert refusal(hypervisor("hv1", provisioning=8), PlacementRequest(1, 512)) == {
        "provisioning": "already provisions 8 VMs (at most 8 at once)"
    }
    unbounded = PlacementPolicy(max_provisioning_per_host=None)
    assert refusal(hypervisor("hv1", provisioning=80), PlacementRequest(1, 512), unbounded) == {}


def test_a_refused_hypervisor_is_told_everything_it_lacks() -> None:
    host = hypervisor("hv1", state=HostState.DOWN, memory_mib=2048, labels={"zone": "a"})
    assert refusal(host, PlacementRequest(1, 4096, zone="b")) == {
        "state": "is down",
        "labels": "lacks label zone=b (has a)",
        "memory": "needs 2560 MiB more memory under ratio 1.0",
    }


def test_each_filters_fast_rule_agrees_with_its_explanation() -> None:
    rng = random.Random(11)
    view = PlacementView(random_fleet(rng, 150))
    for _ in range(200):
        request = random_request(rng)
        for rule in default_filters(view.policy):
            kept = {row.name for row in rule.keep(view.rows, request)}
            explained = {row.name for row in view.rows if rule.lack(row, request) is None}
            assert kept == explained, (rule.name, request)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_image": "c7.qcow2"}, "name the pool"),
        ({"zone": "a", "labels": {"zone": "b"}}, "disagree"),
        ({"disk_bytes": {"default": -1}}, "negative"),
    ],
)
def test_contradictory_requests_are_refused(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        PlacementRequest(1, 512, **kwargs)
