"""Spread and pack: which hypervisor wins among those that fit, and how weights are scaled."""

from __future__ import annotations

import pytest

from orchestrator.placement import (
    PlacementPolicy,
    PlacementRequest,
    PlacementView,
    Resources,
    Strategy,
    place,
    place_many,
)
from orchestrator.placement.weighers import normalize
from tests.placement.fleet import hypervisor

# Free memory after the 512 MiB reserve: 15872, 7680 and 3584 MiB; 8 CPUs each.
SIZES = [
    hypervisor("hv1", memory_mib=16384),
    hypervisor("hv2", memory_mib=8192),
    hypervisor("hv3", memory_mib=4096),
]


def test_spread_picks_the_most_free_memory_and_pack_the_least_that_fits() -> None:
    assert place(SIZES, PlacementRequest(1, 1024)).chosen == "hv1"
    assert place(SIZES, PlacementRequest(1, 1024, strategy=Strategy.PACK)).chosen == "hv3"
    # hv3 has 3584 MiB after its reserve: a 4 GiB VM packs onto the next least free.
    assert place(SIZES, PlacementRequest(1, 4096, strategy=Strategy.PACK)).chosen == "hv2"


def test_free_memory_outweighs_free_vcpus_which_break_the_tie_between_equal_memory() -> None:
    roomy = hypervisor("hv1", memory_mib=16384, cpus=4)
    busy = hypervisor("hv2", memory_mib=12288, cpus=32)
    assert place([roomy, busy], PlacementRequest(1, 512)).chosen == "hv1"
    few = hypervisor("hv1", allocated=Resources(vcpus=20))
    many = hypervisor("hv2")
    assert place([few, many], PlacementRequest(1, 512)).chosen == "hv2"
    assert place([few, many], PlacementRequest(1, 512, strategy=Strategy.PACK)).chosen == "hv1"


def test_equal_hypervisors_rank_by_name_whatever_order_they_come_in() -> None:
    hosts = [hypervisor(name) for name in ("hv-c", "hv-a", "hv-b")]
    for strategy in Strategy:
        decision = place(hosts, PlacementRequest(1, 512, strategy=strategy))
        assert [c.name for c in decision.candidates] == ["hv-a", "hv-b", "hv-c"]
        assert [c.weight for c in decision.candidates] == [0.0, 0.0, 0.0]


def test_weights_are_scaled_to_zero_one_per_weigher_then_weighted() -> None:
    decision = place(SIZES, PlacementRequest(1, 512))
    best, middle, last = decision.candidates
    assert best.scores == {"free memory": 1.0, "free vcpus": 0.0}  # equal vCPUs score 0
    assert last.scores["free memory"] == 0.0
    assert middle.scores["free memory"] == pytest.approx((7680 - 3584) / (15872 - 3584))
    doubled = PlacementView(SIZES, PlacementPolicy(memory_weight=2.0)).place(
        PlacementRequest(1, 512)
    )
    assert doubled.candidates[0].weight == 2.0
    packed = place(SIZES, PlacementRequest(1, 512, strategy=Strategy.PACK))
    assert [c.name for c in packed.candidates] == ["hv3", "hv2", "hv1"]
    assert packed.candidates[-1].weight == -1.0


def test_normalize_maps_min_to_zero_max_to_one_and_equal_values_to_zero() -> None:
    assert normalize([5.0, 10.0, 7.5]) == [0.0, 1.0, 0.5]
    assert normalize([3.0, 3.0]) == [0.0, 0.0]
    assert normalize([]) == []


def test_a_decision_lists_the_best_candidates_up_to_the_policys_limit() -> None:
    hosts = [hypervisor(f"hv{i:02d}", memory_mib=4096 + 512 * i) for i in range(30)]
    decision = place(hosts, PlacementRequest(1, 512))
    assert decision.candidate_count == 30
    assert [c.name for c in decision.candidates] == [f"hv{i:02d}" for i in range(29, 19, -1)]


def test_a_spread_batch_evens_out_and_a_pack_batch_fills_one_hypervisor_first() -> None:
    hosts = [hypervisor(f"hv{i}", memory_mib=4096) for i in (1, 2, 3)]  # 3584 MiB each
    spread = place_many(hosts, PlacementRequest(1, 1024), 6)
    assert spread.per_host() == {"hv1": 2, "hv2": 2, "hv3": 2}
    packed = place_many(hosts, PlacementRequest(1, 1024, strategy=Strategy.PACK), 6)
    assert packed.hosts == ("hv1", "hv1", "hv1", "hv2", "hv2", "hv2")
