"""What a refusal says: each filter and how many hypervisors it removed, and the one that
came closest with what it lacked."""

from __future__ import annotations

import random

from orchestrator.placement import (
    Group,
    GroupPolicy,
    HostState,
    NoHypervisorFits,
    PlacementRequest,
    Resources,
    place,
    place_many,
)
from tests.placement.fleet import GIB, hypervisor


def twelve_hypervisors():
    """hv7 and hv9 down; hv3 the nearest to fitting; hv12 runs a member of group web."""
    hosts = [hypervisor(f"hv{i}", memory_mib=4096) for i in range(1, 13)]
    hosts[6] = hypervisor("hv7", state=HostState.DOWN)
    hosts[8] = hypervisor("hv9", state=HostState.DOWN)
    hosts[2] = hypervisor("hv3", memory_mib=6144)  # 5632 free: 1536 short of 7168
    hosts[11] = hypervisor("hv12", memory_mib=65536)
    return hosts


def test_the_refusal_names_each_filter_its_count_and_the_closest_hypervisor() -> None:
    web = Group("web", GroupPolicy.ANTI_AFFINITY, frozenset({"hv12"}))
    decision = place(twelve_hypervisors(), PlacementRequest(2, 7168, group=web))
    assert not decision.placed
    assert decision.explain() == (
        "no hypervisor fits: 12 hosts; state removed 2 (down: hv7, hv9), memory removed 9, "
        "anti-affinity group web removed 1 (hv12); "
        "closest: hv3 (needs 1536 MiB more memory under ratio 1.0)"
    )
    removed = {o.name: o.removed for o in decision.filters}
    assert removed == {
        "state": 2,
        "vcpus": 0,
        "memory": 9,
        "anti-affinity group web": 1,
        "provisioning": 0,
    }


def test_the_closest_hypervisor_is_the_one_failing_fewest_filters_then_missing_least() -> None:
    hosts = [
        hypervisor("hv1", state=HostState.DOWN, memory_mib=65536),  # fails state only: all
        hypervisor("hv2", memory_mib=4096),  # fails memory only: 4608 of 8192 short
        hypervisor("hv3", memory_mib=8192, allocated=Resources(vcpus=32)),  # memory + vcpus
        hypervisor("hv4", memory_mib=6144),  # fails memory only: 2560 short
    ]
    decision = place(hosts, PlacementRequest(1, 8192))
    assert decision.closest is not None
    assert (decision.closest.name, decision.closest.passed) == ("hv4", 3)
    assert decision.closest.lacks == (("memory", "needs 2560 MiB more memory under ratio 1.0"),)


def test_a_filter_lists_at_most_ten_names_and_counts_the_rest() -> None:
    hosts = [hypervisor(f"hv{i:02d}", state=HostState.DOWN) for i in range(25)]
    decision = place(hosts, PlacementRequest(1, 512))
    state = decision.filters[0]
    assert state.removed == 25
    assert state.names == tuple(f"hv{i:02d}" for i in range(10))
    assert (
        "state removed 25 (down: hv00, hv01, hv02, hv03, hv04, hv05, hv06, hv07, hv08, "
        "hv09 and 15 more)" in decision.explain()
    )


def test_disk_and_pool_refusals_say_which_pool() -> None:
    hosts = [hypervisor("hv1"), hypervisor("hv2", pools={})]
    decision = place(hosts, PlacementRequest(1, 512, {"default": 450 * GIB}))
    assert decision.explain() == (
        "no hypervisor fits: 2 hosts; pool removed 1 (hv2), disk removed 1 (hv1); "
        "closest: hv1 (needs 50 GiB more disk in pool default under ratio 1.0)"
    )


def test_a_placed_decision_says_where_and_what_was_removed() -> None:
    hosts = [hypervisor("hv1"), hypervisor("hv2", state=HostState.DISABLED)]
    decision = place(hosts, PlacementRequest(1, 512))
    assert decision.explain() == (
        "placed on hv1 (spread): 2 hosts, 1 passed every filter; state removed 1 (disabled: hv2)"
    )


def test_with_no_hypervisor_known_the_refusal_says_so() -> None:
    decision = place([], PlacementRequest(1, 512))
    assert decision.explain() == "no hypervisor fits: no hypervisor is known"
    assert decision.closest is None


def test_the_refusal_becomes_a_409_problem_carrying_the_whole_decision() -> None:
    decision = place([hypervisor("hv1", memory_mib=1024)], PlacementRequest(1, 2048))
    problem = NoHypervisorFits.of(decision).to_problem()
    assert problem["status"] == 409
    assert problem["type"] == "urn:orchestrator:problem:no-hypervisor-fits"
    assert problem["detail"] == decision.explain()
    assert problem["placement"]["filters"][2] == {
        "filter": "memory",
        "removed": 1,
        "hosts": ["hv1"],
    }
    assert problem["placement"]["closest"]["lacks"] == [
        {"filter": "memory", "lack": "needs 1536 MiB more memory under ratio 1.0"}
    ]


def test_a_batch_refusal_says_which_vm_found_no_room() -> None:
    hosts = [hypervisor("hv1", memory_mib=4096), hypervisor("hv2", memory_mib=4096)]
    batch = place_many(hosts, PlacementRequest(1, 2048), 3)
    assert not batch.placed
    assert batch.explain() == (
        "VM 3 of 3: no hypervisor fits: 2 hosts; memory removed 2 (hv1, hv2); "
        "closest: hv1 (needs 512 MiB more memory under ratio 1.0)"
    )


def test_the_names_a_filter_lists_are_the_first_it_removed_wherever_they_sit() -> None:
    rng = random.Random(3)
    for _ in range(300):
        size = rng.randint(0, 40)
        hosts = [
            hypervisor(f"hv{i:02d}", state=HostState.DOWN if rng.random() < 0.3 else HostState.UP)
            for i in range(size)
        ]
        state = place(hosts, PlacementRequest(1, 512)).filters[0]
        down = [h.name for h in hosts if h.state is HostState.DOWN]
        assert (state.removed, state.names) == (len(down), tuple(down[:10]))
