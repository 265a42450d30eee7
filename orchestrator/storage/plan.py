"""What a create job's volumes are to be, decided from its parameters and its backing volume
before anything is created: pure, so the same rules hold in a dry run and on the worker."""

from __future__ import annotations

from orchestrator.errors import Conflict, InvalidInput
from orchestrator.kinds.storage import VolumeSpecFields
from orchestrator.storage.sizes import format_size
from orchestrator.storage.spec import VolumeSpec, describe_differences, spec_differences
from orchestrator.storage.volume_xml import VolumeDefinition, VolumeFacts


def new_volume_definition(
    params: VolumeSpecFields, backing: VolumeFacts | None, name: str = ""
) -> VolumeDefinition:
    """The volume to create; without a capacity, a linked clone takes its backing's."""
    capacity = params.capacity or (backing.capacity if backing else 0)
    return VolumeDefinition(
        name=name,
        capacity=capacity,
        format=params.format,
        allocation=capacity if params.allocation == "full" else 0,
        backing_path=backing.path if backing else None,
        backing_format=backing.format if backing else None,
        owner=params.owner,
        group=params.group,
        mode=params.mode,
    )


def wanted_spec(definition: VolumeDefinition, params: VolumeSpecFields) -> VolumeSpec:
    """What an existing volume must match for the job to accept it as already done."""
    return VolumeSpec(
        format=definition.format,
        capacity=definition.capacity,
        backing_path=definition.backing_path,
        full_allocation=params.allocation == "full",
        owner=params.owner,
        group=params.group,
        mode=params.mode,
    )


def describe_new_volume(definition: VolumeDefinition, allocation: str) -> str:
    """For events: ``10 GiB, sparse, backed by /path``."""
    details = [format_size(definition.capacity), allocation]
    if definition.backing_path:
        details.append(f"backed by {definition.backing_path}")
    return ", ".join(details)


def check_backing(params: VolumeSpecFields, backing: VolumeFacts) -> None:
    """InvalidInput when the backing volume cannot back the volume asked for."""
    if backing.format not in ("qcow2", "raw"):
        raise InvalidInput.of("params.backing", f"has format {backing.format}; only qcow2 or raw")
    if params.capacity is not None and params.capacity < backing.capacity:
        raise InvalidInput.of(
            "params.capacity",
            f"{format_size(params.capacity)} is smaller than the backing volume's "
            f"{format_size(backing.capacity)}",
        )


def refuse_different(pool: str, wanted: VolumeSpec, found: dict[str, VolumeFacts]) -> None:
    """Conflict naming every volume that exists with other properties than asked."""
    conflicts = {
        name: diffs
        for name, facts in found.items()
        if (diffs := spec_differences(wanted, facts.state))
    }
    if conflicts:
        listed = "; ".join(
            f"{name}: {describe_differences(diffs)}" for name, diffs in sorted(conflicts.items())
        )
        raise Conflict(
            f"volumes already exist in pool {pool} with other properties: {listed}",
            differences=conflicts,
        )
