"""The device parts of a domain spec: disks and their sources, NICs, graphics, serial ports."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from orchestrator.domains.names import (
    check_absolute_path,
    check_mac,
    check_object_name,
)


class SpecModel(BaseModel):
    """Base of every spec part: unknown fields are an error, values never change after checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _named(what: str) -> AfterValidator:
    return AfterValidator(lambda v: check_object_name(v, what))


PoolName = Annotated[str, _named("pool")]
VolumeName = Annotated[str, _named("volume")]
AbsolutePath = Annotated[str, AfterValidator(check_absolute_path)]
MacAddress = Annotated[str, AfterValidator(check_mac)]

DiskFormat = Literal["raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc"]
DiskBus = Literal["virtio", "sata", "scsi", "ide", "usb"]
DiskCache = Literal["default", "none", "writethrough", "writeback", "directsync", "unsafe"]
NicModel = Literal["virtio", "e1000", "e1000e", "rtl8139", "ne2k_pci", "pcnet"]


class VolumeSource(SpecModel):
    """An existing volume of a libvirt storage pool."""

    type: Literal["volume"]
    pool: PoolName
    volume: VolumeName


class NewVolumeSource(SpecModel):
    """A volume the job creates in a pool; ``backing_volume`` (same pool) makes it an overlay."""

    type: Literal["new_volume"]
    pool: PoolName
    name: VolumeName | None = Field(
        None, description="Volume name; default '<domain>.<format>' as virt-install names it."
    )
    size_gib: float = Field(gt=0, le=65536, description="Capacity in GiB.")
    backing_volume: VolumeName | None = None


class PathSource(SpecModel):
    """A file on the hypervisor (inside a storage pool's directory); created when ``size_gib``
    is given and the file does not exist, as virt-install does."""

    type: Literal["path"]
    path: AbsolutePath
    size_gib: float | None = Field(None, gt=0, le=65536)


DiskSource = Annotated[VolumeSource | NewVolumeSource | PathSource, Field(discriminator="type")]
IsoSource = Annotated[VolumeSource | PathSource, Field(discriminator="type")]


class DiskSpec(SpecModel):
    source: DiskSource
    device: Literal["disk", "cdrom"] = "disk"
    bus: DiskBus | None = Field(None, description="Default from the OS variant (virtio if able).")
    format: DiskFormat | None = Field(
        None, description="Image format; default qcow2 for new volumes, else the probed format."
    )
    cache: DiskCache | None = None
    readonly: bool = False

    @model_validator(mode="after")
    def _cdrom_is_not_created(self) -> DiskSpec:
        if self.device == "cdrom" and self.source.type == "new_volume":
            raise ValueError("a cdrom cannot be a new volume; give an existing volume or path")
        if self.device == "cdrom" and isinstance(self.source, PathSource) and self.source.size_gib:
            raise ValueError("a cdrom takes no size_gib")
        return self


class NetworkSpec(SpecModel):
    type: Literal["network", "bridge"] = "network"
    source: str = Field("default", description="libvirt network name, or host bridge name.")
    model: NicModel | None = Field(None, description="Default from the OS variant.")
    mac: MacAddress | None = None

    @model_validator(mode="after")
    def _source_is_a_name(self) -> NetworkSpec:
        check_object_name(self.source, "source")
        if self.type == "bridge" and len(self.source) > 15:
            raise ValueError("a bridge name is at most 15 characters (a Linux interface name)")
        return self


def check_graphics_password(display: str, secret: str) -> None:
    """ValueError when ``secret`` is not a usable password for a ``display`` (vnc/spice)."""
    if not secret or any(ord(c) < 32 or ord(c) == 127 for c in secret):
        raise ValueError("password must be non-empty without control characters")
    if display == "vnc" and len(secret) > 8:
        # VNC authentication uses only the first 8 characters; refuse, don't truncate.
        raise ValueError("a VNC password is at most 8 characters")


class GraphicsSpec(SpecModel):
    """The display. Its password is a secret: a job carries only ``password_file``, a path the
    worker reads when it defines the domain; ``password`` serves local rendering only."""

    type: Literal["vnc", "spice", "none"] = "vnc"
    listen: IPv4Address | IPv6Address | None = Field(
        None, description="Address to listen on; default libvirt's (127.0.0.1)."
    )
    port: int | None = Field(None, ge=5900, le=65535, description="None: autoport.")
    password: SecretStr | None = Field(
        None,
        description="Not accepted in jobs (secrets may not travel through the job queue); "
        "use password_file.",
    )
    password_file: AbsolutePath | None = Field(
        None,
        description="Absolute path of a file on the hypervisor holding the display password "
        "(one trailing newline is ignored; VNC: at most 8 characters). The worker reads it "
        "when it defines the domain; the password itself is never stored or reported.",
    )

    @model_validator(mode="after")
    def _settings_need_a_display(self) -> GraphicsSpec:
        if self.type == "none" and (
            self.listen or self.port or self.password or self.password_file
        ):
            raise ValueError("graphics type 'none' takes no listen, port or password")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.password is not None:
            check_graphics_password(self.type, self.password.get_secret_value())
        return self


class JobGraphicsSpec(GraphicsSpec):
    """The display as a job takes it: job parameters are stored and queued, so no password."""

    @field_validator("password")
    @classmethod
    def _no_secret_in_a_job(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raise ValueError(
                "a password may not be sent in job parameters (they are stored and queued); "
                "put it in a file on the hypervisor and give its path as password_file"
            )
        return value


class SerialSpec(SpecModel):
    type: Literal["pty", "file"] = "pty"
    path: AbsolutePath | None = None

    @model_validator(mode="after")
    def _file_needs_path(self) -> SerialSpec:
        if self.type == "file" and not self.path:
            raise ValueError("a serial port of type 'file' needs path")
        if self.type == "pty" and self.path:
            raise ValueError("a serial port of type 'pty' takes no path")
        return self
