"""The steps of ``vm.provision``, each an "ensure": look first, act only when needed.

Planning, disks and seed are ``domain.define``'s own (:mod:`workers.domains.define`,
:mod:`workers.domains.disks`, :mod:`workers.domains.seed`), so a provisioned VM is exactly the
domain ``domain.define`` would make from the same spec; here they run one at a time, so each is
timed and reported on its own. Everything a step creates is registered with ``ctx.created``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import libvirt

from orchestrator.domains.domxml import ResolvedSpec
from orchestrator.domains.domxml.os_boot import Phase
from orchestrator.domains.spec import DomainSpec
from orchestrator.errors import Forbidden, InvalidInput, JobFailed
from orchestrator.kinds.provision import provision_field
from workers.context import JobContext
from workers.domains import lifecycle
from workers.domains.define import (
    DomainPlan,
    define_after_install,
    define_domain,
    definition_xml,
    plan_domain,
    resolve_os_variant_of,
    undefine_domain,
)
from workers.domains.disks import create_volumes
from workers.domains.seed import build_seed


@dataclass
class StepClock:
    """Times each step and reports its end as a job event carrying the step and its seconds."""

    ctx: JobContext
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.ctx.cancel_requested():
            raise JobFailed(f"cancelled before the {name} step")
        started = time.monotonic()
        yield
        seconds = round(time.monotonic() - started, 3)
        self.timings[name] = seconds
        self.ctx.event(
            f"step {name} done in {seconds:.2f}s", data={"step": name, "seconds": seconds}
        )


def check_and_plan(ctx: JobContext, spec: DomainSpec) -> DomainPlan:
    """Every check ``domain.define`` makes against the hypervisor (paths, pools, base image,
    network, limits), and what it would create; nothing is created yet."""
    resolution = resolve_os_variant_of(spec)
    if resolution.substituted:
        ctx.event(
            f"os variant {resolution.requested} resolved to {resolution.variant.short_id}",
            data={"requested": resolution.requested, "resolved": resolution.variant.short_id},
        )
    try:
        plan = plan_domain(ctx, spec, resolution)
    except (InvalidInput, Forbidden) as exc:
        raise _in_provision_terms(exc) from None
    for note in plan.resolved.notes:
        ctx.event(note, level="warning")
    return plan


def _in_provision_terms(exc: InvalidInput | Forbidden) -> InvalidInput | Forbidden:
    """``exc`` naming the job's own parameters instead of its domain spec's fields."""
    errors = exc.extra.get("errors") or []
    detail = exc.detail
    for error in errors:
        own = provision_field(error["field"])
        detail = detail.replace(error["field"], own)
        error["field"] = own
    return type(exc)(detail, **exc.extra)


def ensure_disks(ctx: JobContext, plan: DomainPlan) -> list[dict[str, object]]:
    """The planned volumes, created or found as planned."""
    return create_volumes(ctx, plan.volumes)


def ensure_seed(ctx: JobContext, spec: DomainSpec, plan: DomainPlan) -> str | None:
    """The cloud-init seed ISO's path, when the spec has cloud-init."""
    if plan.seed is None:
        return None
    return build_seed(ctx, spec, *plan.seed)


def ensure_defined(ctx: JobContext, spec: DomainSpec, resolved: ResolvedSpec) -> libvirt.virDomain:
    """Define the domain, stopped. One with an install phase is first defined to boot its
    installer; :func:`ensure_running` defines the final form once that boot has begun."""
    phase: Phase = "install" if resolved.has_install_phase else "final"
    domain = define_domain(ctx.libvirt, definition_xml(spec, resolved, phase))
    ctx.created(f"domain {spec.name}", lambda: undefine_domain(domain))
    ctx.event(f"defined domain {spec.name} ({resolved.domain_type}, {resolved.boot.machine})")
    return domain


def ensure_running(
    ctx: JobContext, domain: libvirt.virDomain, spec: DomainSpec, resolved: ResolvedSpec
) -> bool:
    """Start the domain unless it runs; whether it was started."""
    facts = ctx.resources.host_facts.get(ctx.libvirt)
    changed, message = lifecycle.start(domain, facts)
    ctx.event(message)
    if changed and resolved.has_install_phase:
        define_after_install(ctx.libvirt, spec, resolved, domain)
    return changed


def first_mac(described: dict[str, Any]) -> str | None:
    """The MAC of the domain's first NIC, from :func:`~workers.domains.state.describe_domain`."""
    return next((i["mac"] for i in described["interfaces"] if i.get("mac")), None)
