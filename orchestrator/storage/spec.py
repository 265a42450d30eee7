"""What a volume should look like, and how an existing volume differs from that.

"Ensure" steps compare the wanted spec with the volume found: no difference means the job is
already done; any difference is a conflict that names every field, and nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.storage.sizes import format_size


@dataclass(frozen=True)
class VolumeSpec:
    """The properties a request fixes; None means "whatever it is", except for the backing file,
    where None means "no backing file"."""

    format: str | None = None
    capacity: int | None = None
    backing_path: str | None = None
    # True asks for a fully allocated volume; False or None accept any allocation.
    full_allocation: bool | None = None
    owner: int | None = None
    group: int | None = None
    mode: str | None = None


@dataclass(frozen=True)
class VolumeState:
    """What the hypervisor reports about an existing volume."""

    format: str | None
    capacity: int
    allocation: int
    backing_path: str | None
    owner: int | None = None
    group: int | None = None
    mode: str | None = None


def spec_differences(wanted: VolumeSpec, actual: VolumeState) -> list[dict[str, Any]]:
    """Each field where ``actual`` breaks ``wanted``, as ``{"field", "wanted", "actual"}``."""
    diffs: list[dict[str, Any]] = []

    def differ(field: str, want: Any, have: Any) -> None:
        diffs.append({"field": field, "wanted": want, "actual": have})

    if wanted.format is not None and wanted.format != actual.format:
        differ("format", wanted.format, actual.format)
    if wanted.capacity is not None and wanted.capacity != actual.capacity:
        differ("capacity", wanted.capacity, actual.capacity)
    if wanted.backing_path != actual.backing_path:
        differ("backing", wanted.backing_path, actual.backing_path)
    if wanted.full_allocation and actual.allocation < actual.capacity:
        differ("allocation", "full", f"sparse ({format_size(actual.allocation)} allocated)")
    for field in ("owner", "group"):
        want = getattr(wanted, field)
        if want is not None and want != getattr(actual, field):
            differ(field, want, getattr(actual, field))
    if wanted.mode is not None and _octal(wanted.mode) != _octal(actual.mode):
        differ("mode", wanted.mode, actual.mode)
    return diffs


def describe_differences(diffs: list[dict[str, Any]]) -> str:
    """``capacity: wanted 6442450944, found 1073741824; format: ...`` for an error's detail."""
    return "; ".join(f"{d['field']}: wanted {d['wanted']}, found {d['actual']}" for d in diffs)


def _octal(mode: str | None) -> int | None:
    return None if mode is None else int(mode, 8)
