"""``vm.provision``: one job from nothing to a running, reachable VM on one hypervisor.

Its parameters are a short form of a domain spec: :meth:`ProvisionParams.domain_spec` turns
them into the :class:`~orchestrator.domains.spec.DomainSpec` that ``domain.define`` would take,
so the disks, the seed, the XML and the "same spec again changes nothing" check are the ones
``domain.define`` has. :meth:`ProvisionParams.needs` and :meth:`ProvisionParams.placement_request`
say what the VM takes from a hypervisor, for placement and claims.

Secrets: like ``domain.define``, a job carries no plain password (parameters are stored in SQL
and queued through Redis); cloud-init takes ``password_hash`` (``openssl passwd -6``) and keys.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.confinement import refuse_system_path
from orchestrator.domains.cloudinit import meta_data, user_cloud_config
from orchestrator.domains.devices import (
    DiskSpec,
    JobGraphicsSpec,
    NetworkSpec,
    NewVolumeSource,
    SerialSpec,
    VolumeSource,
)
from orchestrator.domains.names import check_object_name
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.domains.spec import CloudInitSpec, DomainSpec
from orchestrator.errors import InvalidInput
from orchestrator.kinds import name_pattern
from orchestrator.kinds.registry import JobParams, job_kind
from orchestrator.kinds.storage import Size
from orchestrator.placement import PlacementRequest, Resources

_GIB = 1024**3
# An overlay with no size given takes its base image's size: the define grows a smaller overlay
# to its backing, so asking for the least (one MiB) means "as large as the base".
_OVERLAY_MIN_GIB = 1 / 1024
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
MAX_COUNT = 500
# ``network`` naming no network: a VM without a NIC, as on a hypervisor with no libvirt network
# (qemu:///session has none). Like ``graphics: none``.
NO_NETWORK = "none"
# crypt(3) strings: MD5, SHA-256, SHA-512, yescrypt, bcrypt.
_PASSWORD_HASH = re.compile(r"^\$(1|5|6|y|2[aby])\$[./A-Za-z0-9$=,]{8,512}$")


def _pool_volume(value: str) -> str:
    pool, slash, volume = value.partition("/")
    if not slash:
        raise ValueError("must be '<pool>/<volume>', as in 'default/ubuntu-24.04.qcow2'")
    check_object_name(pool, "pool")
    check_object_name(volume, "volume")
    return value


def check_hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("must be a hostname: dot-separated labels of letters, digits and -")
    return value


PoolVolume = Annotated[
    str,
    AfterValidator(_pool_volume),
    Field(description="A volume of a managed storage pool: '<pool>/<volume>'."),
]
PoolName = Annotated[str, AfterValidator(lambda value: check_object_name(value, "pool"))]


class ProvisionDisk(JobParams):
    """The boot disk: a qcow2 overlay on ``base_image`` (its pool holds the overlay), or an empty
    disk of ``size`` in ``pool``."""

    base_image: PoolVolume | None = None
    pool: PoolName | None = Field(None, description="Pool of an empty disk (no base_image).")
    size: Size | None = Field(
        None,
        description="Virtual size. Required for an empty disk; for an overlay, default (and "
        "at least) the base image's size.",
    )

    @model_validator(mode="after")
    def _overlay_or_empty(self) -> ProvisionDisk:
        if self.base_image is not None and self.pool is not None:
            raise ValueError("give base_image (the overlay goes in its pool) or pool, not both")
        if self.base_image is None and (self.pool is None or self.size is None):
            raise ValueError("an empty disk needs pool and size; or give base_image")
        return self

    @property
    def disk_pool(self) -> str:
        return self.base_image.partition("/")[0] if self.base_image else str(self.pool)


class ProvisionCloudInit(JobParams):
    """What cloud-init sets up in the guest on its first boot (a NoCloud seed ISO)."""

    user: str | None = Field(
        None,
        description="A user to add beside the image's default one, with passwordless sudo; "
        "without it the keys go to the image's default user.",
    )
    ssh_authorized_keys: tuple[str, ...] = Field((), max_length=64)
    hostname: str | None = Field(None, description="The guest's hostname; default its name.")
    password_hash: str | None = Field(
        None,
        description="The user's password as a crypt(3) hash (openssl passwd -6); needs user. "
        "It is kept in the job record and the seed ISO, so never a plain password.",
    )
    password: SecretStr | None = Field(
        None, description="Not accepted: job parameters are stored and queued. Use password_hash."
    )

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _public_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return CloudInitSpec(ssh_authorized_keys=keys).ssh_authorized_keys
        except ValidationError as exc:
            raise ValueError(exc.errors(include_url=False)[0]["msg"]) from None

    @field_validator("user")
    @classmethod
    def _user_name(cls, value: str | None) -> str | None:
        if value is not None and not _USER.match(value):
            raise ValueError("must be a Linux user name: [a-z_][a-z0-9_-]*, at most 32 characters")
        return value

    @field_validator("hostname")
    @classmethod
    def _host_name(cls, value: str | None) -> str | None:
        # A count request may give a pattern (``web-{index:02d}.lab``): it is checked, VM by
        # VM, where the count is known.
        if value is not None and not name_pattern.has_index(value):
            check_hostname(value)
        return value

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, value: str | None) -> str | None:
        if value is not None and not _PASSWORD_HASH.match(value):
            raise ValueError("must be a crypt(3) hash such as '$6$salt$...' (openssl passwd -6)")
        return value

    @field_validator("password")
    @classmethod
    def _no_plain_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raise ValueError(
                "a password may not be sent in job parameters (they are stored and queued); "
                "give password_hash (openssl passwd -6) or ssh_authorized_keys"
            )
        return value

    @model_validator(mode="after")
    def _hash_needs_user(self) -> ProvisionCloudInit:
        if self.password_hash is not None and self.user is None:
            raise ValueError("password_hash needs user: the image's default user is not known")
        return self

    def seed(self, domain: str) -> CloudInitSpec:
        """The seed as ``domain.define`` takes it; the keys are checked there."""
        meta = meta_data(domain, self.hostname) if self.hostname else None
        if self.user is None:
            return CloudInitSpec(ssh_authorized_keys=self.ssh_authorized_keys, meta_data=meta)
        config = user_cloud_config(self.user, self.ssh_authorized_keys, self.password_hash)
        return CloudInitSpec(user_data=config, meta_data=meta or meta_data(domain, domain))


WaitFor = Literal["running", "address", "ssh"]


@job_kind(
    "vm.provision",
    "Ensure a VM runs as asked: its disk (an overlay on a base image, or an empty disk and an "
    "ISO), cloud-init seed, definition, start, then its address as libvirt reports it (DHCP "
    "lease, guest agent, ARP), waiting for wait_for. A failure removes what the job made.",
    safe_to_rerun=True,
)
class ProvisionParams(JobParams):
    # Declared before ``name``: the name's check depends on it.
    count: int | None = Field(
        None,
        ge=1,
        le=MAX_COUNT,
        description="Make this many VMs like this one: one parent job, whose children are "
        "placed one by one (all or none) and named by the name pattern.",
    )
    name: str = Field(
        description="Domain name: 1-64 of letters, digits, _ . + -; not starting with - or .; "
        "with count, a pattern whose {index} runs from 1 to count, as in 'web-{index:02d}'."
    )
    vcpus: int = Field(1, ge=1, le=512)
    memory_mib: int = Field(ge=16, le=16 * 1024 * 1024)
    disk: ProvisionDisk
    cdrom: PoolVolume | None = Field(
        None, description="An installer ISO in a pool; with an empty disk the VM boots it."
    )
    network: str = Field(
        "default",
        description="The libvirt network of the VM's one NIC, or none for a VM without a NIC "
        "(for a hypervisor with no libvirt network, such as qemu:///session).",
    )
    graphics: Literal["vnc", "none"] = Field("vnc", description="A VNC display, or none.")
    os_variant: str | None = Field(
        None, description="Short id from GET /v1/os-variants; default 'generic'."
    )
    cloud_init: ProvisionCloudInit | None = None
    serials: tuple[SerialSpec, ...] = Field(
        (), max_length=4, description="Serial ports, as domain.define takes them."
    )
    wait_for: WaitFor = Field(
        "running",
        description="running: done once started; address: once libvirt reports an address; "
        "ssh: once port 22 of that address accepts a TCP connection.",
    )
    wait_timeout: float = Field(
        300.0, gt=0, le=1800, description="Seconds to wait for wait_for after the start."
    )

    @field_validator("name")
    @classmethod
    def _name_or_pattern(cls, value: str, info: ValidationInfo) -> str:
        count = info.data.get("count")
        if count is None:
            return check_object_name(value, "name")
        name_pattern.expand(value, count, check_object_name)
        return value

    @field_validator("network")
    @classmethod
    def _network_name(cls, value: str) -> str:
        return check_object_name(value, "network")

    @field_validator("os_variant")
    @classmethod
    def _known_variant(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                resolve_os_variant(value)
            except InvalidInput as exc:
                raise ValueError(exc.detail) from None
        return value

    @model_validator(mode="after")
    def _no_system_directory(self) -> ProvisionParams:
        # Forbidden propagates as itself (pydantic collects only ValueError): a 403, not a 422.
        for index, serial in enumerate(self.serials):
            if serial.path is not None:
                refuse_system_path(f"params.serials.{index}.path", serial.path)
        return self

    @model_validator(mode="after")
    def _address_needs_a_nic(self) -> ProvisionParams:
        if self.network != NO_NETWORK:
            return self
        if self.wait_for != "running":
            raise ValueError(
                f"wait_for {self.wait_for} needs a NIC: a VM on network none has no address"
            )
        if self.disk.base_image is None and self.cdrom is None:
            raise ValueError(
                "an empty disk without cdrom boots from the network, and network none has no "
                "NIC: give cdrom, base_image or a network"
            )
        return self

    @model_validator(mode="after")
    def _patterns_with_count(self) -> ProvisionParams:
        """With count, whatever must differ from VM to VM holds {index}; without, nothing does."""
        hostname = self.cloud_init.hostname if self.cloud_init else None
        if self.count is not None:
            if hostname is not None and name_pattern.has_index(hostname):
                try:
                    name_pattern.expand(hostname, self.count, check_hostname)
                except ValueError as exc:
                    raise ValueError(f"cloud_init.hostname {exc}") from None
            for index, serial in enumerate(self.serials):
                if serial.path is not None and not name_pattern.has_index(serial.path):
                    raise ValueError(
                        f"serials.{index}.path: with count, a file serial's path must hold "
                        "{index} so that each VM writes its own"
                    )
        elif hostname is not None and name_pattern.has_index(hostname):
            raise ValueError("cloud_init.hostname holds {index}, which needs count")
        return self

    def members(self) -> list[ProvisionParams]:
        """The VMs a count request makes, each a plain ``vm.provision`` (no count), in index
        order; a request without count is its own only member."""
        if self.count is None:
            return [self]
        return [self._member(index) for index in range(1, self.count + 1)]

    def _member(self, index: int) -> ProvisionParams:
        def fill(text: str) -> str:
            return text.format(index=index) if name_pattern.has_index(text) else text

        raw = self.model_dump(mode="json", exclude_none=True)
        raw.pop("count")
        raw["name"] = fill(self.name)
        if "hostname" in raw.get("cloud_init", {}):
            raw["cloud_init"]["hostname"] = fill(raw["cloud_init"]["hostname"])
        for serial in raw.get("serials", ()):
            if "path" in serial:
                serial["path"] = fill(serial["path"])
        # Validated again as the worker will: each member's paths are checked as themselves.
        return ProvisionParams.model_validate(raw)

    def domain_spec(self) -> DomainSpec:
        """The domain this job ensures, as ``domain.define`` would take it."""
        disk = self.disk
        if disk.base_image is not None:
            _pool, _, base = disk.base_image.partition("/")
            boot = "import"
        else:
            base, boot = None, "cdrom" if self.cdrom else "pxe"
        size_gib = disk.size / _GIB if disk.size is not None else _OVERLAY_MIN_GIB
        source = NewVolumeSource(
            type="new_volume", pool=disk.disk_pool, size_gib=size_gib, backing_volume=base
        )
        cdrom = None
        if self.cdrom is not None:
            pool, _, volume = self.cdrom.partition("/")
            cdrom = VolumeSource(type="volume", pool=pool, volume=volume)
        return DomainSpec(
            name=self.name,
            vcpus=self.vcpus,
            memory_mib=self.memory_mib,
            disks=(DiskSpec(source=source),),
            cdrom=cdrom,
            boot_source=boot,
            networks=() if self.network == NO_NETWORK else (NetworkSpec(source=self.network),),
            graphics=JobGraphicsSpec(type=self.graphics),
            serials=self.serials,
            os_variant=self.os_variant,
            cloud_init=self.cloud_init.seed(self.name) if self.cloud_init else None,
        )

    def needs(self) -> Resources:
        """What the VM takes from its hypervisor: vCPUs, memory, and disk bytes per pool (the
        disk's virtual size; 0 for an overlay without size, whose base image's size only the
        hypervisor knows)."""
        size = self.disk.size or 0
        return Resources(self.vcpus, self.memory_mib, {self.disk.disk_pool: size})

    def placement_request(self) -> PlacementRequest:
        """The VM as placement weighs it: its needs, the pool its disk goes in and, for an
        overlay, the base image that pool must hold."""
        needs = self.needs()
        base = self.disk.base_image.partition("/")[2] if self.disk.base_image else None
        return PlacementRequest(
            vcpus=needs.vcpus,
            memory_mib=needs.memory_mib,
            disk_bytes=needs.disk_bytes,
            pool=self.disk.disk_pool,
            base_image=base,
        )


# How the fields of the domain spec a provision makes are named in its own parameters.
_SPEC_FIELDS = (
    ("params.networks.0.source", "params.network"),
    ("params.networks.0", "params.network"),
    ("params.disks.0", "params.disk"),
    ("params.disks", "params.disk"),
)


def provision_field(spec_field: str) -> str:
    """The ``vm.provision`` parameter behind a field of its domain spec: an error about
    ``params.networks.0.source`` names ``params.network``, the one the request has."""
    for spec_prefix, own in _SPEC_FIELDS:
        if spec_field == spec_prefix or spec_field.startswith(spec_prefix + "."):
            return own + spec_field[len(spec_prefix) :]
    return spec_field
