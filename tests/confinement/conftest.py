"""Fixtures of the confinement tests: a stack whose worker serves the real libvirtd with roots of
its own, a managed pool made through the API, a pool libvirt has outside every root, and what
the host looks like to prove afterwards that nothing was written, deleted or copied."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests

from tests.support import services
from tests.support.services import RunningStack

HV = "kvm"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Area:
    """A directory under /var/tmp holding the worker's roots and a place no root reaches."""

    base: Path

    @property
    def pool_root(self) -> Path:
        return self.base / "pools"

    @property
    def read_root(self) -> Path:
        return self.base / "read"

    @property
    def outside(self) -> Path:
        return self.base / "outside"


@pytest.fixture(scope="module")
def area() -> Iterator[Area]:
    # Under /var/tmp, as a real pool root would be reachable by qemu's user.
    area = Area(Path(tempfile.mkdtemp(prefix="orch-cf-", dir="/var/tmp")))
    area.base.chmod(0o755)
    for directory in (area.pool_root, area.read_root, area.outside):
        directory.mkdir(mode=0o755)
    try:
        yield area
    finally:
        shutil.rmtree(area.base, ignore_errors=True)


@pytest.fixture(scope="module")
def stack(
    qemu_uri: str, redis_server: str, tmp_path_factory: pytest.TempPathFactory, area: Area
) -> Iterator[RunningStack]:
    with services.test_stack(
        tmp_path_factory.mktemp("stack"),
        redis_server,
        {HV: qemu_uri},
        cpu_mode="qemu64,-svm",
        heartbeat_interval=0.5,
        heartbeat_ttl=20,
        pool_roots=[area.pool_root],
        read_roots=[area.read_root],
    ) as running:
        yield running


@pytest.fixture
def conn(qemu_uri: str) -> Iterator[libvirt.virConnect]:
    connection = libvirt.open(qemu_uri)
    yield connection
    connection.close()


@dataclass(frozen=True)
class Pool:
    name: str
    path: Path

    def files(self) -> list[str]:
        return sorted(os.listdir(self.path))


@pytest.fixture
def managed(stack: RunningStack, area: Area, conn: libvirt.virConnect) -> Iterator[Pool]:
    """A pool inside the pool root, made by a ``pool.ensure`` job."""
    pool = Pool(f"orch-cf-{uuid.uuid4().hex[:8]}", area.pool_root / uuid.uuid4().hex[:8])
    try:
        done = stack.run("pool.ensure", HV, name=pool.name, path=str(pool.path), autostart=False)
        assert done["state"] == "succeeded", done["error"]
        yield pool
    finally:
        remove_pool(conn, pool.name)
        shutil.rmtree(pool.path, ignore_errors=True)


@pytest.fixture
def unmanaged(area: Area, conn: libvirt.virConnect) -> Iterator[Pool]:
    """A pool the operator defined outside every root, holding another VM's disk."""
    pool = Pool(f"orch-cf-out-{uuid.uuid4().hex[:8]}", area.outside / uuid.uuid4().hex[:8])
    pool.path.mkdir(mode=0o755)
    (pool.path / "victim.img").write_bytes(b"\x5a" * MiB)
    conn.storagePoolCreateXML(pool_xml(pool.name, pool.path), 0)
    try:
        yield pool
    finally:
        remove_pool(conn, pool.name)
        shutil.rmtree(pool.path, ignore_errors=True)


def pool_xml(name: str, path: Path) -> str:
    root = ET.Element("pool", type="dir")
    ET.SubElement(root, "name").text = name
    ET.SubElement(ET.SubElement(root, "target"), "path").text = str(path)
    return ET.tostring(root, encoding="unicode")


def remove_pool(conn: libvirt.virConnect, name: str) -> None:
    """Remove the pool and the volumes libvirt lists in it (files the test made stay for
    the caller's rmtree)."""
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    persistent = pool.isPersistent()  # a transient pool is gone once stopped
    if pool.isActive():
        pool.destroy()
    if persistent:
        pool.undefine()


def refresh(conn: libvirt.virConnect, pool: Pool) -> None:
    conn.storagePoolLookupByName(pool.name).refresh(0)


def pools_at(conn: libvirt.virConnect, path: Path | str) -> list[str]:
    """Names of the pools (running or only defined) whose directory is ``path``."""
    found = []
    for pool in conn.listAllStoragePools():
        target = ET.fromstring(pool.XMLDesc(0)).findtext("target/path")
        if target and os.path.normpath(target) == os.path.normpath(str(path)):
            found.append(pool.name())
    return found


def pool_names() -> set[str]:
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", "pool-list", "--all", "--name"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.strip() for line in out.splitlines() if line.strip()}


def domain_names(conn: libvirt.virConnect) -> set[str]:
    return {domain.name() for domain in conn.listAllDomains()}


def cron_d() -> list[tuple[str, float]]:
    """/etc/cron.d as a listing with modification times: what a cron job written there changes."""
    entries = sorted(os.scandir("/etc/cron.d"), key=lambda entry: entry.name)
    return [(entry.name, entry.stat(follow_symlinks=False).st_mtime) for entry in entries]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def qemu_img_create(
    path: Path, size: str, backing: Path | None = None, backing_format: str = "raw"
) -> None:
    """A qcow2 image; its backing file need not exist (``-u``), as with one moved away."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        argv += ["-u", "-b", str(backing), "-F", backing_format]
    subprocess.run([*argv, str(path), size], check=True)


def post_job(stack: RunningStack, kind: str, **params: Any) -> requests.Response:
    body = {"kind": kind, "params": params, "hypervisor": HV}
    return requests.post(f"{stack.settings.resolved_api_url}/v1/jobs", json=body, timeout=30)


def job_count(stack: RunningStack) -> int:
    return len(stack.api.list_jobs({"limit": 500}))


def refused(stack: RunningStack, kind: str, status: int, **params: Any) -> dict[str, Any]:
    """The problem of a job the worker refused with ``status``, after it ran and failed."""
    done = stack.run(kind, HV, **params)
    assert done["state"] == "failed", done["result"]
    problem: dict[str, Any] = done["error"]
    assert problem["status"] == status, problem
    return problem


def fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem["errors"]]
