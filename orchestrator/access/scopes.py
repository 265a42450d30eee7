"""The scopes a token can hold, and which of them grant what a route needs."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from orchestrator.errors import InvalidInput

JOBS_READ = "jobs:read"  # jobs, their events, hypervisors, storage, domains, inventories
JOBS_SUBMIT = "jobs:submit"  # storage and domain jobs, uploads, cancelling one's own jobs
FLEET_EXEC = "fleet:exec"  # fleet jobs and their relaunch: commands on the fleet's hosts
INVENTORIES_WRITE = "inventories:write"  # store inventory versions
HYPERVISORS_ADMIN = "hypervisors:admin"  # managing the hypervisors themselves
ADMIN = "admin"  # tokens, the audit trail, cancelling anyone's jobs; implies every scope

ALL_SCOPES = (JOBS_READ, JOBS_SUBMIT, FLEET_EXEC, INVENTORIES_WRITE, HYPERVISORS_ADMIN, ADMIN)


def grants(held: Collection[str], needed: str) -> bool:
    """Whether scopes ``held`` allow what needs ``needed``."""
    return needed in held or ADMIN in held


def grants_any(held: Collection[str], needed: Iterable[str]) -> bool:
    return any(grants(held, scope) for scope in needed)


def checked_scopes(scopes: Iterable[str], field: str = "scopes") -> list[str]:
    """``scopes`` deduplicated in their canonical order; an unknown name is a 422."""
    given = list(scopes)
    unknown = sorted(set(given) - set(ALL_SCOPES))
    if unknown:
        message = f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(ALL_SCOPES)}"
        raise InvalidInput.of(field, message)
    if not given:
        raise InvalidInput.of(field, "a token needs at least one scope")
    return [scope for scope in ALL_SCOPES if scope in given]


def submit_scope(kind: str) -> str:
    """The scope ``POST /v1/jobs`` needs for a job of ``kind``: fleet jobs run commands on the
    fleet's hosts, every other kind acts on a hypervisor."""
    from orchestrator.fleet.admission import FLEET_KINDS

    return FLEET_EXEC if kind in FLEET_KINDS else JOBS_SUBMIT
