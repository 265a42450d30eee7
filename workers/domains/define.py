"""``domain.define`` as an "ensure": plan the domain, create what it needs, define, start.

Everything the spec names is checked against the hypervisor before anything is created, host
paths first (:func:`check_host_paths`: each one resolved and confined to the roots the operator
allowed, before any of them is read); every object this attempt creates (volumes, seed ISO, the
definition) is registered with ``ctx.created`` so a failure removes it again.
:func:`define_domain` is the one place that calls ``defineXML``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from typing import Any

import libvirt

from orchestrator.domains.domxml import ResolvedSpec, fill_defaults, render_domain_xml
from orchestrator.domains.domxml.os_boot import Phase
from orchestrator.domains.dryrun import PlannedVolume, planned_volumes
from orchestrator.domains.hostpaths import host_paths
from orchestrator.domains.osinfo import GENERIC, Resolution, resolve_os_variant
from orchestrator.domains.spec import DomainSpec
from orchestrator.errors import Conflict, JobFailed
from orchestrator.storage.volume_xml import VolumeDefinition
from workers.context import JobContext
from workers.domains.disks import (
    check_new_volumes,
    create_volumes,
    existing_formats,
    paths_to_create,
)
from workers.domains.display_password import read_display_password, with_display_password
from workers.domains.host import (
    check_defined_cpu,
    check_host_limits,
    check_networks,
    host_defaults,
)
from workers.domains.record import (
    describe_differences,
    read_spec_record,
    record_differences,
    spec_record,
    with_spec_record,
)
from workers.domains.seed import build_seed, seed_directory, seed_file_name
from workers.domains.state import describe_domain, find_domain
from workers.storage.managed import HostConfinement

# Tried in turn while libvirt calls them unsupported (the test driver knows no NVRAM), then a
# plain undefine. Fewer flags lose nothing: libvirt refuses, with another error, to undefine a
# domain that has a managed save or NVRAM without the flag that removes it.
_UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM,
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
)
# A worker's first jobs would each parse the whole osinfo-db at once (threads, one GIL); one
# parses it, the others wait for its result.
_osinfo_lock = threading.Lock()
_GENERIC_NAMES = ("generic", "none")


@dataclass(frozen=True)
class DomainPlan:
    """What a define will do: the resolved domain and the volumes and seed it creates."""

    resolved: ResolvedSpec
    volumes: list[tuple[PlannedVolume, libvirt.virStoragePool, VolumeDefinition]]
    seed: tuple[libvirt.virStoragePool, str] | None


def check_host_paths(confine: HostConfinement, spec: DomainSpec) -> None:
    """Forbidden unless every host path of ``spec`` resolves where it may: disks and ISOs in a
    managed pool, files only read there or in the read roots, consoles in var_dir/consoles or
    the pool roots (and never over a volume)."""
    for host_path in host_paths(spec):
        if host_path.use == "disk":
            confine.require_in_pools(host_path.field, host_path.path)
        elif host_path.use == "read":
            confine.check_read(host_path.field, host_path.path)
        else:
            confine.check_console(host_path.field, host_path.path)


def define_domain(conn: libvirt.virConnect, xml: str) -> libvirt.virDomain:
    """Define (or redefine) a persistent domain from ``xml``; libvirt's refusal is JobFailed."""
    try:
        return conn.defineXML(xml)
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt refused the domain definition: {exc}") from None


def definition_xml(spec: DomainSpec, resolved: ResolvedSpec, phase: Phase = "final") -> str:
    """The XML handed to libvirt for ``phase``: secrets revealed, ``spec`` recorded in it."""
    return with_spec_record(render_domain_xml(resolved, phase=phase, reveal_secrets=True), spec)


def define_after_install(
    conn: libvirt.virConnect, spec: DomainSpec, resolved: ResolvedSpec, domain: libvirt.virDomain
) -> None:
    """Define the form an installing ``domain`` boots once its installer is done: the disk, not
    the media. Under the domain's own UUID: a spec without one leaves it to libvirt, which
    takes a definition of the same name without it for another domain and refuses it."""
    define_domain(conn, definition_xml(spec, replace(resolved, uuid=domain.UUIDString())))


def undefine_domain(domain: libvirt.virDomain) -> None:
    """Stop the domain if it runs, then remove its definition, with its managed save, snapshot
    metadata and NVRAM wherever the driver knows them."""
    if domain.isActive():
        domain.destroy()
    for flags in _UNDEFINE_FLAGS:
        try:
            domain.undefineFlags(flags)
            return
        except libvirt.libvirtError as exc:
            if not _unsupported_flags(exc):
                raise
    domain.undefine()


def _unsupported_flags(exc: libvirt.libvirtError) -> bool:
    return exc.get_error_code() in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT)


def ensure_domain(ctx: JobContext, spec: DomainSpec) -> dict[str, Any]:
    """The ``domain.define`` job: the domain as ``spec`` says, running when ``spec.start``."""
    resolution = resolve_os_variant_of(spec)
    if resolution.substituted:
        ctx.event(
            f"os variant {resolution.requested} resolved to {resolution.variant.short_id}",
            data={"requested": resolution.requested, "resolved": resolution.variant.short_id},
        )
    existing = find_domain(ctx.libvirt, spec.name)
    if existing is not None:
        return _accept_existing(ctx, spec, existing, resolution)
    plan = plan_domain(ctx, spec, resolution)
    for note in plan.resolved.notes:
        ctx.event(note, level="warning")
    volumes = create_volumes(ctx, plan.volumes)
    if plan.seed is not None:
        build_seed(ctx, spec, *plan.seed)
    domain = _define_and_start(ctx, spec, plan.resolved)
    result = describe_domain(domain)
    return {
        **result,
        "os_variant": resolution.variant.short_id,
        "volumes": volumes,
        "changed": True,
    }


def resolve_os_variant_of(spec: DomainSpec) -> Resolution:
    """The osinfo variant ``spec.os_variant`` names (``generic`` when it names none), and
    whether another stood in for it; a name osinfo-db does not know is InvalidInput."""
    key = spec.os_variant or "generic"
    if key in _GENERIC_NAMES:
        return Resolution(GENERIC, key)  # needs nothing from osinfo-db: skip parsing it
    with _osinfo_lock:
        return resolve_os_variant(key)


def plan_domain(ctx: JobContext, spec: DomainSpec, resolution: Resolution) -> DomainPlan:
    """Check ``spec`` against the hypervisor (host paths, limits and CPU, networks, pools and
    new volumes) and resolve it with the host's defaults; creates nothing. A refusal is
    InvalidInput, Forbidden or Conflict naming the spec's field."""
    conn = ctx.libvirt
    confine = HostConfinement(conn, ctx.settings)
    check_host_paths(confine, spec)
    facts = ctx.resources.host_facts.get(conn)
    check_host_limits(facts, spec)
    check_networks(conn, spec)
    password = read_display_password(spec.graphics)
    formats = existing_formats(confine, spec)
    paths = paths_to_create(confine, spec)
    seed = seed_directory(confine, spec) if spec.cloud_init is not None else None
    host = host_defaults(facts, ctx.settings, known_formats=formats)
    iso = os.path.join(seed[1], seed_file_name(spec.name)) if seed else None
    resolved = with_display_password(
        fill_defaults(spec, resolution.variant, host, cloud_init_iso=iso), password
    )
    # Path disks whose file exists are not created; the others are named by their pool.
    creating = tuple(d for d in resolved.disks if d.source_type == "volume" or d.path in paths)
    pool_dirs = {pool: path.rpartition("/")[0] for path, (pool, _name) in paths.items()}
    volumes = check_new_volumes(confine, planned_volumes(creating, pool_dirs))
    return DomainPlan(resolved, volumes, seed)


def _define_and_start(
    ctx: JobContext, spec: DomainSpec, resolved: ResolvedSpec
) -> libvirt.virDomain:
    conn = ctx.libvirt
    install = resolved.has_install_phase
    # As virt-install: boot the installer from a definition that stops at its reboot, then
    # define the final one, which the next start boots.
    domain = define_domain(conn, definition_xml(spec, resolved, "install" if install else "final"))
    ctx.created(f"domain {spec.name}", lambda: undefine_domain(domain))
    ctx.event(f"defined domain {spec.name} ({resolved.domain_type}, {resolved.boot.machine})")
    if spec.autostart:
        domain.setAutostart(1)
    if spec.start:
        _start(ctx, domain)
        if install:
            define_after_install(conn, spec, resolved, domain)
    elif install:
        ctx.event("defined for installing: domain.start boots the installation media")
    return domain


def _start(ctx: JobContext, domain: libvirt.virDomain) -> None:
    check_defined_cpu(ctx.resources.host_facts.get(ctx.libvirt), domain)
    try:
        domain.create()
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt could not start domain {domain.name()}: {exc}") from None
    ctx.event(f"started domain {domain.name()}")


def require_same_spec(domain: libvirt.virDomain, spec: DomainSpec) -> None:
    """Conflict unless ``domain`` was defined by this service from ``spec``: a job finding its
    domain already there accepts it only as what it would have made."""
    record = read_spec_record(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    if record is None:
        raise Conflict(
            f"domain {spec.name} already exists and was not defined by this service",
            name=spec.name,
        )
    diffs = record_differences(spec_record(spec), record)
    if diffs:
        raise Conflict(
            f"domain {spec.name} already exists with another spec: {describe_differences(diffs)}",
            differences=diffs,
        )


def _accept_existing(
    ctx: JobContext, spec: DomainSpec, domain: libvirt.virDomain, resolution: Resolution
) -> dict[str, Any]:
    require_same_spec(domain, spec)
    changed = False
    if bool(domain.autostart()) != spec.autostart:
        domain.setAutostart(int(spec.autostart))
        ctx.event(f"autostart of {spec.name} set to {spec.autostart}")
        changed = True
    if spec.start and not domain.isActive():
        _start(ctx, domain)
        changed = True
    if not changed:
        ctx.event(f"domain {spec.name} already exists as asked")
    variant = resolution.variant.short_id
    return {**describe_domain(domain), "os_variant": variant, "volumes": [], "changed": changed}
