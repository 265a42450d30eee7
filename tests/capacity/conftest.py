"""Fixtures for the real-libvirtd capacity tests: a stack whose worker serves ``qemu:///system``
with the CPU mode left to ``auto``, and a throwaway directory for a pool, removed afterwards
with every domain the test names."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.local.bootsector import MARKER
from tests.support import services
from tests.support.libvirtd import remove_domain
from tests.support.services import RunningStack

QEMU_HV = "kvm-cap"
# Under /var/tmp, not pytest's private tmp: qemu runs as another user and must reach the files.
VM_ROOT = Path("/var/tmp")
# libvirtd answers a capacity read only after a destroy finishes (seconds while qemu exits):
# a slower liveness than the pipeline tests' keeps the worker alive meanwhile.
SLOW_LIVENESS: dict[str, Any] = {"heartbeat_interval": 0.5, "heartbeat_ttl": 20}


@pytest.fixture(scope="module")
def qemu_stack(
    qemu_uri: str, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    with services.test_stack(
        tmp_path_factory.mktemp("stack"),
        redis_server,
        {QEMU_HV: qemu_uri},
        pool_roots=[VM_ROOT],
        read_roots=[VM_ROOT],
        **SLOW_LIVENESS,
    ) as running:
        yield running


@dataclass
class PoolDir:
    """A directory for a pool named ``name`` (made by the test, through a job or libvirt), and
    the domains the test makes; all of it is removed afterwards."""

    conn: libvirt.virConnect
    name: str
    root: Path
    domains: list[str] = field(default_factory=list)

    @property
    def directory(self) -> Path:
        return self.root / "pool"

    def domain_name(self, label: str) -> str:
        name = f"orch-cap-{label}-{uuid.uuid4().hex[:6]}"
        self.domains.append(name)
        return name

    def serial_log(self, domain: str) -> Path:
        return self.root / f"{domain}.serial.log"

    def volumes(self) -> set[str]:
        pool = self.conn.storagePoolLookupByName(self.name)
        pool.refresh(0)
        return set(pool.listVolumes())


@pytest.fixture
def pool_dir(qemu_uri: str) -> Iterator[PoolDir]:
    root = Path(tempfile.mkdtemp(prefix="orch-cap-", dir=VM_ROOT))
    root.chmod(0o755)
    (root / "pool").mkdir(mode=0o755)
    conn = libvirt.open(qemu_uri)
    place = PoolDir(conn, f"orch-cap-{uuid.uuid4().hex[:8]}", root)
    try:
        yield place
    finally:
        try:
            for name in place.domains:
                remove_domain(conn, name)
            remove_pool(conn, place.name)
        finally:
            conn.close()
            shutil.rmtree(root, ignore_errors=True)


def remove_pool(conn: libvirt.virConnect, name: str) -> None:
    """Stop and forget the pool; its files stay (the caller owns the directory)."""
    try:
        pool = conn.storagePoolLookupByName(name)
        if pool.isActive():
            pool.destroy()
        if pool.isPersistent():
            pool.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_POOL:
            raise


def wait_for_marker(path: Path, timeout: float = 60) -> bytes:
    """What the guest wrote to its serial file, once the boot sector's marker is in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if MARKER in data:
            return data
        time.sleep(0.1)
    raise AssertionError(f"the guest never wrote {MARKER!r} to {path}")


def run_ok(stack: RunningStack, hypervisor: str, kind: str, **params: Any) -> dict[str, Any]:
    done = stack.run(kind, hypervisor, **params)
    assert done["state"] == "succeeded", done["error"]
    result: dict[str, Any] = done["result"]
    return result
