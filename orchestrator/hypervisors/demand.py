"""What a job asks of placement: kinds that make a VM ask for vCPUs, memory and disk; every other
kind only needs an ``up`` hypervisor.

A kind's parameter model declares its demand by a ``placement_request()`` method returning a
:class:`PlacementRequest`; ``domain.define`` is read here from its spec."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.domains.devices import NewVolumeSource
from orchestrator.domains.spec import DomainSpec
from orchestrator.hypervisors.groups import GroupHint
from orchestrator.hypervisors.labels import Labels, LabelValue
from orchestrator.placement import PlacementRequest, Strategy

GIB = 1024**3
RESOURCE_KINDS = frozenset({"domain.define", "vm.provision"})


@runtime_checkable
class DeclaresDemand(Protocol):
    def placement_request(self) -> PlacementRequest: ...


class PlacementHints(BaseModel):
    """``placement`` in ``POST /v1/jobs``: how to choose among the hypervisors that fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = Field(
        Strategy.SPREAD,
        description="spread: the hypervisor with the most free memory (then vCPUs) first; "
        "pack: the least, keeping others empty for large VMs.",
    )
    labels: Labels = Field(
        default_factory=dict, description="Labels the hypervisor must carry, exactly."
    )
    zone: LabelValue | None = Field(None, description="Shorthand for labels.zone.")
    group: GroupHint | None = Field(
        None,
        description="A server group the VM joins: anti-affinity puts no two members on one "
        "hypervisor, affinity every member on one. A count request's VMs all join it.",
    )

    @model_validator(mode="after")
    def _zone_agrees(self) -> PlacementHints:
        if self.zone is not None and self.labels.get("zone", self.zone) != self.zone:
            raise ValueError("zone and labels.zone disagree")
        return self


def hints_json_schema() -> dict[str, Any]:
    """The schema of :class:`PlacementHints` with its definitions written in place, for a
    document that keeps only top-level models' definitions."""
    schema = PlacementHints.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def needs_resources(kind: str) -> bool:
    return kind in RESOURCE_KINDS


def placement_request(
    kind: str, params: BaseModel, hints: PlacementHints | None = None
) -> PlacementRequest:
    """The request placement decides on for a job of ``kind`` with validated ``params``."""
    if isinstance(params, DeclaresDemand):
        request = params.placement_request()
    elif kind == "domain.define" and isinstance(params, DomainSpec):
        request = domain_request(params)
    else:
        request = PlacementRequest(vcpus=0, memory_mib=0)
    return with_hints(request, hints)


def domain_request(spec: DomainSpec) -> PlacementRequest:
    """vCPUs (1 when the spec leaves them to the OS variant), memory, the new volumes'
    capacity per pool, and the CPU mode when the spec names one. Disks given by path name no
    pool: the worker confines them, and the pool's free space is checked when they are made."""
    disk: dict[str, int] = {}
    for device in spec.disks:
        source = device.source
        if isinstance(source, NewVolumeSource):
            size = math.ceil(source.size_gib * GIB)
            disk[source.pool] = disk.get(source.pool, 0) + size
    return PlacementRequest(
        vcpus=spec.vcpus or 1,
        memory_mib=spec.memory_mib,
        disk_bytes=disk,
        cpu_mode=spec.cpu.mode if spec.cpu else None,
    )


def with_hints(request: PlacementRequest, hints: PlacementHints | None) -> PlacementRequest:
    if hints is None:
        return request
    labels: Mapping[str, Any] = {**request.labels, **hints.labels}
    zone = hints.zone if hints.zone is not None else request.zone
    return replace(request, strategy=hints.strategy, labels=labels, zone=zone)
