"""The hypervisors as ``GET /v1/hypervisors`` shows them: the registry's entry, the latest
heartbeat (or, once the worker is gone, the last capacity the registry kept), the claims in
flight and the jobs running there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from orchestrator.hypervisors import registry
from orchestrator.hypervisors.claims import ClaimBook, HostClaims
from orchestrator.jobs.livestate import LiveState
from orchestrator.models import Hypervisor


def hypervisor_documents(session: Session, live: LiveState) -> list[dict[str, Any]]:
    rows = {row.name: row for row in registry.entries(session)}
    beats = {beat["name"]: beat for beat in live.hypervisors()}
    names = sorted(rows.keys() | beats.keys())
    claims = ClaimBook(live.redis).per_host(names)
    running: dict[str, int] = {}
    for job in live.running_jobs():
        running[job.get("hypervisor", "")] = running.get(job.get("hypervisor", ""), 0) + 1
    return [
        document(name, rows.get(name), beats.get(name), claims[name], running.get(name, 0))
        for name in names
    ]


def document(
    name: str,
    row: Hypervisor | None,
    beat: Mapping[str, Any] | None,
    claims: HostClaims,
    running_jobs: int,
) -> dict[str, Any]:
    beat = beat or {}
    alive = bool(beat.get("alive"))
    admin_state = row.admin_state if row else registry.AdminState.UP.value
    doc: dict[str, Any] = {**beat} if beat else _stored(row)
    doc.update(
        {
            "name": name,
            "state": registry.effective_state(admin_state, alive).value,
            "admin_state": admin_state,
            "alive": alive,
            "declared": bool(row and row.declared),
            "labels": dict(row.labels) if row else {},
            "libvirt_uri": beat.get("libvirt_uri") or (row.libvirt_uri if row else None),
            "allocated": beat.get("allocated", row.allocated if row else None),
            "cpu_modes": beat.get("cpu_modes", row.cpu_modes if row else None),
            "claims": {
                "vcpus": claims.claimed.vcpus,
                "memory_mib": claims.claimed.memory_mib,
                "disk_bytes": dict(claims.claimed.disk_bytes),
                "provisioning": claims.provisioning,
            },
            "running_jobs": running_jobs,
        }
    )
    return doc


def _stored(row: Hypervisor | None) -> dict[str, Any]:
    """What the registry kept of a hypervisor that has no heartbeat in Redis."""
    if row is None:
        return {}
    last_seen = row.last_seen.timestamp() if row.last_seen else None
    return {"capacity": row.capacity, "last_seen": last_seen}
