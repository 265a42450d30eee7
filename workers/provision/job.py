"""One ``vm.provision`` attempt: check, disks, seed, define, start, address; each step timed.

A domain already defined from the same spec (an earlier attempt, or the same request again) is
taken as it is: its disks and seed are not touched, it is started if it is not running, and the
wait runs again. A domain of that name with another spec is a conflict and is left alone.
"""

from __future__ import annotations

from typing import Any

from orchestrator.kinds.provision import ProvisionParams
from workers.context import JobContext
from workers.domains.define import require_same_spec
from workers.domains.state import describe_domain, find_domain
from workers.provision.readiness import wait_until_ready
from workers.provision.steps import (
    StepClock,
    check_and_plan,
    ensure_defined,
    ensure_disks,
    ensure_running,
    ensure_seed,
    first_mac,
)


def provision(ctx: JobContext, params: ProvisionParams) -> dict[str, Any]:
    """The VM of ``params`` running on this hypervisor, as ready as ``wait_for`` asks."""
    spec = params.domain_spec()
    clock = StepClock(ctx)
    with clock.step("check"):
        domain = find_domain(ctx.libvirt, spec.name)
        if domain is not None:
            require_same_spec(domain, spec)
        plan = check_and_plan(ctx, spec)
    volumes: list[dict[str, object]] = []
    changed = domain is None
    if domain is None:
        with clock.step("disks"):
            volumes = ensure_disks(ctx, plan)
        if plan.seed is not None:
            with clock.step("seed"):
                ensure_seed(ctx, spec, plan)
        with clock.step("define"):
            domain = ensure_defined(ctx, spec, plan.resolved)
    else:
        ctx.event(f"domain {spec.name} is already defined from this spec; its disks are kept")
    with clock.step("start"):
        changed = ensure_running(ctx, domain, spec, plan.resolved) or changed
    with clock.step("address"):
        ready = wait_until_ready(ctx, domain, params.wait_for, params.wait_timeout)
    described = describe_domain(domain)
    return {
        **described,
        "hypervisor": ctx.hypervisor,
        "address": ready.address,
        "addresses": [a.as_result() for a in ready.addresses],
        "readiness": ready.reached,
        "mac": first_mac(described),
        "volumes": volumes,
        "timings": clock.timings,
        "changed": changed,
    }
