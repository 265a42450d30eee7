"""The filters, in the order a decision runs them. Each removes the hypervisors that cannot
take the request and, asked about one it removed, says what that hypervisor lacks.

``keep`` is the fast form run on every decision; ``lack`` is the same rule with its reason,
run only to explain a refusal (the tests hold the two to agree)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.placement.headroom import Headroom
from orchestrator.placement.hosts import HostState
from orchestrator.placement.policy import PlacementPolicy
from orchestrator.placement.request import GroupPolicy, PlacementRequest


@dataclass(frozen=True)
class Lack:
    """Why one hypervisor fails one filter. ``shortfall`` is how much is missing as a share
    of what was asked (1.0 for a rule met or not, such as a label), so hypervisors removed for
    different resources compare."""

    what: str
    shortfall: float = 1.0


class Filter:
    """One rule a hypervisor must meet. ``name`` is how explanations call it."""

    name = "filter"

    def applies(self, request: PlacementRequest) -> bool:
        """False when the request asks nothing this rule checks: the filter is skipped."""
        return True

    def label(self, request: PlacementRequest) -> str:
        return self.name

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        """The rows that pass, in their order (a decision finds what was removed by it)."""
        return [row for row in rows if self.lack(row, request) is None]

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        raise NotImplementedError

    def reason_key(self, row: Headroom) -> str | None:
        """A word to group removed hypervisors by in explanations (``down: hv7, hv9``)."""
        return None


class StateFilter(Filter):
    """Only ``up`` hypervisors take new work; ``draining`` ones finish what they have."""

    name = "state"

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        up = HostState.UP
        return [row for row in rows if row.state is up]

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        return None if row.state is HostState.UP else Lack(f"is {row.state.value}")

    def reason_key(self, row: Headroom) -> str | None:
        return row.state.value


class LabelsFilter(Filter):
    """Every required label (``zone`` among them) matches the hypervisor's exactly."""

    name = "labels"

    def applies(self, request: PlacementRequest) -> bool:
        return bool(request.required_labels)

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        kept = list(rows)
        for key, value in request.required_labels.items():
            kept = [row for row in kept if row.labels.get(key) == value]
        return kept

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        wrong = [
            f"{key}={value}" + (f" (has {row.labels[key]})" if key in row.labels else "")
            for key, value in request.required_labels.items()
            if row.labels.get(key) != value
        ]
        return Lack(f"lacks label {', '.join(wrong)}") if wrong else None


class VcpuFilter(Filter):
    """vCPUs held, claimed and asked stay within host CPUs x ``cpu_allocation_ratio``."""

    name = "vcpus"

    def __init__(self, policy: PlacementPolicy) -> None:
        self.ratio = policy.cpu_allocation_ratio

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        need = request.vcpus
        return [row for row in rows if row.vcpus_free >= need]

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        missing = request.vcpus - row.vcpus_free
        if missing <= 0:
            return None
        return Lack(
            f"needs {_number(missing)} more vCPUs under ratio {self.ratio}",
            _share(missing, request.vcpus),
        )


class MemoryFilter(Filter):
    """Memory held, claimed and asked stays within memory x ``ram_allocation_ratio`` less
    the memory reserved for the host itself."""

    name = "memory"

    def __init__(self, policy: PlacementPolicy) -> None:
        self.ratio = policy.ram_allocation_ratio

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        need = request.memory_mib
        return [row for row in rows if row.memory_free_mib >= need]

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        missing = request.memory_mib - row.memory_free_mib
        if missing <= 0:
            return None
        return Lack(
            f"needs {_number(missing)} MiB more memory under ratio {self.ratio}",
            _share(missing, request.memory_mib),
        )


class PoolFilter(Filter):
    """The required pool, the base image in it, and every pool the disks go to exist.

    Runs before the disk filter so that a missing pool is reported as missing, not as
    lacking space."""

    name = "pool"

    def applies(self, request: PlacementRequest) -> bool:
        return request.pool is not None or bool(request.disk_bytes)

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        kept = list(rows)
        image, required = request.base_image, request.pool
        if required is not None:
            if image is None:
                kept = [row for row in kept if required in row.images]
            else:
                kept = [row for row in kept if image in row.images.get(required, ())]
        for pool in request.disk_bytes:
            if pool != required:
                kept = [row for row in kept if pool in row.images]
        return kept

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        wanted = [request.pool] if request.pool is not None else []
        missing = [p for p in dict.fromkeys([*wanted, *request.disk_bytes]) if p not in row.images]
        if missing:
            return Lack(f"has no pool {', '.join(missing)}")
        image, pool = request.base_image, request.pool
        if image is not None and pool is not None and image not in row.images[pool]:
            return Lack(f"has no base image {image} in pool {pool}")
        return None


class DiskFilter(Filter):
    """In each pool the disks go to, the bytes asked fit in what is free under
    ``disk_allocation_ratio``, less the bytes claimed and not yet written. A pool the
    hypervisor lacks is the pool filter's to report."""

    name = "disk"

    def __init__(self, policy: PlacementPolicy) -> None:
        self.ratio = policy.disk_allocation_ratio

    def applies(self, request: PlacementRequest) -> bool:
        return bool(request.disk_bytes)

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        kept, absent = list(rows), math.inf
        for pool, need in request.disk_bytes.items():
            kept = [row for row in kept if row.disk_free.get(pool, absent) >= need]
        return kept

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        short = [
            (need - row.disk_free[pool], need, pool)
            for pool, need in request.disk_bytes.items()
            if row.disk_free.get(pool, math.inf) < need
        ]
        if not short:
            return None
        what = ", ".join(f"{format_bytes(m)} more disk in pool {p}" for m, _, p in short)
        return Lack(
            f"needs {what} under ratio {self.ratio}", max(_share(m, n) for m, n, _ in short)
        )


class CpuModeFilter(Filter):
    """The guest CPU mode asked for was seen to boot on the hypervisor."""

    name = "cpu mode"

    def applies(self, request: PlacementRequest) -> bool:
        return request.cpu_mode is not None

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        mode = request.cpu_mode
        return [row for row in rows if mode in row.cpu_modes]

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        if request.cpu_mode in row.cpu_modes:
            return None
        boots = ", ".join(sorted(row.cpu_modes)) or "none known"
        return Lack(f"cannot boot cpu mode {request.cpu_mode} (boots: {boots})")


class GroupFilter(Filter):
    """Affinity: the hypervisor where the group's members run (any, for the first member).
    Anti-affinity: a hypervisor running no member yet."""

    name = "group"

    def applies(self, request: PlacementRequest) -> bool:
        return request.group is not None

    def label(self, request: PlacementRequest) -> str:
        return request.group.label if request.group is not None else self.name

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        group = request.group
        if group is None:
            return list(rows)
        members = group.hosts
        if group.policy is GroupPolicy.ANTI_AFFINITY:
            return [row for row in rows if row.name not in members]
        return [row for row in rows if row.name in members] if members else list(rows)

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        group = request.group
        if group is None:
            return None
        if group.policy is GroupPolicy.ANTI_AFFINITY:
            if row.name in group.hosts:
                return Lack(f"already runs a member of {group.label}")
            return None
        if group.hosts and row.name not in group.hosts:
            where = ", ".join(sorted(group.hosts))
            return Lack(f"runs no member of {group.label} (members on {where})")
        return None


class ProvisioningFilter(Filter):
    """Fewer than ``max_provisioning_per_host`` provisioning jobs already run there."""

    name = "provisioning"

    def __init__(self, policy: PlacementPolicy) -> None:
        self.limit = policy.max_provisioning_per_host

    def applies(self, request: PlacementRequest) -> bool:
        return self.limit is not None

    def keep(self, rows: Sequence[Headroom], request: PlacementRequest) -> list[Headroom]:
        limit = self.limit
        if limit is None:
            return list(rows)
        return [row for row in rows if row.provisioning < limit]

    def lack(self, row: Headroom, request: PlacementRequest) -> Lack | None:
        if self.limit is None or row.provisioning < self.limit:
            return None
        return Lack(f"already provisions {row.provisioning} VMs (at most {self.limit} at once)")


def default_filters(policy: PlacementPolicy) -> tuple[Filter, ...]:
    """Every filter, cheapest and most often decisive first."""
    return (
        StateFilter(),
        LabelsFilter(),
        VcpuFilter(policy),
        MemoryFilter(policy),
        PoolFilter(),
        DiskFilter(policy),
        CpuModeFilter(),
        GroupFilter(),
        ProvisioningFilter(policy),
    )


def format_bytes(size: float) -> str:
    """``size`` in the largest binary unit it reaches, rounded up: ``1.5 GiB``, ``1 MiB``."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{_number(math.ceil(size / scale * 100) / 100)} {unit}"
    return f"{math.ceil(size)} B"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}".rstrip("0")


def _share(missing: float, asked: float) -> float:
    return min(1.0, missing / asked) if asked > 0 else 1.0
