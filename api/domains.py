"""``/v1/domains`` and ``/v1/os-variants``: domain state read through the hypervisors' workers.

The API has no libvirt connection: a read submits a read-only job (``domain.info`` or
``domain.list``) to the hypervisor's worker and waits a few seconds for its answer. A worker
that does not answer in time is a 504 problem.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.auth import requires
from api.live_reads import await_read, read_through_worker, submit_read
from api.services import services
from orchestrator.access.scopes import JOBS_READ
from orchestrator.domains.osinfo import OsVariant, list_os_variants
from orchestrator.errors import OrchestratorError

bp = Blueprint("domains", __name__, url_prefix="/v1")

READ_TIMEOUT = 10.0


@bp.get("/domains")
@requires(JOBS_READ)
def index() -> Response:
    """Every domain of every live hypervisor; hypervisors that did not answer are listed apart."""
    live = [hv["name"] for hv in services().live.hypervisors() if hv.get("alive")]
    items: list[dict[str, Any]] = []
    unavailable: list[dict[str, Any]] = []
    # Submit to every hypervisor first, then wait: the workers answer in parallel.
    jobs: dict[str, str] = {}
    for name in sorted(live):
        try:
            jobs[name] = submit_read("domain.list", name, {})
        except OrchestratorError as exc:  # it stopped beating since the listing
            unavailable.append({"hypervisor": name, **exc.to_problem()})
    deadline = time.monotonic() + READ_TIMEOUT
    for name, job_id in jobs.items():
        left = max(0.0, deadline - time.monotonic())
        try:
            result = await_read(job_id, "domain.list", name, left)
        except OrchestratorError as exc:
            unavailable.append({"hypervisor": name, **exc.to_problem()})
            continue
        items.extend({"hypervisor": name, **domain} for domain in result["domains"])
    return jsonify({"items": items, "unavailable": unavailable})


@bp.get("/domains/<hypervisor>/<name>")
@requires(JOBS_READ)
def show(hypervisor: str, name: str) -> Response:
    """One domain: state, vCPUs, memory, disks, interfaces with MACs, VNC host and port."""
    domain = read_through_worker("domain.info", hypervisor, {"name": name}, READ_TIMEOUT)
    return jsonify({"hypervisor": hypervisor, **domain})


@bp.get("/os-variants")
@requires(JOBS_READ)
def os_variants() -> Response:
    """The OS variants of the API host's osinfo-db; ``?q=`` filters by id or name."""
    query = (request.args.get("q") or "").lower()
    items = [
        _variant(v)
        for v in list_os_variants()
        if not query or query in v.name.lower() or any(query in s for s in v.short_ids)
    ]
    return jsonify({"items": items})


def _variant(variant: OsVariant) -> dict[str, Any]:
    return {
        "short_id": variant.short_id,
        "short_ids": list(variant.short_ids),
        "id": variant.id,
        "name": variant.name,
        "family": variant.family,
        "distro": variant.distro,
        "version": variant.version,
        "minimum_ram_mib": variant.minimum_ram_mib,
        "recommended_ram_mib": variant.recommended_ram_mib,
        "recommended_vcpus": variant.recommended_vcpus,
    }
