"""``POST /v1/jobs?dry_run=true`` for ``domain.define``: the XML and volumes, changing nothing.

Pure: what the hypervisor contributes comes in ``hypervisor_facts`` (its heartbeat, when the API
has one), with these keys read when present: ``cpu_mode`` (the worker's setting, ``--cpu``
syntax), ``domain_type`` (``kvm``/``qemu``), ``arch``, ``machines``, ``pools`` (name -> directory),
``seed_dir`` and ``capacity`` (``cpus``, ``memory_mib``). Missing facts take the builder's
defaults, so the XML may differ from what the worker defines where those facts differ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from orchestrator.domains.domxml import HostDefaults, fill_defaults, render_domain_xml
from orchestrator.domains.domxml.resolved import ResolvedDisk
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.domains.spec import DomainSpec
from orchestrator.domains.virtinstall import cpu_from_setting
from orchestrator.errors import InvalidInput
from orchestrator.kinds import get_kind, parse_params

DRY_RUN_KINDS = ("domain.define",)
DEFAULT_SEED_POOL = "default"
_GIB = 1024**3


@dataclass(frozen=True)
class PlannedVolume:
    """A volume a define creates: pool, name, format, capacity in bytes, backing volume."""

    pool: str
    name: str
    format: str
    capacity: int
    backing_volume: str | None = None
    # Path disks are created only when their file is missing, which the API cannot see.
    only_if_missing: bool = False


def dry_run(params: dict[str, Any], hypervisor_facts: dict[str, Any] | None) -> dict[str, Any]:
    """What ``domain.define`` with ``params`` would define and create; raises InvalidInput.

    ``params`` are validated as the job's (a literal display password is refused as in a job).
    """
    spec = parse_params(get_kind("domain.define"), params)
    assert isinstance(spec, DomainSpec)
    return plan_define(spec, hypervisor_facts)


def plan_define(spec: DomainSpec, hypervisor_facts: dict[str, Any] | None) -> dict[str, Any]:
    """The dry run of an already validated spec (``virt-install --print-xml`` renders locally,
    so its spec may hold a password; shown XML leaves it out)."""
    facts = hypervisor_facts or {}
    check_capacity(spec, facts.get("capacity") or {})
    resolution = resolve_os_variant(spec.os_variant or "generic")
    host = host_from_facts(facts)
    iso = _seed_path(spec, facts, host) if spec.cloud_init is not None else None
    resolved = fill_defaults(spec, resolution.variant, host, cloud_init_iso=iso)
    return {
        "dry_run": True,
        "kind": "domain.define",
        "xml": render_domain_xml(resolved),
        "install_xml": render_domain_xml(resolved, phase="install")
        if resolved.has_install_phase
        else None,
        "volumes": [asdict(v) for v in planned_volumes(resolved.disks, _pool_dirs(facts))],
        "cloud_init_seed": iso,
        "os_variant": {
            "requested": resolution.requested,
            "resolved": resolution.variant.short_id,
            "substituted": resolution.substituted,
        },
        "notes": list(resolved.notes),
    }


def planned_volumes(
    disks: tuple[ResolvedDisk, ...], pool_dirs: Mapping[str, str] | None = None
) -> list[PlannedVolume]:
    """The volumes the resolved disks ask to create. A path disk is named by the pool whose
    directory holds it, when ``pool_dirs`` tells (else by its directory)."""
    planned = []
    for disk in disks:
        if disk.create_size_gib is None:
            continue
        capacity = math.ceil(disk.create_size_gib * _GIB / 512) * 512
        if disk.source_type == "volume":
            pool, name, maybe = disk.pool or "", disk.volume or "", False
        else:
            pool, name = _pool_and_name(disk.path or "", pool_dirs or {})
            maybe = True
        planned.append(
            PlannedVolume(pool, name, disk.driver_type, capacity, disk.backing_volume, maybe)
        )
    return planned


def host_from_facts(facts: Mapping[str, Any]) -> HostDefaults:
    host = HostDefaults()
    if facts.get("cpu_mode"):
        host = replace(host, cpu=cpu_from_setting(str(facts["cpu_mode"])))
    if facts.get("domain_type") in ("kvm", "qemu"):
        host = replace(host, domain_type=facts["domain_type"])
    if facts.get("arch"):
        host = replace(host, arch=str(facts["arch"]))
    if facts.get("machines"):
        host = replace(host, machines=tuple(facts["machines"]))
    if facts.get("seed_dir"):
        host = replace(host, seed_dir=str(facts["seed_dir"]))
    return host


def check_capacity(spec: DomainSpec, capacity: Mapping[str, Any]) -> None:
    """InvalidInput when the spec asks for more CPUs or memory than the capacity reports."""
    cpus, memory = capacity.get("cpus"), capacity.get("memory_mib")
    if cpus and spec.vcpus and spec.vcpus > cpus:
        message = f"{spec.vcpus} vCPUs are more than the host's {cpus} CPUs"
        raise InvalidInput(message, errors=[{"field": "params.vcpus", "message": message}])
    if memory and spec.memory_mib > memory:
        message = f"{spec.memory_mib} MiB is more than the host's {memory} MiB of memory"
        raise InvalidInput(message, errors=[{"field": "params.memory_mib", "message": message}])


def _pool_dirs(facts: Mapping[str, Any]) -> dict[str, str]:
    pools = facts.get("pools") or {}
    return {str(k): str(v) for k, v in pools.items()} if isinstance(pools, Mapping) else {}


def _pool_and_name(path: str, pool_dirs: Mapping[str, str]) -> tuple[str, str]:
    directory, _, name = path.rpartition("/")
    for pool, pool_dir in sorted(pool_dirs.items()):
        if pool_dir.rstrip("/") == directory:
            return pool, name
    return directory, name


def seed_pool_name(spec: DomainSpec) -> str:
    """The pool that holds the cloud-init seed: the first disk's pool, else ``default``."""
    for disk in spec.disks:
        pool = getattr(disk.source, "pool", None)
        if pool:
            return str(pool)
    return DEFAULT_SEED_POOL


def _seed_path(spec: DomainSpec, facts: Mapping[str, Any], host: HostDefaults) -> str:
    directory = _pool_dirs(facts).get(seed_pool_name(spec), host.seed_dir)
    return f"{directory}/{spec.name}-cidata.iso"


def dry_run_job(
    kind: str, params: dict[str, Any], hypervisor_facts: dict[str, Any] | None
) -> dict[str, Any]:
    """The dry run of a job request; only kinds in ``DRY_RUN_KINDS`` have one."""
    if kind not in DRY_RUN_KINDS:
        message = f"dry_run is supported for {', '.join(DRY_RUN_KINDS)} only"
        raise InvalidInput(message, errors=[{"field": "kind", "message": message}])
    return dry_run(params, hypervisor_facts)
