"""Handlers for the domain kinds: define, power actions, autostart, undefine, info and list."""

from __future__ import annotations

from typing import Any

import libvirt

from orchestrator.kinds.domains import (
    DomainAutostartParams,
    DomainDefineParams,
    DomainDestroyParams,
    DomainInfoParams,
    DomainListParams,
    DomainRebootParams,
    DomainResumeParams,
    DomainShutdownParams,
    DomainStartParams,
    DomainSuspendParams,
    DomainUndefineParams,
)
from workers.context import JobContext
from workers.domains import lifecycle
from workers.domains.define import ensure_domain
from workers.domains.state import describe_domain, find_domain, require_domain
from workers.handlers.registry import handles


@handles(DomainDefineParams)
def domain_define(ctx: JobContext, params: DomainDefineParams) -> dict[str, Any]:
    return ensure_domain(ctx, params)


@handles(DomainStartParams)
def domain_start(ctx: JobContext, params: DomainStartParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    facts = ctx.resources.host_facts.get(ctx.libvirt)
    return _report(ctx, domain, lifecycle.start(domain, facts))


@handles(DomainShutdownParams)
def domain_shutdown(ctx: JobContext, params: DomainShutdownParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    return _report(ctx, domain, lifecycle.shutdown(ctx, domain, params.timeout, params.force))


@handles(DomainRebootParams)
def domain_reboot(ctx: JobContext, params: DomainRebootParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    return _report(ctx, domain, lifecycle.reboot(domain, params.force))


@handles(DomainDestroyParams)
def domain_destroy(ctx: JobContext, params: DomainDestroyParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    return _report(ctx, domain, lifecycle.destroy(domain))


@handles(DomainSuspendParams)
def domain_suspend(ctx: JobContext, params: DomainSuspendParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    return _report(ctx, domain, lifecycle.suspend(domain))


@handles(DomainResumeParams)
def domain_resume(ctx: JobContext, params: DomainResumeParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    return _report(ctx, domain, lifecycle.resume(domain))


@handles(DomainAutostartParams)
def domain_set_autostart(ctx: JobContext, params: DomainAutostartParams) -> dict[str, Any]:
    domain = require_domain(ctx.libvirt, params.name)
    return _report(ctx, domain, lifecycle.set_autostart(domain, params.autostart))


@handles(DomainUndefineParams)
def domain_undefine(ctx: JobContext, params: DomainUndefineParams) -> dict[str, Any]:
    domain = find_domain(ctx.libvirt, params.name)
    if domain is None:
        ctx.event(f"domain {params.name} is not defined; nothing to undefine")
        return {"name": params.name, "changed": False, "removed_volumes": []}
    changed, message, removed = lifecycle.undefine(ctx, domain, params.remove_storage)
    ctx.event(message)
    return {"name": params.name, "changed": changed, "removed_volumes": removed}


@handles(DomainInfoParams)
def domain_info(ctx: JobContext, params: DomainInfoParams) -> dict[str, Any]:
    return describe_domain(require_domain(ctx.libvirt, params.name))


@handles(DomainListParams)
def domain_list(ctx: JobContext, params: DomainListParams) -> dict[str, Any]:
    domains = []
    for domain in ctx.libvirt.listAllDomains():
        try:
            domains.append(describe_domain(domain))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise  # a domain undefined while listing is simply not listed
    return {"domains": sorted(domains, key=lambda d: d["name"])}


def _report(
    ctx: JobContext, domain: libvirt.virDomain, outcome: lifecycle.Outcome
) -> dict[str, Any]:
    changed, message = outcome
    ctx.event(message)
    return {**describe_domain(domain), "changed": changed}
