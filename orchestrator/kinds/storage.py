"""Job kinds for disks on a hypervisor: volumes (create, clone, resize, delete, upload, list)
and directory pools (ensure, list). Every kind is an "ensure" or a read, so safe to re-run.

A volume is named by ``pool`` + ``name`` or by ``path``; a path must lie directly in a pool's
target directory, which the worker checks against the hypervisor's pools. Sizes are read by
:func:`orchestrator.storage.sizes.parse_size` (``G`` = GiB as in qemu-img, ``GB`` = 10**9).

Confinement (:mod:`orchestrator.confinement`): a path in a system directory is refused here,
with 403, by the API and the worker alike; the worker also resolves symlinks and checks the
pool roots, which only it can.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from orchestrator.confinement import refuse_system_path
from orchestrator.kinds.registry import JobParams, job_kind
from orchestrator.storage.locators import VolumeLocator, parse_volume_locator
from orchestrator.storage.names import check_host_path, check_pool_name, check_volume_name
from orchestrator.storage.sizes import parse_size

MAX_VOLUMES_PER_JOB = 1000

VolumeName = Annotated[
    str,
    AfterValidator(check_volume_name),
    Field(
        description="File name in the pool: no '/', NUL or control characters, no leading "
        "'.', at most 255 bytes."
    ),
]
PoolName = Annotated[str, AfterValidator(check_pool_name), Field(description="Storage pool name.")]
HostPath = Annotated[
    str,
    AfterValidator(check_host_path),
    Field(description="Absolute, normalized path on the hypervisor (no '..', no NUL)."),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 512},
                {"type": "string", "examples": ["6G", "512M", "10GiB", "1.5T"]},
            ],
            "description": "Bytes, or a size with a unit: K, M, G, T, P and KiB..PiB are binary "
            "(G = GiB, as qemu-img reads it), KB..PB decimal. A multiple of 512 bytes.",
        }
    ),
]
VolumeRef = Annotated[
    str,
    AfterValidator(lambda text: str(parse_volume_locator(text))),
    Field(description="Another volume: 'pool/name' or an absolute path inside a pool."),
]
Format = Literal["qcow2", "raw"]
Owner = Annotated[int | None, Field(None, ge=0, le=2**32 - 2, description="Numeric uid.")]
Group = Annotated[int | None, Field(None, ge=0, le=2**32 - 2, description="Numeric gid.")]
Mode = Annotated[
    str | None,
    Field(None, pattern=r"^0?[0-7]{3}$", description="Octal file mode, e.g. '0640'."),
]
Sha256 = Annotated[
    str,
    BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value),
    Field(pattern=r"^[0-9a-f]{64}$", description="Expected SHA-256 of the content, 64 hex digits."),
]


def _not_in_system_directory(value: str | None, info: ValidationInfo) -> str | None:
    """Forbidden (not a validation error: the request is well formed, and refused) when the
    path, or the path form of a volume reference, lies in a system directory."""
    if value is not None and value.startswith("/"):
        refuse_system_path(f"params.{info.field_name}", value)
    return value


class VolumeTarget(JobParams):
    """The volume a job acts on: ``pool`` and ``name``, or ``path`` instead of both."""

    path: HostPath | None = Field(
        None, description="The volume's file; must lie directly in a pool's target directory."
    )
    pool: PoolName | None = Field(None, validate_default=True)
    name: VolumeName | None = Field(None, validate_default=True)

    _path_confined = field_validator("path")(_not_in_system_directory)

    @field_validator("pool", "name")
    @classmethod
    def _pool_and_name_or_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "path" not in info.data:  # path itself was invalid; its own error says so
            return value
        if info.data["path"] is not None and value is not None:
            raise ValueError("give either path, or pool and name; not both")
        if info.data["path"] is None and value is None:
            raise ValueError("required unless path is given")
        return value

    @property
    def target(self) -> VolumeLocator:
        return VolumeLocator(pool=self.pool, name=self.name, path=self.path)


class VolumeSpecFields(JobParams):
    """What a new volume is like: shared by ``volume.create`` and ``volume.create_many``."""

    format: Format = Field("qcow2", description="Image format of the new volume.")
    allocation: Literal["sparse", "full"] = Field(
        "sparse", description="'full' preallocates every byte (qcow2: falloc preallocation)."
    )
    backing: VolumeRef | None = Field(
        None, description="Make a qcow2 overlay on this volume; its format is detected."
    )
    capacity: Size | None = Field(
        None, validate_default=True, description="Virtual size; defaults to the backing's."
    )
    owner: Owner = None
    group: Group = None
    mode: Mode = None
    overcommit: bool = Field(
        False,
        description="Allow a sparse volume's capacity to exceed the pool's available space.",
    )

    _backing_confined = field_validator("backing")(_not_in_system_directory)

    @field_validator("backing")
    @classmethod
    def _backing_needs_sparse_qcow2(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("format") == "raw":
            raise ValueError("needs format qcow2: a raw volume cannot have a backing file")
        if value is not None and info.data.get("allocation") == "full":
            raise ValueError("cannot be combined with allocation 'full'")
        return value

    @field_validator("capacity")
    @classmethod
    def _capacity_or_backing(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is None and "backing" in info.data and info.data["backing"] is None:
            raise ValueError("required unless backing is given")
        return value


@job_kind(
    "volume.create",
    "Ensure a volume exists: qcow2 or raw, sparse or fully allocated, optionally a qcow2 "
    "overlay on a backing volume.",
    safe_to_rerun=True,
)
class VolumeCreateParams(VolumeSpecFields, VolumeTarget):
    inspect: bool = Field(
        True, description="Also report `qemu-img info` of the file (pools local to the worker)."
    )


def _unique_names(names: list[str]) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names must be unique; repeated: {', '.join(repeated)}")
    return names


@job_kind(
    "volume.create_many",
    "Ensure several volumes with one spec exist in a pool (say N linked clones of one base), "
    "created in parallel by the hypervisor's worker in one job.",
    safe_to_rerun=True,
)
class VolumeCreateManyParams(VolumeSpecFields):
    pool: PoolName
    names: Annotated[
        list[VolumeName],
        AfterValidator(_unique_names),
        Field(min_length=1, max_length=MAX_VOLUMES_PER_JOB, description="The volumes' names."),
    ]
    parallel: int = Field(
        4,
        ge=1,
        le=16,
        description="Volumes created at the same time (libvirtd serves 5 calls per connection "
        "at once by default).",
    )

    @field_validator("allocation")
    @classmethod
    def _sparse_only(cls, value: str) -> str:
        if value == "full":
            raise ValueError(
                "must be 'sparse' here; create fully preallocated volumes one per job with "
                "volume.create (each is written and published on its own)"
            )
        return value


@job_kind(
    "volume.clone",
    "Ensure a volume is a full copy of another, converting between raw and qcow2 when asked.",
    safe_to_rerun=True,
)
class VolumeCloneParams(VolumeTarget):
    source: VolumeRef = Field(
        description="The volume to copy: 'pool/name' or its path, in a managed pool."
    )
    format: Format | None = Field(None, description="Format of the copy; default the source's.")
    owner: Owner = None
    group: Group = None
    mode: Mode = None
    inspect: bool = True

    _source_confined = field_validator("source")(_not_in_system_directory)


@job_kind(
    "volume.resize",
    "Ensure a volume has the given capacity; grows only, unless allow_shrink is set.",
    safe_to_rerun=True,
)
class VolumeResizeParams(VolumeTarget):
    capacity: Size
    allow_shrink: bool = Field(
        False, description="Allow a smaller capacity; data beyond it is lost."
    )
    inspect: bool = True


@job_kind("volume.delete", "Ensure a volume does not exist.", safe_to_rerun=True)
class VolumeDeleteParams(VolumeTarget):
    pass


@job_kind(
    "volume.upload",
    "Ensure a volume holds the content of a file on the hypervisor, or of one sent through the "
    "API (PUT .../volumes/<name>/content), verified by SHA-256.",
    safe_to_rerun=True,
)
class VolumeUploadParams(VolumeTarget):
    content_from_api: bool = Field(
        False,
        description="The content comes through the API instead of source_path; set by "
        "PUT /v1/hypervisors/<name>/pools/<pool>/volumes/<volume>/content.",
    )
    source_path: HostPath | None = Field(
        None, validate_default=True, description="A regular file on the hypervisor to import."
    )
    content_length: int | None = Field(
        None,
        ge=0,
        description="Bytes the API was told it will send (Content-Length), so the worker can "
        "refuse content its spool cannot hold before reading any.",
    )
    sha256: Sha256
    format: Format | None = Field(
        None, description="Expected image format; detected from the content when omitted."
    )
    owner: Owner = None
    group: Group = None
    mode: Mode = None
    inspect: bool = True

    @field_validator("source_path")
    @classmethod
    def _one_source(cls, value: str | None, info: ValidationInfo) -> str | None:
        from_api = info.data.get("content_from_api", False)
        if from_api and value is not None:
            raise ValueError("give source_path or send the content through the API; not both")
        if not from_api and value is None:
            raise ValueError("required: a file on the hypervisor to import")
        return value


@job_kind("volume.list", "The volumes of a pool.", safe_to_rerun=True)
class VolumeListParams(JobParams):
    pool: PoolName


@job_kind(
    "pool.list", "Storage pools with capacity, allocation and available bytes.", safe_to_rerun=True
)
class PoolListParams(JobParams):
    pass


@job_kind(
    "pool.ensure",
    "Ensure a directory storage pool is defined at a path, running and (by default) autostarted.",
    safe_to_rerun=True,
)
class PoolEnsureParams(JobParams):
    name: PoolName
    path: HostPath = Field(
        description="The pool's directory; created when missing. It must resolve inside the "
        "worker's pool roots (ORCH_POOL_ROOTS and var_dir/pools), never a system directory."
    )
    autostart: bool = True

    _path_confined = field_validator("path")(_not_in_system_directory)


@job_kind(
    "pool.delete",
    "Ensure a storage pool is gone: stopped and undefined (its directory stays). A pool that "
    "holds volumes is a conflict unless delete_volumes is set.",
    safe_to_rerun=True,
)
class PoolDeleteParams(JobParams):
    name: PoolName
    delete_volumes: bool = Field(
        False,
        description="Delete the pool's volumes first; a volume that is a VM's disk still "
        "stops the job (409).",
    )
