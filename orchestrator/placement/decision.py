"""What a placement decided and why: the chosen hypervisor, the ranked candidates, what each
filter removed, and when nothing fits, the hypervisor that came closest and what it lacked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import Conflict
from orchestrator.placement.request import Strategy

NAMES_SHOWN = 10  # hypervisor names a filter's outcome lists; the count says the rest
NAMES_IN_SENTENCE = 3  # a filter that removed more is summed up by its count alone


@dataclass(frozen=True)
class FilterOutcome:
    """How many hypervisors one filter removed, the first of their names and, where the
    filter groups them (state), the names per reason."""

    name: str
    removed: int
    names: tuple[str, ...] = ()
    by_reason: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"filter": self.name, "removed": self.removed}
        out["hosts"] = list(self.names)
        if self.by_reason:
            out["by_reason"] = {reason: list(names) for reason, names in self.by_reason.items()}
        return out


@dataclass(frozen=True)
class Candidate:
    """A hypervisor that passed every filter, its total weight and each weigher's share."""

    name: str
    weight: float
    scores: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight": round(self.weight, 6), "scores": dict(self.scores)}


@dataclass(frozen=True)
class Closest:
    """The hypervisor that failed the fewest filters (then the smallest shortfall), and what
    it lacked, per filter."""

    name: str
    passed: int
    lacks: tuple[tuple[str, str], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "lacks": [{"filter": name, "lack": what} for name, what in self.lacks],
        }


@dataclass(frozen=True)
class Decision:
    """One placement. ``chosen`` is None when nothing fits; ``candidates`` lists the best
    ones first (up to the policy's ``ranked``) of ``candidate_count``."""

    hosts: int
    strategy: Strategy
    filters: tuple[FilterOutcome, ...]
    chosen: str | None = None
    candidates: tuple[Candidate, ...] = ()
    candidate_count: int = 0
    closest: Closest | None = None

    @property
    def placed(self) -> bool:
        return self.chosen is not None

    def explain(self) -> str:
        return explain(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "placed": self.placed,
            "chosen": self.chosen,
            "strategy": self.strategy.value,
            "hosts": self.hosts,
            "candidate_count": self.candidate_count,
            "candidates": [candidate.to_dict() for candidate in self.candidates],
            "filters": [outcome.to_dict() for outcome in self.filters],
            "closest": self.closest.to_dict() if self.closest else None,
            "explanation": self.explain(),
        }


@dataclass(frozen=True)
class BatchPlacement:
    """``count`` VMs placed one after another. ``decisions`` holds one per VM placed, in
    order; ``failure`` the decision that found no hypervisor for the next one, in which case
    the batch claimed nothing."""

    count: int
    decisions: tuple[Decision, ...]
    failure: Decision | None = None

    @property
    def placed(self) -> bool:
        return self.failure is None

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hypervisor chosen for each VM placed, in order."""
        return tuple(d.chosen for d in self.decisions if d.chosen is not None)

    def per_host(self) -> dict[str, int]:
        """How many of the batch's VMs each hypervisor takes."""
        counts: dict[str, int] = {}
        for host in self.hosts:
            counts[host] = counts.get(host, 0) + 1
        return counts

    def explain(self) -> str:
        if self.failure is None:
            spread = ", ".join(f"{host} {n}" for host, n in sorted(self.per_host().items()))
            return f"placed {self.count}: {spread}"
        index = len(self.decisions) + 1
        return f"VM {index} of {self.count}: {explain(self.failure)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "placed": self.placed,
            "count": self.count,
            "hosts": list(self.hosts),
            "per_host": self.per_host(),
            "failure": self.failure.to_dict() if self.failure else None,
            "explanation": self.explain(),
        }


class NoHypervisorFits(Conflict):
    """Raised when no hypervisor can take the request; ``placement`` says why."""

    title = "No hypervisor fits"

    @classmethod
    def of(cls, decision: Decision | BatchPlacement) -> NoHypervisorFits:
        return cls(decision.explain(), placement=decision.to_dict())


def explain(decision: Decision) -> str:
    """The decision as one sentence, such as ``no hypervisor fits: 12 hosts; state removed 2
    (down: hv7, hv9), memory removed 9, anti-affinity group web removed 1; closest: hv3
    (needs 1536 MiB more memory under ratio 1.0)``."""
    if decision.hosts == 0:
        return "no hypervisor fits: no hypervisor is known"
    hosts = f"{decision.hosts} host{'' if decision.hosts == 1 else 's'}"
    removals = ", ".join(_removal(outcome) for outcome in decision.filters if outcome.removed)
    if decision.chosen is not None:
        head = (
            f"placed on {decision.chosen} ({decision.strategy.value}): {hosts}, "
            f"{decision.candidate_count} passed every filter"
        )
        return f"{head}; {removals}" if removals else head
    sentence = f"no hypervisor fits: {hosts}; {removals}"
    if decision.closest is not None:
        lacks = "; ".join(what for _, what in decision.closest.lacks)
        sentence += f"; closest: {decision.closest.name} ({lacks})"
    return sentence


def _removal(outcome: FilterOutcome) -> str:
    text = f"{outcome.name} removed {outcome.removed}"
    more = outcome.removed - len(outcome.names)
    tail = f" and {more} more" if more > 0 else ""
    if outcome.by_reason:
        groups = "; ".join(f"{why}: {', '.join(names)}" for why, names in outcome.by_reason.items())
        return f"{text} ({groups}{tail})"
    if outcome.removed <= NAMES_IN_SENTENCE:
        return f"{text} ({', '.join(outcome.names)})"
    return text
