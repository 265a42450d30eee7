"""Ranking the hypervisors that passed every filter, as Nova's weighers do: each weigher's
raw values are scaled to 0..1 across the candidates, multiplied by the weigher's weight
(negative to prefer the least), and summed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from orchestrator.placement.headroom import Headroom
from orchestrator.placement.policy import PlacementPolicy
from orchestrator.placement.request import Strategy


@dataclass(frozen=True)
class Weigher:
    """One criterion: a raw value per hypervisor and the weight its scaled value gets."""

    name: str
    value: Callable[[Headroom], float]
    weight: float


def weighers_for(strategy: Strategy, policy: PlacementPolicy) -> tuple[Weigher, ...]:
    """Spread prefers the most free memory, then the most free vCPUs; pack the least."""
    sign = 1.0 if strategy is Strategy.SPREAD else -1.0
    return (
        Weigher("free memory", attrgetter("memory_free_mib"), sign * policy.memory_weight),
        Weigher("free vcpus", attrgetter("vcpus_free"), sign * policy.vcpu_weight),
    )


def normalize(values: Sequence[float]) -> list[float]:
    """``values`` scaled to 0..1 between their minimum and maximum; all 0 when they are equal
    (Nova's ``normalize``)."""
    if not values:
        return []
    low, high = min(values), max(values)
    if low == high:
        return [0.0] * len(values)
    span = high - low
    return [(value - low) / span for value in values]


def weigh(rows: Sequence[Headroom], weighers: Sequence[Weigher]) -> list[list[float]]:
    """Each weigher's weighted, scaled score per row: ``scores[w][i]`` for row ``i``."""
    scores = []
    for weigher in weighers:
        scaled = normalize(list(map(weigher.value, rows)))
        weight = weigher.weight
        scores.append([weight * value for value in scaled])
    return scores
