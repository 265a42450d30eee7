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


@dataclass(frozen=True)
class Scale:
    """One weigher's scaling over one set of candidates: its values' minimum and span."""

    weigher: Weigher
    low: float
    span: float

    def score(self, row: Headroom) -> float:
        """The row's weighted score; 0 when every candidate has the same value (Nova's
        ``normalize``)."""
        if not self.span:
            return 0.0
        return (self.weigher.value(row) - self.low) / self.span * self.weigher.weight


def weighers_for(strategy: Strategy, policy: PlacementPolicy) -> tuple[Weigher, ...]:
    """Spread prefers the most free memory, then the most free vCPUs; pack the least."""
    sign = 1.0 if strategy is Strategy.SPREAD else -1.0
    return (
        Weigher("free memory", attrgetter("memory_free_mib"), sign * policy.memory_weight),
        Weigher("free vcpus", attrgetter("vcpus_free"), sign * policy.vcpu_weight),
    )


def normalize(values: Sequence[float]) -> list[float]:
    """``values`` scaled to 0..1 between their minimum and maximum; all 0 when they are equal."""
    if not values:
        return []
    low, high = min(values), max(values)
    if low == high:
        return [0.0] * len(values)
    span = high - low
    return [(value - low) / span for value in values]


def weigh(rows: Sequence[Headroom], weighers: Sequence[Weigher]) -> tuple[list[float], list[Scale]]:
    """Each row's total weight, the sum of its weighted scores in weigher order, and each
    weigher's scale, to give any row's scores (:meth:`Scale.score`) without keeping them all."""
    totals = [0.0] * len(rows)
    scales = []
    for weigher in weighers:
        values = list(map(weigher.value, rows))
        low = min(values, default=0.0)
        span = max(values, default=0.0) - low
        scales.append(Scale(weigher, low, span))
        if span:
            w = weigher.weight
            totals = [t + (v - low) / span * w for t, v in zip(totals, values, strict=True)]
    return totals, scales
