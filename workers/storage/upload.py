"""Import a file on the hypervisor into a volume: check it is a self-contained image, stream it
through libvirt (virStorageVol.upload), and hash it on the way so only verified content stays."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt

from orchestrator.confinement import refuse_system_path
from orchestrator.errors import Conflict, InvalidInput, JobFailed
from orchestrator.storage.volume_xml import VolumeDefinition, render_volume_xml
from workers.storage.qemu_img import image_info
from workers.storage.volumes import create_volume, delete_volume

CHUNK = 1024 * 1024


class ChecksumMismatch(Exception):
    """Raised when the streamed content's SHA-256 is not the expected one."""

    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


def regular_file_size(path: str) -> int:
    """The size of ``path``; OSError when missing, ValueError when not a regular file."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("is not a regular file")
    return info.st_size


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def upload_file(
    conn: libvirt.virConnect, volume: libvirt.virStorageVol, path: str, size: int, sha256: str
) -> None:
    """Write ``size`` bytes of ``path`` into ``volume``; commit only when the SHA-256 matches.

    The hash is taken over exactly the bytes sent, so a file that changes while it is read is
    caught too; on a mismatch the stream is aborted and ChecksumMismatch raised.
    """
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, size, 0)
        digest = _send_file(stream, path, size)
    except BaseException:
        _abort(stream)
        raise
    if digest != sha256:
        _abort(stream)
        raise ChecksumMismatch(digest)
    try:
        stream.finish()
    except libvirt.libvirtError as exc:
        raise JobFailed(f"libvirt did not accept the upload: {exc}") from None


def _send_file(stream: libvirt.virStream, path: str, size: int) -> str:
    digest = hashlib.sha256()
    left = size
    with open(path, "rb") as handle:
        while left and (chunk := handle.read(min(CHUNK, left))):
            digest.update(chunk)
            left -= len(chunk)
            while chunk:
                chunk = chunk[stream.send(chunk) :]
    if left:
        raise JobFailed(f"{path} shrank while it was read ({left} bytes missing)")
    return digest.hexdigest()


def _abort(stream: libvirt.virStream) -> None:
    # The stream may already be closed by the error that got us here.
    with contextlib.suppress(libvirt.libvirtError):
        stream.abort()


@dataclass(frozen=True)
class UploadSource:
    """A file checked for import: its size, image format and virtual size."""

    size: int
    format: str
    capacity: int


def check_source_allowed(path: str, allowed: list[Path]) -> str:
    """``path`` with symlinks resolved; InvalidInput unless it lies inside one of ``allowed``,
    Forbidden when it is in a system directory whatever ``allowed`` says.

    Without this, anyone who may submit jobs could import any file of the hypervisor (its
    /etc/shadow, another VM's disk) into a volume and attach it to a VM of theirs.
    """
    real = Path(os.path.realpath(path))
    _refuse_outside(path, str(real), allowed)
    return str(real)


def _refuse_outside(path: str, real: str, allowed: list[Path]) -> None:
    refuse_system_path("params.source_path", path, real)
    if not any(Path(real).is_relative_to(directory) for directory in allowed):
        listed = ", ".join(str(directory) for directory in allowed)
        raise InvalidInput.of(
            "params.source_path",
            f"{path} is outside the directories uploads may come from ({listed}); the "
            "worker's ORCH_UPLOAD_SOURCE_DIRS lists them",
        )


@contextlib.contextmanager
def opened_source(path: str, allowed: list[Path]) -> Iterator[UploadFile]:
    """The source file held open from its check to the end of the import, read through that
    descriptor only. Checking a path and then reading it would let whoever may write in an
    allowed directory swap a directory on the way for a symlink to /etc in between; the file
    the descriptor holds is where the kernel says it is, and that is what is checked."""
    real = check_source_allowed(path, allowed)
    try:
        # No blocking on a FIFO, no following a link swapped in as the last component.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput.of("params.source_path", f"cannot read {path}: {exc.strerror}") from None
    try:
        held = f"/proc/{os.getpid()}/fd/{fd}"  # qemu-img, run as the same user, opens it too
        _refuse_outside(path, os.readlink(held), allowed)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput.of("params.source_path", f"{path} is not a regular file")
        yield UploadFile(held, real, "params.source_path")
    finally:
        os.close(fd)


@dataclass(frozen=True)
class UploadFile:
    """The file to import, and how errors name it: a source_path, or content sent to the API
    (spooled to a path of the worker's that would mean nothing to the client)."""

    path: str
    label: str
    field: str

    @classmethod
    def sent_content(cls, spooled: str) -> UploadFile:
        return cls(spooled, "the content sent", "content")


def prepare_upload(source: UploadFile, expected_format: str | None) -> UploadSource:
    """Check that the file is a non-empty, self-contained qcow2 or raw image; InvalidInput else."""
    path, label, field = source.path, source.label, source.field
    try:
        size = regular_file_size(path)
    except OSError as exc:
        raise InvalidInput.of(field, f"cannot read {label}: {exc.strerror}") from None
    except ValueError as exc:
        raise InvalidInput.of(field, f"{label} {exc}") from None
    if size == 0:
        raise InvalidInput.of(field, f"{label} is empty")
    try:
        info = image_info(path)
    except RuntimeError as exc:
        raise InvalidInput.of(field, f"qemu-img cannot read {label}: {exc}") from None
    detected = info["format"]
    if detected not in ("qcow2", "raw"):
        raise InvalidInput.of(field, f"{label} holds a {detected} image; use qcow2 or raw")
    if expected_format and expected_format != detected:
        raise InvalidInput.of(
            "params.format", f"{label} holds a {detected} image, not {expected_format}"
        )
    # An image that points at other files would give whoever made it a path into the host.
    for reference in ("backing_file", "data_file"):
        if info[reference]:
            raise InvalidInput.of(
                field,
                f"{label} refers to another file ({info[reference]}); upload a self-contained "
                "image",
            )
    return UploadSource(size=size, format=detected, capacity=int(info["virtual_size"]))


def write_upload(
    conn: libvirt.virConnect,
    pool: libvirt.virStoragePool,
    definition: VolumeDefinition,
    source: UploadFile,
    sha256: str,
) -> libvirt.virStorageVol:
    """A new volume holding the file's content; on any failure the volume is removed."""
    volume = create_volume(pool, render_volume_xml(definition))
    try:
        upload_file(conn, volume, source.path, definition.capacity, sha256)
    except ChecksumMismatch as exc:
        delete_volume(volume)
        raise InvalidInput.of(
            "params.sha256", f"{source.label} has sha256 {exc.actual}, not the expected {sha256}"
        ) from None
    except BaseException:
        delete_volume(volume)
        raise
    return volume


def upload_existing_matches(
    volume: libvirt.virStorageVol, directory: str | None, sha256: str
) -> None:
    """Conflict unless the existing volume's content has the expected SHA-256."""
    label = f"{volume.storagePoolLookupByVolume().name()}/{volume.name()}"
    if directory is None:
        raise Conflict(f"volume {label} exists and its content cannot be checked from this worker")
    actual = file_sha256(volume.path())
    if actual != sha256:
        raise Conflict(
            f"volume {label} already exists with other content (sha256 {actual})",
            differences=[{"field": "sha256", "wanted": sha256, "actual": actual}],
        )
