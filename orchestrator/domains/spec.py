"""What a user asks for when defining a domain: the validated, hypervisor-neutral spec.

Defaults that depend on the OS variant or the hypervisor (disk bus, NIC model, CPU, machine) stay
unset here; ``orchestrator.domains.domxml.fill_defaults`` resolves them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.domains.devices import (
    AbsolutePath,
    DiskSpec,
    GraphicsSpec,
    IsoSource,
    NetworkSpec,
    SerialSpec,
    SpecModel,
)
from orchestrator.domains.names import check_cpuset, check_identifier, check_object_name
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.errors import InvalidInput

BootSource = Literal["cdrom", "import", "kernel", "pxe"]
BootDevice = Literal["hd", "cdrom", "network", "fd"]
_SSH_KEY = re.compile(r"^(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+=*( .*)?$")


class CpuSpec(SpecModel):
    """The guest CPU; absent from a spec, the hypervisor's configured default applies."""

    mode: Literal["host-passthrough", "host-model", "custom"]
    model: Annotated[str, AfterValidator(lambda v: check_identifier(v, "model"))] | None = None
    disabled_features: tuple[
        Annotated[str, AfterValidator(lambda v: check_identifier(v, "feature"))], ...
    ] = ()

    @model_validator(mode="after")
    def _model_only_when_custom(self) -> CpuSpec:
        if self.mode == "custom" and not self.model:
            raise ValueError("cpu mode 'custom' needs model (as in qemu64)")
        if self.mode != "custom" and self.model:
            raise ValueError(f"cpu mode {self.mode!r} takes no model; use mode 'custom'")
        return self


class KernelBoot(SpecModel):
    """Direct kernel boot: files on the hypervisor."""

    kernel: AbsolutePath
    initrd: AbsolutePath | None = None
    cmdline: str | None = Field(None, max_length=4096)

    @field_validator("cmdline")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("cmdline must not contain control characters")
        return value


class CloudInitSpec(SpecModel):
    """NoCloud seed contents; the job builds the seed ISO and attaches it as a cdrom."""

    # Plain text, not a secret: it is configuration for the guest, kept in the job record like
    # every other parameter (and readable inside the guest from the seed ISO anyway).
    user_data: str | None = Field(
        None,
        max_length=262144,
        description="cloud-config or script, delivered to the guest as given and kept in the "
        "job record like every parameter: no plaintext passwords here; use "
        "ssh_authorized_keys, or hashed passwords (passwd: $6$...).",
    )
    meta_data: str | None = Field(None, max_length=65536)
    network_config: str | None = Field(None, max_length=65536)
    ssh_authorized_keys: tuple[str, ...] = Field((), max_length=64)

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _public_keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        for index, key in enumerate(keys):
            if not _SSH_KEY.match(key.strip()) or "\n" in key.strip():
                raise ValueError(
                    f"key {index} is not one OpenSSH public key line ('ssh-ed25519 AAAA... c')"
                )
        return tuple(key.strip() for key in keys)

    @model_validator(mode="after")
    def _keys_or_user_data(self) -> CloudInitSpec:
        if self.user_data is not None and self.ssh_authorized_keys:
            raise ValueError(
                "give ssh_authorized_keys or user_data, not both: with user_data, put the keys "
                "in it"
            )
        return self


def _check_os_variant(value: str | None) -> str | None:
    if value is not None:
        try:
            resolve_os_variant(value)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from None
    return value


class DomainSpec(SpecModel):
    """A domain to define, as ``POST /v1/jobs`` takes it or ``virt-install`` options give it."""

    name: Annotated[str, AfterValidator(lambda v: check_object_name(v, "name"))]
    uuid: UUID | None = None
    vcpus: int | None = Field(
        None, ge=1, le=512, description="Default: the OS variant's recommendation, else 1."
    )
    cpuset: Annotated[str, AfterValidator(check_cpuset)] | None = Field(
        None, description="Host CPUs the vCPUs may run on, libvirt syntax: '1-3,^2'."
    )
    memory_mib: int = Field(ge=16, le=16 * 1024 * 1024)
    cpu: CpuSpec | None = None
    disks: tuple[DiskSpec, ...] = Field((), max_length=32)
    cdrom: IsoSource | None = Field(None, description="Installation ISO.")
    boot_source: BootSource = Field(
        description="cdrom: install from the ISO; import: boot the existing disk; kernel: direct "
        "kernel boot; pxe: network install."
    )
    kernel: KernelBoot | None = None
    boot_order: tuple[BootDevice, ...] = Field((), max_length=4)
    networks: tuple[NetworkSpec, ...] = Field((NetworkSpec(),), max_length=16)
    graphics: GraphicsSpec = GraphicsSpec()
    serials: tuple[SerialSpec, ...] = Field((), max_length=4)
    os_variant: Annotated[str, AfterValidator(_check_os_variant)] | None = Field(
        None, description="Short id from GET /v1/os-variants; default 'generic'."
    )
    virt_type: Literal["kvm", "qemu"] | None = Field(None, description="Default: the host's.")
    autostart: bool = False
    start: bool = True
    reboot_after_install: bool = True
    cloud_init: CloudInitSpec | None = None

    @model_validator(mode="after")
    def _boot_source_has_what_it_needs(self) -> DomainSpec:
        if self.boot_source == "cdrom" and self.cdrom is None:
            raise ValueError("boot_source 'cdrom' needs cdrom (the installation ISO)")
        if (self.boot_source == "kernel") != (self.kernel is not None):
            raise ValueError("kernel is given exactly when boot_source is 'kernel'")
        if self.boot_source == "import" and not self.disks:
            raise ValueError("boot_source 'import' needs at least one disk to boot")
        if self.boot_source == "pxe" and not self.networks:
            raise ValueError("boot_source 'pxe' needs a network")
        if len(set(self.boot_order)) != len(self.boot_order):
            raise ValueError("boot_order must not name a device twice")
        return self

    @model_validator(mode="after")
    def _new_volumes_are_distinct(self) -> DomainSpec:
        named = [
            (d.source.pool, d.source.name)
            for d in self.disks
            if d.source.type == "new_volume" and d.source.name
        ]
        if len(set(named)) != len(named):
            raise ValueError("two new volumes have the same pool and name")
        return self


def parse_domain_spec(raw: Mapping[str, Any], field: str = "") -> DomainSpec:
    """Validate ``raw``; a bad value is a 422 whose ``errors`` name each field and rule."""
    # Imported here: importing orchestrator.kinds registers domain.define, built on this module.
    from orchestrator.kinds.registry import validation_errors

    try:
        return DomainSpec.model_validate(dict(raw))
    except ValidationError as exc:
        raise InvalidInput(
            "invalid domain spec", errors=validation_errors(exc, prefix=field)
        ) from None
