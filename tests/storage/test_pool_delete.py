"""pool.delete: stop and undefine a pool, as an ensure; its volumes only when asked."""

from __future__ import annotations

import re
from pathlib import Path

import libvirt
import pytest

from tests.storage.conftest import WorkerJobs

POOL = "default-pool"


def test_an_empty_pool_is_removed_once(test_jobs: WorkerJobs) -> None:
    result = test_jobs.run("pool.delete", {"name": POOL})
    assert (result["changed"], result["deleted_volumes"]) == (True, [])
    assert test_jobs.run("pool.list", {})["pools"] == []
    again = test_jobs.run("pool.delete", {"name": POOL})
    assert again["changed"] is False
    assert test_jobs.messages() == [
        test_jobs.running_message(),
        f"storage pool {POOL} does not exist; nothing to delete",
        "succeeded",
    ]


def test_a_pool_with_volumes_stays_unless_they_may_go_too(test_jobs: WorkerJobs) -> None:
    for name in ("a.qcow2", "b.qcow2"):
        test_jobs.run("volume.create", {"pool": POOL, "name": name, "capacity": "1G"})
    match = re.escape("holds 2 volumes (a.qcow2, b.qcow2); set delete_volumes")
    test_jobs.fail("pool.delete", {"name": POOL}, "conflict", match)
    assert [p["name"] for p in test_jobs.run("pool.list", {})["pools"]] == [POOL]

    result = test_jobs.run("pool.delete", {"name": POOL, "delete_volumes": True})

    assert result["deleted_volumes"] == ["a.qcow2", "b.qcow2"]
    assert test_jobs.run("pool.list", {})["pools"] == []


@pytest.mark.libvirtd
def test_a_real_pool_is_undefined_and_its_directory_stays(
    qemu_jobs: WorkerJobs, qemu_conn: libvirt.virConnect, tmp_path: Path
) -> None:
    name = f"test-delete-{tmp_path.name[-12:]}"
    directory = tmp_path / "pool"
    try:
        qemu_jobs.run("pool.ensure", {"name": name, "path": str(directory), "autostart": False})
        qemu_jobs.run("volume.create", {"pool": name, "name": "v.qcow2", "capacity": "16M"})

        result = qemu_jobs.run("pool.delete", {"name": name, "delete_volumes": True})

        assert result["path"] == str(directory)
        assert name not in qemu_conn.listStoragePools() + qemu_conn.listDefinedStoragePools()
        assert directory.is_dir() and not any(directory.iterdir())
    finally:
        if name in qemu_conn.listStoragePools() + qemu_conn.listDefinedStoragePools():
            leftover = qemu_conn.storagePoolLookupByName(name)
            if leftover.isActive():
                leftover.destroy()
            leftover.undefine()
