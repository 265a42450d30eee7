"""How a request names a volume: ``pool/name`` or an absolute path, and mapping paths to pools.

A path names a volume only when it lies directly in a pool's target directory (rule 6 of the
design: a disk path lives inside a storage pool); mapping it needs the pools' directories, which
only the hypervisor knows, so the worker calls :func:`volume_in_pool_dirs` with them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.storage.names import check_host_path, check_pool_name, check_volume_name


@dataclass(frozen=True)
class VolumeLocator:
    """A volume named by pool and name, or by path (exactly one of the two forms)."""

    pool: str | None = None
    name: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        return self.path or f"{self.pool}/{self.name}"


def parse_volume_locator(text: str) -> VolumeLocator:
    """``pool/name`` or ``/absolute/path``; ``ValueError`` says which rule ``text`` breaks."""
    if text.startswith("/"):
        return VolumeLocator(path=check_host_path(text))
    pool, slash, name = text.partition("/")
    if not slash:
        raise ValueError("must be 'pool/name' or an absolute path")
    try:
        check_pool_name(pool)
    except ValueError as exc:
        raise ValueError(f"pool part {pool!r} {exc}") from None
    try:
        check_volume_name(name)
    except ValueError as exc:
        raise ValueError(f"name part {name!r} {exc}") from None
    return VolumeLocator(pool=pool, name=name)


def volume_in_pool_dirs(path: str, pool_dirs: Mapping[str, str]) -> tuple[str, str] | None:
    """(pool, name) when ``path`` is a file directly inside one of ``pool_dirs`` (pool -> dir)."""
    directory, name = os.path.split(path)
    for pool, pool_dir in sorted(pool_dirs.items()):
        if os.path.normpath(pool_dir) == directory:
            return pool, name
    return None
