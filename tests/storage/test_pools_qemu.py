"""Pool jobs and concurrent volume jobs on the real libvirtd."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import libvirt
import pytest

from tests.storage.conftest import DirPool, WorkerJobs

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def pool_name(qemu_conn: libvirt.virConnect) -> Iterator[str]:
    """A unique pool name; whatever the test defines under it is removed afterwards."""
    name = f"test-ensure-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        pool = qemu_conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    if pool.isActive():
        pool.destroy()
    pool.undefine()


def test_pool_ensure_builds_starts_and_converges(
    qemu_jobs: WorkerJobs, pool_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "new-pool"
    first = qemu_jobs.run("pool.ensure", {"name": pool_name, "path": str(path)})
    assert first["actions"] == ["defined", "built", "started", "autostart on"]
    assert path.is_dir()
    assert (first["state"], first["autostart"], first["type"]) == ("running", True, "dir")
    again = qemu_jobs.run("pool.ensure", {"name": pool_name, "path": str(path)})
    assert (again["changed"], again["actions"]) == (False, [])
    assert f"storage pool {pool_name} already exists as asked" in qemu_jobs.messages()
    other = {"name": pool_name, "path": str(tmp_path / "other")}
    qemu_jobs.fail("pool.ensure", other, "conflict", "path: wanted")
    assert not (tmp_path / "other").exists()
    listed = {pool["name"]: pool for pool in qemu_jobs.run("pool.list", {})["pools"]}
    assert listed[pool_name]["path"] == str(path)
    assert listed[pool_name]["capacity"] >= listed[pool_name]["available"] > 0


def test_pool_ensure_restarts_a_stopped_pool(
    qemu_jobs: WorkerJobs, qemu_conn: libvirt.virConnect, pool_name: str, tmp_path: Path
) -> None:
    params = {"name": pool_name, "path": str(tmp_path), "autostart": False}
    qemu_jobs.run("pool.ensure", params)
    qemu_conn.storagePoolLookupByName(pool_name).destroy()
    assert qemu_jobs.run("pool.ensure", params)["actions"] == ["started"]


def test_a_failed_pool_ensure_removes_its_definition(
    qemu_jobs: WorkerJobs, qemu_conn: libvirt.virConnect, pool_name: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    params = {"name": pool_name, "path": str(blocker)}
    qemu_jobs.fail("pool.ensure", params, "job-failed", "could not set up storage pool")
    assert pool_name not in qemu_conn.listStoragePools() + qemu_conn.listDefinedStoragePools()
    assert f"removed pool definition {pool_name} after the failure" in qemu_jobs.messages()


def test_many_overlays_and_full_volumes_at_once(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    qemu_jobs.run("volume.create", {"pool": dir_pool.name, "name": "base.qcow2", "capacity": "1G"})

    def make(index: int) -> bool:
        if index % 10 == 0:  # these publish through a partial volume and refresh the pool
            params = {
                "name": f"full{index}.img",
                "capacity": "4M",
                "format": "raw",
                "allocation": "full",
            }
        else:
            params = {"name": f"vm{index}.qcow2", "backing": f"{dir_pool.name}/base.qcow2"}
        return bool(qemu_jobs.run("volume.create", {"pool": dir_pool.name, **params})["changed"])

    with ThreadPoolExecutor(8) as executor:
        assert all(executor.map(make, range(40)))
    files = os.listdir(dir_pool.path)
    assert len(files) == 41 and not [name for name in files if name.startswith(".")]
    listed = qemu_jobs.run("volume.list", {"pool": dir_pool.name})["volumes"]
    assert len(listed) == 41
