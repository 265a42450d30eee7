"""Placing a job: filter and weigh the registry's hypervisors, then claim the chosen one's room
atomically, placing again when a concurrent claim took it first.

A job that names its hypervisor skips the choice but not the rules: a hypervisor that is
disabled or draining is refused, and so is one that is down for a job that makes a VM; what
such a job makes is still claimed there, so the placements around it see it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import redis
from pydantic import BaseModel
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import Conflict, InvalidInput, Unavailable
from orchestrator.hypervisors import registry
from orchestrator.hypervisors.claims import (
    ClaimBook,
    ClaimRefused,
    HostClaims,
    Limits,
    counted_twice,
)
from orchestrator.hypervisors.demand import PlacementHints, needs_resources, placement_request
from orchestrator.hypervisors.groups import GroupBook
from orchestrator.hypervisors.registry import AdminState
from orchestrator.hypervisors.view import Entry, host_views, limits_for
from orchestrator.placement import (
    BatchPlacement,
    Decision,
    HostState,
    HostView,
    NoHypervisorFits,
    PlacementPolicy,
    PlacementRequest,
    PlacementView,
    Resources,
)
from orchestrator.placement.filters import LabelsFilter, StateFilter
from orchestrator.placement.heartbeats import listed_domains

# Each refused claim means a concurrent one filled that hypervisor (or gave room back, which
# makes the decision stale): the next decision sees it. Past this many, the fleet is changing
# faster than decisions can be made, and the caller is told so.
MAX_ATTEMPTS = 16
# Jobs that make nothing read heartbeats this old at most, and no claims (placement of a VM
# reads both fresh). The registry's states are read fresh for every job: an operator's
# "disabled" holds from the next request on, in every API process.
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Placement:
    """Where a job goes; ``claim`` is its claim's id when it reserved room, ``decision`` the
    decision that chose the hypervisor (None when the job named it)."""

    hypervisor: str
    claim: str | None = None
    decision: Decision | None = None


class HypervisorUnavailable(Conflict):
    """Raised when the named hypervisor takes no new jobs (disabled, draining or down)."""

    title = "Hypervisor unavailable"


class PlacementContended(Conflict):
    """Raised when every placement attempt lost its claim to a concurrent one; try again."""

    title = "Placement contended"


class Placer:
    """Decisions over the registry (SQL), the heartbeats and the claims (Redis)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        live: Any,
        default_hypervisor: str,
        policy: PlacementPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.live = live
        self.claims = ClaimBook(live.redis)
        self.groups = GroupBook(live.redis)
        self.default_hypervisor = default_hypervisor
        self.policy = policy or PlacementPolicy()
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    def place(
        self,
        kind: str,
        params: BaseModel,
        named: str | None = None,
        hints: PlacementHints | None = None,
    ) -> Placement:
        """Where a job of ``kind`` goes, with its room claimed when it makes a VM."""
        try:
            return self._place(kind, params, named, hints)
        except redis.RedisError as exc:
            return self._place_without_redis(kind, named, exc)

    def _place(
        self, kind: str, params: BaseModel, named: str | None, hints: PlacementHints | None
    ) -> Placement:
        request = placement_request(kind, params, hints)
        domain = getattr(params, "name", None)
        if named is not None:
            return self._place_named(named, kind, request, domain)
        if not needs_resources(kind):
            return self._place_anywhere(request)
        for _ in range(MAX_ATTEMPTS):
            hosts, claims = self._snapshot(request, fresh=True)
            grouped = self._in_group(request, hints)
            decision = self._decide(hosts, grouped)
            try:
                claim = self._claim(hosts, claims, decision, grouped, domain)
            except ClaimRefused:
                continue
            if hints is not None and hints.group is not None and domain:
                self.groups.join(hints.group.name, domain)
            return Placement(decision.chosen or "", claim, decision)
        raise PlacementContended(
            f"{MAX_ATTEMPTS} placements in a row lost their claim to concurrent ones; try again"
        )

    def preview(
        self, kind: str, params: BaseModel, named: str | None, hints: PlacementHints | None
    ) -> Decision:
        """The decision ``place`` would start from, claiming nothing (``dry_run``). A named
        hypervisor is the only one considered."""
        request = placement_request(kind, params, hints)
        hosts = self.hosts(request, fresh=True)
        if named is not None:
            hosts = [host for host in hosts if host.name == named]
        view = PlacementView(hosts, self.policy, self._filters(kind))
        return view.place(self._in_group(request, hints))

    def preview_many(
        self,
        kind: str,
        params: BaseModel,
        count: int,
        named: str | None,
        hints: PlacementHints | None,
    ) -> BatchPlacement:
        """Where ``count`` VMs like ``params`` would go, one after another, claiming nothing
        (a count request's ``dry_run``)."""
        request = self._in_group(placement_request(kind, params, hints), hints)
        hosts = self.hosts(request, fresh=True)
        if named is not None:
            hosts = [host for host in hosts if host.name == named]
        return PlacementView(hosts, self.policy, self._filters(kind)).place_many(request, count)

    def _in_group(
        self, request: PlacementRequest, hints: PlacementHints | None
    ) -> PlacementRequest:
        """``request`` with the group it joins and where that group's members are now."""
        if hints is None or hints.group is None:
            return request
        group = self.groups.group(hints.group, self._beats(fresh=False), self.claims.all())
        return replace(request, group=group)

    def hosts(self, request: PlacementRequest | None = None, fresh: bool = True) -> list[HostView]:
        return self._snapshot(request, fresh)[0]

    def _snapshot(
        self, request: PlacementRequest | None, fresh: bool
    ) -> tuple[list[HostView], Mapping[str, HostClaims]]:
        """The hypervisors and their claims; ``fresh=False`` (a job that makes nothing) takes
        recent heartbeats and no claims."""
        entries, beats = self._entries(), self._beats(fresh)
        claims: Mapping[str, HostClaims] = {}
        if fresh:
            sums = self.claims.per_host({e.name for e in entries} | {b["name"] for b in beats})
            twice = counted_twice(
                self.claims.all(), {beat["name"]: listed_domains(beat) for beat in beats}
            )
            claims = {
                name: replace(c, listed=twice.get(name, c.listed)) for name, c in sums.items()
            }
        return host_views(entries, beats, claims, request), claims

    def _place_named(
        self, named: str, kind: str, request: PlacementRequest, domain: str | None
    ) -> Placement:
        fresh = needs_resources(kind)
        hosts = {host.name: host for host in self.hosts(request, fresh)}
        host = hosts.get(named)
        if host is None:
            if hosts:
                known = ", ".join(sorted(hosts))
                raise InvalidInput(
                    f"unknown hypervisor {named!r}; known: {known}",
                    errors=[{"field": "hypervisor", "message": "must name a known hypervisor"}],
                )
            return Placement(named)  # nothing known yet (Redis down): taken on trust
        # A job that makes nothing may wait in the queue of a hypervisor whose worker is down
        # (a restart); room for a VM is not claimed where nobody reports what is there.
        waits = host.state is HostState.DOWN and not needs_resources(kind)
        if host.state is not HostState.UP and not waits:
            raise HypervisorUnavailable(
                f"hypervisor {named} is {host.state.value}: it takes no new jobs",
                hypervisor=named,
                state=host.state.value,
            )
        if not needs_resources(kind):
            return Placement(named)
        amount = Resources(request.vcpus, request.memory_mib, request.disk_bytes)
        return Placement(named, self.claims.claim(named, amount, Limits(), domain=domain))

    def _place_without_redis(
        self, kind: str, named: str | None, exc: redis.RedisError
    ) -> Placement:
        """Without Redis nobody knows who is alive or what is claimed: a job that names its
        hypervisor is taken on trust (unless an operator took that one out) and waits in the
        outbox; one that makes a VM and names none must be placed against the claims, so it
        is refused; any other goes to the default hypervisor, as before the registry."""
        if named is not None:
            entry = next((e for e in self._entries() if e.name == named), None)
            if entry is not None and entry.admin_state != AdminState.UP:
                state = entry.admin_state
                raise HypervisorUnavailable(
                    f"hypervisor {named} is {state}: it takes no new jobs",
                    hypervisor=named,
                    state=state,
                )
            return Placement(named)
        if needs_resources(kind):
            raise Unavailable(f"placement needs Redis, which does not answer: {exc}")
        return Placement(self.default_hypervisor)

    def _place_anywhere(self, request: PlacementRequest) -> Placement:
        hosts = self.hosts(request, fresh=False)
        if not hosts:
            return Placement(self.default_hypervisor)
        decision = self._decide(hosts, request, self._filters(""))
        return Placement(decision.chosen or self.default_hypervisor, None, decision)

    def _decide(
        self,
        hosts: Sequence[HostView],
        request: PlacementRequest,
        filters: Sequence[Any] | None = None,
    ) -> Decision:
        decision = PlacementView(hosts, self.policy, filters).place(request)
        if decision.chosen is None:
            raise NoHypervisorFits.of(decision)
        return decision

    def _claim(
        self,
        hosts: Sequence[HostView],
        claims: Mapping[str, HostClaims],
        decision: Decision,
        request: PlacementRequest,
        domain: str | None,
    ) -> str:
        chosen = decision.chosen or ""
        host = next(h for h in hosts if h.name == chosen)
        view = PlacementView([host], self.policy)
        limits = limits_for(view.headroom(chosen), claims[chosen], self.policy)
        amount = Resources(request.vcpus, request.memory_mib, request.disk_bytes)
        return self.claims.claim(chosen, amount, limits, domain=domain)

    def _filters(self, kind: str) -> Sequence[Any] | None:
        # A job that makes no VM needs an up hypervisor with the labels asked, nothing more.
        return None if needs_resources(kind) else (StateFilter(), LabelsFilter())

    def _beats(self, fresh: bool) -> list[dict[str, Any]]:
        now = time.monotonic()
        if fresh or self._cached is None or now - self._cached[0] > CACHE_SECONDS:
            self._cached = (now, self.live.hypervisors())
        return self._cached[1]

    def _entries(self) -> list[Entry]:
        with self.sessions() as session:
            return [
                Entry(row.name, row.admin_state, row.labels) for row in registry.entries(session)
            ]


def describe(placement: Placement) -> str:
    """How the job's queued event says where it went and why."""
    if placement.decision is None:
        return "queued"
    return f"{placement.decision.explain()}; queued"
