"""The hypervisors as placement sees them: the registry's state and labels, the live heartbeat's
capacity and allocation (read as :mod:`orchestrator.placement.heartbeats` reads them), and the
claims in flight, as :class:`HostView` records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.hypervisors.claims import NO_LIMIT, HostClaims, Limits
from orchestrator.hypervisors.registry import AdminState, effective_state
from orchestrator.placement import (
    HostView,
    PlacementPolicy,
    PlacementRequest,
)
from orchestrator.placement.headroom import Headroom
from orchestrator.placement.heartbeats import allocated_from_beat, capacity_from_beat


@dataclass(frozen=True)
class Entry:
    """What the registry holds about one hypervisor, as placement needs it."""

    name: str
    admin_state: str = AdminState.UP.value
    labels: Mapping[str, str] | None = None


def host_views(
    entries: Iterable[Entry],
    beats: Iterable[Mapping[str, Any]],
    claims: Mapping[str, HostClaims],
    request: PlacementRequest | None = None,
) -> list[HostView]:
    """One HostView per hypervisor in the registry or beating (a worker the recorder has not
    written down yet takes work at once, with no labels)."""
    by_name = {entry.name: entry for entry in entries}
    live = {beat["name"]: beat for beat in beats}
    views = []
    for name in sorted(by_name.keys() | live.keys()):
        entry = by_name.get(name) or Entry(name)
        beat = live.get(name) or {}
        views.append(host_view(entry, beat, claims.get(name) or HostClaims(), request))
    return views


def host_view(
    entry: Entry,
    beat: Mapping[str, Any],
    claims: HostClaims,
    request: PlacementRequest | None = None,
) -> HostView:
    return HostView(
        entry.name,
        effective_state(entry.admin_state, bool(beat.get("alive"))),
        capacity_from_beat(beat, request),
        dict(entry.labels or {}),
        allocated_from_beat(beat),
        claims.unlisted,
        claims.provisioning,
    )


def limits_for(headroom: Headroom, claims: HostClaims, policy: PlacementPolicy) -> Limits:
    """The most a host's claims may sum to (as Redis sums them, listed ones included): the
    decision's headroom plus everything claimed when it was made."""
    claimed = claims.claimed
    disk = {
        pool: free + claimed.disk_bytes.get(pool, 0) for pool, free in headroom.disk_free.items()
    }
    cap = policy.max_provisioning_per_host
    return Limits(
        headroom.vcpus_free + claimed.vcpus,
        headroom.memory_free_mib + claimed.memory_mib,
        disk,
        NO_LIMIT if cap is None else cap,
        claims.released,
    )
