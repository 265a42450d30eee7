"""Confinement on this hypervisor: which pools are managed, and whether a path a job names
resolves where :mod:`orchestrator.confinement` allows, symlinks followed on this filesystem.

Paths are resolved only when the hypervisor's files are this machine's (a local URI); for a
remote or test-driver hypervisor the same rules apply to the paths as written. An image's format
and backing chain are probed with qemu-img, whatever the job says about them.
"""

from __future__ import annotations

import os
from typing import Any

import libvirt

from orchestrator.confinement import Confinement, shown
from orchestrator.errors import Forbidden, InvalidInput
from orchestrator.settings import Settings
from workers.storage.pools import is_local, pool_dirs, pool_layout
from workers.storage.qemu_img import image_header

# qemu itself refuses chains deeper than this; a loop in a crafted chain stops here too.
MAX_CHAIN_DEPTH = 64


class HostConfinement:
    """The rules of one job on one hypervisor; managed pools are read once per job."""

    def __init__(self, conn: libvirt.virConnect, settings: Settings) -> None:
        self.conn = conn
        self.rules = Confinement.from_settings(settings)
        self.local = is_local(conn)
        self._managed: dict[str, str] | None = None

    def resolve(self, path: str) -> str:
        return os.path.realpath(path) if self.local else os.path.normpath(path)

    @property
    def managed_dirs(self) -> dict[str, str]:
        """Managed pool name -> its directory, resolved."""
        if self._managed is None:
            resolved = {name: self.resolve(path) for name, path in pool_dirs(self.conn).items()}
            self._managed = {
                name: path for name, path in resolved.items() if self.rules.is_pool_dir(path)
            }
        return self._managed

    def check_pool_path(self, field: str, path: str) -> None:
        """A pool may be made or adopted at ``path``."""
        self.rules.check_pool_dir(field, path, self.resolve(path))

    def require_pool(self, pool: libvirt.virStoragePool, field: str) -> None:
        """Forbidden unless the job may change ``pool``'s volumes."""
        if pool.name() not in self.managed_dirs:
            raise self.rules.unmanaged_pool(field, pool.name(), pool_layout(pool).path)

    def require_target(self, pool: libvirt.virStoragePool, name: str, field: str) -> None:
        """Forbidden unless the job may make, change or delete the volume ``name`` of ``pool``:
        the pool is managed and the file, a symlink followed, stays in a managed pool."""
        self.require_pool(pool, field)
        directory = pool_layout(pool).path
        if directory:
            self.require_in_pools(field, os.path.join(directory, name))

    def require_in_pools(self, field: str, path: str) -> str:
        """``path`` resolved; Forbidden unless it lies in a managed pool's directory."""
        resolved = self.resolve(path)
        self.rules.check_in_pools(field, path, resolved, self.managed_dirs)
        return resolved

    def require_volume(self, volume: libvirt.virStorageVol, field: str) -> str:
        """The volume's file, resolved; Forbidden unless its pool is managed and the file (a
        symlink followed) lies in a managed pool."""
        self.require_pool(volume.storagePoolLookupByVolume(), field)
        return self.require_in_pools(field, volume.path())

    def is_managed_volume(self, volume: libvirt.virStorageVol) -> bool:
        try:
            self.require_volume(volume, "volume")
        except Forbidden:
            return False
        return True

    def check_read(self, field: str, path: str) -> None:
        """A domain may read ``path`` (kernel, initrd, password file)."""
        self.rules.check_read(field, path, self.resolve(path), self.managed_dirs.values())

    def check_console(self, field: str, path: str) -> None:
        """A domain may write its console to ``path``: allowed there, and not a disk."""
        resolved = self.resolve(path)
        self.rules.check_console(field, path, resolved)
        if self.local and os.path.lexists(resolved) and not os.path.isfile(resolved):
            raise InvalidInput.of(field, f"{shown(path, resolved)} is not a regular file")
        volume = self._volume_at(resolved)
        if volume is not None:
            pool = volume.storagePoolLookupByVolume().name()
            raise Forbidden.of(
                field,
                f"{shown(path, resolved)} is the volume {pool}/{volume.name()}; a console "
                "never writes over a volume",
                rule="console-roots",
            )

    def probe_image(self, field: str, path: str) -> str | None:
        """The image format of ``path`` as qemu-img probes it, after checking that every file
        of its backing chain (and any external data file) lies in a managed pool.

        None when the files are not this machine's (libvirt's format is all there is).
        """
        if not self.local:
            return None
        # One image at a time, never `qemu-img info --backing-chain`: that opens every file of
        # the chain (an nbd:// backing connects out, a FIFO blocks) before any can be checked.
        chain = self._walk_chain(field, path)
        for image in chain:
            name = str(image.get("filename", ""))
            data_file = image.get("format-specific", {}).get("data", {}).get("data-file")
            if data_file:
                data_path = os.path.join(os.path.dirname(name), data_file)
                self._check_chain_file(field, path, "the data file", data_path)
        return str(chain[0]["format"])

    def _walk_chain(self, field: str, path: str) -> list[dict[str, Any]]:
        """The chain read one image at a time, each backing file checked before qemu-img opens
        it, so a refusal names the first file at fault and nothing outside the pools is read."""
        chain: list[dict[str, Any]] = []
        current, fmt = path, None
        while len(chain) < MAX_CHAIN_DEPTH:
            if chain:
                self._check_chain_file(field, path, "the backing file", current)
            try:
                image = image_header(current, fmt)
            except RuntimeError as exc:
                raise InvalidInput.of(field, f"qemu-img cannot read {current}: {exc}") from None
            chain.append({**image, "filename": current})
            backing = image.get("full-backing-filename") or image.get("backing-filename")
            if not backing:
                return chain
            current, fmt = str(backing), image.get("backing-filename-format")
        raise InvalidInput.of(field, f"{path} has more than {MAX_CHAIN_DEPTH} backing files")

    def _check_chain_file(self, field: str, image: str, what: str, name: str) -> None:
        subject = f"{image} refers to {what} "
        if not name.startswith("/"):
            raise Forbidden.of(
                field,
                f"{subject}{name!r}, which is not a file path",
                rule="managed-pool",
                setting=self.rules.pool_roots.setting,
            )
        self.rules.check_in_pools(field, name, self.resolve(name), self.managed_dirs, subject)

    def _volume_at(self, path: str) -> libvirt.virStorageVol | None:
        try:
            return self.conn.storageVolLookupByPath(path)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_VOL:
                return None
            raise
