"""One ``fleet.run`` / ``fleet.ping`` attempt: select hosts, run the module, report.

The job fails (state ``failed``) when any host failed, was unreachable, or was skipped after a
batch went over ``max_fail_percentage``, as ``ansible`` exits non-zero then; the problem
document's ``result`` then holds the same per-host results and recap a success returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.errors import JobFailed
from orchestrator.fleet.calls import AnyCall, FetchCall
from orchestrator.fleet.files import FETCHED_AREA, FLEET_FILES, fleet_files_dir
from orchestrator.fleet.results import FleetResult, HostResult, HostStatus
from orchestrator.fleet.secret_binding import BoundHosts, require_known_host_keys
from orchestrator.fleet.target import HostTarget
from orchestrator.inventory import Inventory, select_hosts
from orchestrator.kinds.fleet import FleetTargetParams
from workers.context import JobContext
from workers.fleet.executor import run_fleet
from workers.fleet_jobs.output import OutputEvents
from workers.fleet_jobs.targets import (
    check_fetch_host_names,
    host_target,
    job_inventory,
    localized_call,
    localized_options,
)

_LEVELS = {HostStatus.FAILED: "error", HostStatus.UNREACHABLE: "error"}


def run_fleet_job(ctx: JobContext, params: FleetTargetParams, call: AnyCall) -> dict[str, Any]:
    """Run ``call`` on the hosts ``params`` select; the summary, or JobFailed carrying it."""
    files = fleet_files_dir(ctx.settings)
    hypervisors = ctx.live.hypervisors() if params.builtin_groups else None
    found = job_inventory(params, files, hypervisors)
    inventory = found.inventory
    bound = found.bind(_selected_hosts(ctx, inventory, params))
    require_known_host_keys(
        bound.connections, params.options.host_key_policy, "params.options.host_key_policy"
    )
    _report_withheld(ctx, bound, found.operator)
    targets = [host_target(conn, files) for conn in bound.connections.values()]
    options = localized_options(params.options, files)
    call = _localized_call(ctx, call, files, targets)
    if options.host_key_policy == "off":
        ctx.event(
            "host key checking is off: the hosts' identities are not verified",
            level="warning",
            data={"host_key_policy": "off"},
        )
    ctx.event(
        f"running {call.module} on {len(targets)} hosts, {options.forks} at a time",
        data={"module": call.module, "hosts": len(targets), "forks": options.forks},
    )
    with OutputEvents(
        lambda host, message, data: ctx.event(message, host=host, data=data),
        job_cap_bytes=options.job_output_cap_bytes,
    ) as out:
        result = run_fleet(
            targets,
            call,
            options,
            out.line,
            pool=ctx.resources.ssh_pool,
            cancelled=ctx.cancel_requested,
        )
    for host_result in result.values():
        _report_host(ctx, host_result)
    summary = _summary(result, params, inventory, call)
    ctx.event(f"recap\n{summary['recap_text']}", data={"totals": summary["totals"]})
    if not result.all_ok:
        raise JobFailed(_failure(summary["totals"], result.stopped_reason), result=summary)
    return summary


def _selected_hosts(ctx: JobContext, inventory: Inventory, params: FleetTargetParams) -> list[str]:
    selection = select_hosts(inventory, params.pattern, params.limit)
    for warning in (*inventory.warnings, *selection.warnings):
        ctx.event(warning, level="warning")
    if not selection.hosts:
        # Ansible only warns here; a CI run that touched nothing should not look green.
        raise JobFailed(
            f"pattern {params.pattern!r}"
            + (f" with limit {params.limit!r}" if params.limit else "")
            + " matched no hosts",
            warnings=list(selection.warnings),
        )
    return list(selection.hosts)


def _report_withheld(ctx: JobContext, bound: BoundHosts, operator: Inventory | None) -> None:
    where = operator.source if operator is not None else "none named"
    for host, names in bound.withheld.items():
        ctx.event(
            f"secrets from the worker's files not used ({', '.join(names)}): they go only to "
            f"the operator's own entry for this host ({where})",
            level="warning",
            host=host,
            data={"withheld": list(names)},
        )


def _localized_call(
    ctx: JobContext, call: AnyCall, files: Path, targets: list[HostTarget]
) -> AnyCall:
    if isinstance(call, FetchCall):
        check_fetch_host_names(targets)
        area = f"{FLEET_FILES}/{FETCHED_AREA}/{ctx.job_id}/"
        ctx.event(f"fetch writes into {area}", data={"fetch_area": area})
    return localized_call(call, files, ctx.job_id)


def _report_host(ctx: JobContext, result: HostResult) -> None:
    detail = f" (rc={result.rc})" if result.rc is not None else ""
    if result.error:
        detail += f": {result.error}"
    data = {"status": result.status.value, "rc": result.rc, "changed": result.changed}
    if result.host_key_check:
        data["host_key_check"] = result.host_key_check
    level = _LEVELS.get(result.status, "info")
    ctx.event(f"{result.status.value}{detail}", level=level, host=result.host, data=data)


def _summary(
    result: FleetResult, params: FleetTargetParams, inventory: Inventory, call: AnyCall
) -> dict[str, Any]:
    totals = {
        "hosts": len(result),
        "ok": len(result.succeeded),
        "changed": sum(r.changed for r in result.values()),
        "failed": len(result.failed),
        "unreachable": len(result.unreachable),
        "skipped": len(result.skipped),
    }
    return {
        **result.to_dict(),
        "recap_text": result.format_recap(),
        "totals": totals,
        "module": call.module,
        "pattern": params.pattern,
        "limit": params.limit,
        "host_key_policy": params.options.host_key_policy,
        "inventory": {
            "source": inventory.source,
            "name": params.inventory_name,
            "version": params.inventory_version,
        },
    }


def _failure(totals: dict[str, int], stopped: str | None) -> str:
    text = (
        f"{totals['failed']} failed, {totals['unreachable']} unreachable of {totals['hosts']} hosts"
    )
    if totals["skipped"]:
        text += f", {totals['skipped']} skipped ({stopped})"
    return text
