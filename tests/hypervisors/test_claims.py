"""The claim script on a real Redis: it refuses what would pass the limits its decision saw,
refuses a decision made before room was given back, and under 50 concurrent placements no
hypervisor is promised more than it has."""

from __future__ import annotations

import threading

import pytest
import redis

from orchestrator.hypervisors.claims import ClaimBook, ClaimRefused, Limits
from orchestrator.hypervisors.placer import MAX_ATTEMPTS
from orchestrator.hypervisors.view import Entry, host_views, limits_for
from orchestrator.placement import PlacementPolicy, PlacementRequest, Resources
from orchestrator.placement.filters import default_filters
from orchestrator.placement.view import PlacementView

GIB = 1024**3


@pytest.fixture
def book(empty_redis: redis.Redis) -> ClaimBook:
    return ClaimBook(empty_redis)


def test_a_claim_past_a_limit_is_refused_naming_the_resource(book: ClaimBook) -> None:
    limits = Limits(vcpus=4, memory_mib=2048, disk_bytes={"default": 10 * GIB}, provisioning=8)
    book.claim("hv1", Resources(2, 1024, {"default": 4 * GIB}), limits)
    book.claim("hv1", Resources(2, 1024, {"default": 4 * GIB}), limits)
    for amount, reason in [
        (Resources(1, 0), "vcpus"),
        (Resources(0, 1), "memory"),
        (Resources(0, 0, {"default": 3 * GIB}), "disk"),
    ]:
        with pytest.raises(ClaimRefused) as refused:
            book.claim("hv1", amount, limits)
        assert refused.value.reason == reason
    claimed = book.per_host(["hv1"])["hv1"]
    assert claimed.claimed == Resources(4, 2048, {"default": 8 * GIB})
    assert claimed.provisioning == 2


def test_the_provisioning_cap_counts_jobs_until_they_finish(book: ClaimBook) -> None:
    limits = Limits(provisioning=2)
    first = book.claim("hv1", Resources(1, 1), limits)
    book.claim("hv1", Resources(1, 1), limits)
    with pytest.raises(ClaimRefused, match="provisioning"):
        book.claim("hv1", Resources(1, 1), limits)
    book.finish(first)
    book.claim("hv1", Resources(1, 1), limits)
    assert book.per_host(["hv1"])["hv1"].claimed == Resources(3, 3)


def test_a_decision_made_before_room_was_given_back_is_stale(book: ClaimBook) -> None:
    seen = book.per_host(["hv1"])["hv1"].released
    first = book.claim("hv1", Resources(1, 512), Limits(released=seen))
    book.release(first)  # its domain now shows in the heartbeat, which the decision predates
    with pytest.raises(ClaimRefused, match="stale"):
        book.claim("hv1", Resources(1, 512), Limits(released=seen))
    fresh = book.per_host(["hv1"])["hv1"]
    assert fresh.claimed == Resources(0, 0) and fresh.released != seen
    book.claim("hv1", Resources(1, 512), Limits(released=fresh.released))


def test_a_claim_bound_to_its_job_is_released_once_and_gives_everything_back(
    book: ClaimBook,
) -> None:
    claim = book.claim("hv1", Resources(2, 1024, {"default": GIB}), Limits(), domain="web-01")
    assert book.bind(claim, "job-1")
    [held] = book.all()
    assert (held.id, held.job, held.domain, held.host) == ("job-1", "job-1", "web-01", "hv1")
    book.finish("job-1")
    assert book.per_host(["hv1"])["hv1"].provisioning == 0
    assert book.all()[0].finished_at is not None
    book.release("job-1")
    book.release("job-1")
    book.finish_many(["job-1", "never-claimed"], release=True)
    after = book.per_host(["hv1"])["hv1"]
    assert after.claimed == Resources(0, 0) and after.provisioning == 0
    assert book.all() == []
    assert not book.bind(claim, "job-2")


def test_a_claim_holding_zero_of_something_is_given_back_too(book: ClaimBook) -> None:
    # An overlay without a size claims 0 disk bytes (its base image's size is not known here).
    claim = book.claim("hv1", Resources(1, 512, {"default": 0}), Limits(), domain="web-02")
    book.finish(claim)
    book.release(claim)

    after = book.per_host(["hv1"])["hv1"]
    assert after.claimed == Resources(0, 0) and after.provisioning == 0
    assert book.all() == []


def _host(name: str, cpus: int, memory_mib: int, disk_gib: int) -> dict[str, object]:
    pool = {"capacity": disk_gib * GIB, "allocation": 0, "available": disk_gib * GIB}
    capacity = {"cpus": cpus, "memory_mib": memory_mib, "pools": {"default": pool}}
    return {"name": name, "alive": True, "capacity": capacity}


def test_fifty_concurrent_placements_never_overcommit_a_hypervisor(book: ClaimBook) -> None:
    policy = PlacementPolicy(max_provisioning_per_host=None)
    beats = [
        _host("hv-a", cpus=2, memory_mib=16384, disk_gib=100),  # 8 vCPUs: 8 VMs by CPU
        _host("hv-b", cpus=8, memory_mib=3584, disk_gib=100),  # 3072 MiB: 3 VMs by memory
        _host("hv-c", cpus=8, memory_mib=16384, disk_gib=5),  # 5 GiB: 2 VMs by disk
    ]
    request = PlacementRequest(vcpus=1, memory_mib=1024, disk_bytes={"default": 2 * GIB})
    entries = [Entry(str(beat["name"])) for beat in beats]
    placed: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(50)

    def place_one() -> None:
        start.wait()
        for _ in range(MAX_ATTEMPTS * 4):
            claims = book.per_host(e.name for e in entries)
            hosts = host_views(entries, beats, claims, request)
            view = PlacementView(hosts, policy, default_filters(policy))
            decision = view.place(request)
            if decision.chosen is None:
                refused.append(decision.explain())
                return
            host = next(h for h in hosts if h.name == decision.chosen)
            limits = limits_for(view.headroom(host.name), claims[host.name], policy)
            try:
                book.claim(host.name, Resources(1, 1024, {"default": 2 * GIB}), limits)
            except ClaimRefused:
                continue
            placed.append(host.name)
            return
        refused.append("contended")

    threads = [threading.Thread(target=place_one) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    per_host = {name: placed.count(name) for name in ("hv-a", "hv-b", "hv-c")}
    assert per_host == {"hv-a": 8, "hv-b": 3, "hv-c": 2}
    assert len(refused) == 50 - 13 and "contended" not in refused
    claimed = book.per_host(["hv-a", "hv-b", "hv-c"])
    assert claimed["hv-a"].claimed.vcpus == 8  # 2 CPUs x ratio 4.0
    assert claimed["hv-b"].claimed.memory_mib == 3072  # 3584 MiB less 512 reserved
    assert claimed["hv-c"].claimed.disk_bytes == {"default": 4 * GIB}
    assert all("no hypervisor fits: 3 hosts" in why for why in refused)
