"""Which hypervisor runs a job when the submitter named none."""

from __future__ import annotations

from typing import Any

from orchestrator.errors import InvalidInput


def choose_hypervisor(
    requested: str | None, hypervisors: list[dict[str, Any]], default: str
) -> str:
    """The requested hypervisor if it is known, else the live one with the most free memory.

    ``hypervisors`` is the heartbeat registry; when it is empty (Redis unreachable, or nothing
    has beaten yet) a named hypervisor is taken on trust and an unnamed job goes to ``default``.
    """
    if requested is not None:
        known = {hv["name"] for hv in hypervisors}
        if known and requested not in known:
            raise InvalidInput(
                f"unknown hypervisor {requested!r}; known: {', '.join(sorted(known))}",
                errors=[{"field": "hypervisor", "message": "must name a known hypervisor"}],
            )
        return requested
    alive = [hv for hv in hypervisors if hv.get("alive")]
    if not alive:
        return default
    return max(alive, key=lambda hv: (hv.get("capacity") or {}).get("free_memory_mib", 0))["name"]
