"""Placing ``count`` VMs at once: each claimed into the view before the next, so the batch
never overcommits a hypervisor, keeps its group rules, and claims nothing when it fails."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

from orchestrator.placement import (
    Group,
    GroupPolicy,
    HostState,
    HostView,
    PlacementPolicy,
    PlacementRequest,
    PlacementView,
    place_many,
)
from tests.placement.fleet import hypervisor, random_fleet, random_request


def test_anti_affinity_puts_every_member_of_a_batch_on_its_own_hypervisor() -> None:
    hosts = [hypervisor(f"hv{i}") for i in range(1, 6)]
    web = Group("web", GroupPolicy.ANTI_AFFINITY, frozenset({"hv2"}))
    batch = place_many(hosts, PlacementRequest(1, 512, group=web), 4)
    assert batch.placed
    assert sorted(batch.hosts) == ["hv1", "hv3", "hv4", "hv5"]


def test_anti_affinity_fails_clearly_when_members_outnumber_hypervisors() -> None:
    hosts = [hypervisor(f"hv{i}") for i in range(1, 4)]
    web = Group("web", GroupPolicy.ANTI_AFFINITY)
    batch = place_many(hosts, PlacementRequest(1, 512, group=web), 4)
    assert not batch.placed
    assert len(batch.decisions) == 3
    assert batch.explain() == (
        "VM 4 of 4: no hypervisor fits: 3 hosts; anti-affinity group web removed 3 "
        "(hv1, hv2, hv3); closest: hv1 (already runs a member of anti-affinity group web)"
    )


def test_affinity_keeps_a_batch_on_one_hypervisor_until_it_is_full() -> None:
    hosts = [hypervisor("hv1", memory_mib=4096), hypervisor("hv2", memory_mib=65536)]
    db = Group("db", GroupPolicy.AFFINITY)
    assert place_many(hosts, PlacementRequest(1, 1024, group=db), 5).hosts == ("hv2",) * 5
    small_first = Group("db", GroupPolicy.AFFINITY, frozenset({"hv1"}))
    batch = place_many(hosts, PlacementRequest(1, 1024, group=small_first), 4)
    assert batch.hosts == ("hv1",) * 3
    assert "closest: hv1 (needs 512 MiB more memory under ratio 1.0)" in batch.explain()


def test_a_batch_counts_its_own_vms_against_the_provisioning_cap() -> None:
    hosts = [hypervisor("hv1", provisioning=6), hypervisor("hv2", memory_mib=4096)]
    policy = PlacementPolicy(max_provisioning_per_host=8)
    batch = place_many(hosts, PlacementRequest(1, 256), 6, policy)
    assert batch.per_host() == {"hv1": 2, "hv2": 4}


def test_a_failed_batch_claims_nothing_and_a_later_one_sees_the_whole_room() -> None:
    view = PlacementView([hypervisor("hv1", memory_mib=4096)])  # 3584 MiB
    assert not view.place_many(PlacementRequest(1, 1024), 4).placed
    assert view.headroom("hv1").memory_free_mib == 3584
    assert view.headroom("hv1").provisioning == 0
    assert view.place_many(PlacementRequest(1, 1024), 3).placed
    assert view.headroom("hv1").memory_free_mib == 512


def test_placing_never_changes_the_hypervisor_records_it_was_given() -> None:
    hosts = [hypervisor("hv1")]
    before = repr(hosts)
    place_many(hosts, PlacementRequest(2, 1024, {"default": 2**30}), 5)
    assert repr(hosts) == before


def test_batches_never_push_a_hypervisor_past_its_ratios() -> None:
    rng = random.Random(20260611)
    for trial in range(60):
        policy = PlacementPolicy(
            cpu_allocation_ratio=rng.choice([1.0, 4.0, 16.0]),
            ram_allocation_ratio=rng.choice([1.0, 1.5]),
            disk_allocation_ratio=rng.choice([1.0, 2.0]),
            max_provisioning_per_host=rng.choice([None, 4, 8]),
        )
        hosts = random_fleet(rng, rng.randint(1, 25))
        view = PlacementView(hosts, policy)
        taken: dict[str, list[PlacementRequest]] = defaultdict(list)
        for _ in range(rng.randint(1, 6)):
            request, count = random_request(rng), rng.randint(1, 40)
            batch = view.place_many(request, count)
            if batch.placed:
                assert len(batch.hosts) == count
                for host in batch.hosts:
                    taken[host].append(request)
                _assert_group_kept(request, batch.hosts)
        for host in hosts:
            _assert_within_ratios(host, taken[host.name], policy, trial)


def test_when_a_batch_fails_no_hypervisor_had_room_for_the_next_vm() -> None:
    rng = random.Random(7)
    failures = 0
    for _ in range(80):
        hosts = random_fleet(rng, rng.randint(1, 12))
        request = random_request(rng)
        batch = place_many(hosts, request, rng.randint(1, 30))
        if batch.placed:
            continue
        failures += 1
        chosen = Counter(batch.hosts)
        for host in hosts:
            fits_alone = place_many([host], request, chosen[host.name] + 1).placed
            # A host fitting one more VM alone was refused only by the batch's group rule.
            assert not fits_alone or request.group is not None
    assert failures > 10  # the loop did exercise refusals


def _assert_group_kept(request: PlacementRequest, hosts: tuple[str, ...]) -> None:
    if request.group is None:
        return
    if request.group.policy is GroupPolicy.ANTI_AFFINITY:
        assert len(set(hosts)) == len(hosts)
    else:
        assert len(set(hosts)) == 1


def _assert_within_ratios(
    host: HostView, taken: list[PlacementRequest], policy: PlacementPolicy, trial: int
) -> None:
    """Recomputed from the raw record, apart from the code under test."""
    if not taken:
        return
    where = f"trial {trial}, {host.name}"
    assert host.state is HostState.UP, where
    capacity, held = host.capacity, host.allocated
    vcpus = held.vcpus + host.claimed.vcpus + sum(r.vcpus for r in taken)
    assert vcpus <= capacity.cpus * policy.cpu_allocation_ratio, where
    memory = held.memory_mib + host.claimed.memory_mib + sum(r.memory_mib for r in taken)
    assert memory <= capacity.memory_mib * policy.ram_allocation_ratio - 512, where
    for pool, space in capacity.pools.items():
        disk = host.claimed.disk_bytes.get(pool, 0) + sum(r.disk_bytes.get(pool, 0) for r in taken)
        limit = space.free_bytes - space.total_bytes * (1 - policy.disk_allocation_ratio)
        assert disk <= limit, where
    if policy.max_provisioning_per_host is not None:
        assert host.provisioning + len(taken) <= policy.max_provisioning_per_host, where
    for request in taken:
        assert dict(request.required_labels).items() <= host.labels.items(), where
