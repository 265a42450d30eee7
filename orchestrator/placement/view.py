"""A fleet of hypervisors ready for decisions: their headroom under one policy, into which
placed VMs are claimed so that a batch never promises the same room twice."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from operator import attrgetter

from orchestrator.placement.decision import BatchPlacement, Decision
from orchestrator.placement.filters import Filter, default_filters
from orchestrator.placement.headroom import Headroom
from orchestrator.placement.hosts import HostView
from orchestrator.placement.policy import PlacementPolicy
from orchestrator.placement.request import PlacementRequest, Strategy
from orchestrator.placement.scheduler import decide
from orchestrator.placement.weighers import weighers_for


class PlacementView:
    """The hypervisors of ``hosts`` under ``policy``, with ``filters`` (every one, in the
    default order, unless given)."""

    def __init__(
        self,
        hosts: Iterable[HostView],
        policy: PlacementPolicy | None = None,
        filters: Sequence[Filter] | None = None,
    ) -> None:
        self.policy = policy or PlacementPolicy()
        self.filters = tuple(filters) if filters is not None else default_filters(self.policy)
        self.rows = sorted((Headroom(h, self.policy) for h in hosts), key=attrgetter("name"))
        self._by_name = {row.name: row for row in self.rows}
        if len(self._by_name) != len(self.rows):
            raise ValueError("two hypervisors share a name")
        self._weighers = {s: weighers_for(s, self.policy) for s in Strategy}

    def headroom(self, name: str) -> Headroom:
        return self._by_name[name]

    def place(self, request: PlacementRequest) -> Decision:
        """Decide where ``request`` goes; claims nothing."""
        weighers = self._weighers[request.strategy]
        return decide(self.rows, request, self.filters, weighers, self.policy.ranked)

    def claim(self, name: str, request: PlacementRequest) -> None:
        self._by_name[name].take(request)

    def release(self, name: str, request: PlacementRequest) -> None:
        self._by_name[name].give_back(request)

    def place_many(self, request: PlacementRequest, count: int) -> BatchPlacement:
        """Place ``count`` VMs like ``request`` one after another, claiming each into the view
        (and adding it to its group) before the next. All or nothing: when one finds no
        hypervisor, the claims of those before it are released."""
        decisions: list[Decision] = []
        chosen: list[str] = []
        for _ in range(count):
            decision = self.place(request)
            if decision.chosen is None:
                for host in chosen:
                    self.release(host, request)
                return BatchPlacement(count, tuple(decisions), decision)
            self.claim(decision.chosen, request)
            decisions.append(decision)
            chosen.append(decision.chosen)
            request = _with_group_member(request, decision.chosen)
        return BatchPlacement(count, tuple(decisions))


def place(
    hosts: Iterable[HostView], request: PlacementRequest, policy: PlacementPolicy | None = None
) -> Decision:
    """Where ``request`` goes among ``hosts``."""
    return PlacementView(hosts, policy).place(request)


def place_many(
    hosts: Iterable[HostView],
    request: PlacementRequest,
    count: int,
    policy: PlacementPolicy | None = None,
) -> BatchPlacement:
    """Where each of ``count`` VMs like ``request`` goes among ``hosts``."""
    return PlacementView(hosts, policy).place_many(request, count)


def _with_group_member(request: PlacementRequest, host: str) -> PlacementRequest:
    if request.group is None:
        return request
    return replace(request, group=request.group.with_member_on(host))
