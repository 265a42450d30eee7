"""Volume and pool jobs on the libvirt test driver: ensure semantics, conflicts, lookups, lists.

The test driver keeps volumes in memory (pool ``default-pool`` at /default-pool, 100 GiB), so
these prove the job-level behaviour; the files themselves are checked on the real libvirtd.
"""

from __future__ import annotations

import pytest

from orchestrator.errors import Conflict, InvalidInput, NotFound
from tests.storage.conftest import JobHarness

GiB = 1024**3
POOL = "default-pool"


def create(jobs: JobHarness, name: str, **params: object) -> dict[str, object]:
    return jobs.run("volume.create", {"pool": POOL, "name": name, **params})


def test_create_reports_the_volume_and_changed(test_jobs: JobHarness) -> None:
    result = create(test_jobs, "disk.qcow2", capacity="6G")
    assert result["changed"] is True
    assert result["path"] == "/default-pool/disk.qcow2"
    assert (result["format"], result["capacity"]) == ("qcow2", 6 * GiB)
    assert result["backing"] is None and result["qemu_img"] is None  # files are not local here
    assert "created qcow2 volume default-pool/disk.qcow2 (6 GiB, sparse)" in test_jobs.messages()


def test_same_spec_again_changes_nothing(test_jobs: JobHarness) -> None:
    first = create(test_jobs, "again.qcow2", capacity="1G")
    second = create(test_jobs, "again.qcow2", capacity="1073741824")
    assert second["changed"] is False
    assert second["path"] == first["path"]
    assert test_jobs.messages() == [f"volume {POOL}/again.qcow2 already exists as asked"]


def test_conflicting_spec_names_the_differences_and_changes_nothing(test_jobs: JobHarness) -> None:
    create(test_jobs, "c.img", capacity="1G", format="raw")
    with pytest.raises(Conflict) as caught:
        create(test_jobs, "c.img", capacity="2G", format="qcow2")
    assert caught.value.status == 409
    fields = {diff["field"] for diff in caught.value.extra["differences"]}
    assert fields == {"capacity", "format"}
    assert "capacity: wanted 2147483648, found 1073741824" in caught.value.detail
    listed = test_jobs.run("volume.list", {"pool": POOL})["volumes"]
    assert [(v["name"], v["capacity"], v["format"]) for v in listed] == [("c.img", GiB, "raw")]


def test_path_form_maps_to_the_pool(test_jobs: JobHarness) -> None:
    result = test_jobs.run("volume.create", {"path": "/default-pool/p.qcow2", "capacity": "1G"})
    assert (result["pool"], result["name"]) == (POOL, "p.qcow2")


def test_path_outside_every_pool_is_refused_naming_path(test_jobs: JobHarness) -> None:
    with pytest.raises(InvalidInput) as caught:
        test_jobs.run("volume.create", {"path": "/etc/x.qcow2", "capacity": "1G"})
    (error,) = caught.value.extra["errors"]
    assert error["field"] == "params.path"
    assert "default-pool: /default-pool" in error["message"]


def test_unknown_pool_is_not_found(test_jobs: JobHarness) -> None:
    with pytest.raises(NotFound, match="storage pool 'nope' does not exist"):
        test_jobs.run("volume.create", {"pool": "nope", "name": "x", "capacity": "1G"})


def test_missing_backing_is_invalid_naming_backing(test_jobs: JobHarness) -> None:
    with pytest.raises(InvalidInput) as caught:
        create(test_jobs, "o.qcow2", backing=f"{POOL}/missing.qcow2")
    assert caught.value.extra["errors"][0]["field"] == "params.backing"


def test_overlay_takes_the_backing_capacity_and_format(test_jobs: JobHarness) -> None:
    create(test_jobs, "base.raw", capacity="2G", format="raw")
    overlay = create(test_jobs, "o.qcow2", backing="/default-pool/base.raw")
    assert overlay["capacity"] == 2 * GiB
    assert overlay["backing"] == {"path": "/default-pool/base.raw", "format": "raw"}
    again = create(test_jobs, "o.qcow2", backing=f"{POOL}/base.raw")
    assert again["changed"] is False
    create(test_jobs, "other.raw", capacity="2G", format="raw")
    with pytest.raises(Conflict, match="backing"):
        create(test_jobs, "o.qcow2", backing=f"{POOL}/other.raw")


def test_overlay_smaller_than_its_backing_is_refused(test_jobs: JobHarness) -> None:
    create(test_jobs, "big.qcow2", capacity="4G")
    with pytest.raises(InvalidInput, match="smaller than the backing"):
        create(test_jobs, "small.qcow2", capacity="1G", backing=f"{POOL}/big.qcow2")


def test_capacity_beyond_available_space_is_invalid_unless_overcommitted(
    test_jobs: JobHarness,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        create(test_jobs, "huge.qcow2", capacity="1T")
    assert caught.value.extra["errors"][0]["field"] == "params.capacity"
    assert "100 GiB available" in caught.value.detail
    assert create(test_jobs, "huge.qcow2", capacity="1T", overcommit=True)["changed"] is True
    with pytest.raises(InvalidInput):
        create(test_jobs, "huge-full.img", capacity="1T", format="raw", allocation="full")


def test_delete_is_an_ensure(test_jobs: JobHarness) -> None:
    create(test_jobs, "gone.qcow2", capacity="1G")
    deleted = test_jobs.run("volume.delete", {"pool": POOL, "name": "gone.qcow2"})
    assert deleted == {
        "pool": POOL,
        "name": "gone.qcow2",
        "path": "/default-pool/gone.qcow2",
        "changed": True,
    }
    again = test_jobs.run("volume.delete", {"path": "/default-pool/gone.qcow2"})
    assert again["changed"] is False
    assert test_jobs.run("volume.list", {"pool": POOL})["volumes"] == []


def test_resize_of_a_missing_volume_is_not_found(test_jobs: JobHarness) -> None:
    with pytest.raises(NotFound):
        test_jobs.run("volume.resize", {"pool": POOL, "name": "none", "capacity": "1G"})


def test_clone_copies_and_converges(test_jobs: JobHarness) -> None:
    create(test_jobs, "src.qcow2", capacity="1G")
    params = {"pool": POOL, "name": "copy.img", "source": f"{POOL}/src.qcow2", "format": "raw"}
    first = test_jobs.run("volume.clone", params)
    assert (first["format"], first["capacity"], first["changed"]) == ("raw", GiB, True)
    assert test_jobs.run("volume.clone", params)["changed"] is False
    with pytest.raises(InvalidInput, match="target volume itself"):
        test_jobs.run("volume.clone", {**params, "name": "src.qcow2"})


def test_lists_show_pools_and_volumes(test_jobs: JobHarness) -> None:
    create(test_jobs, "b.qcow2", capacity="1G")
    create(test_jobs, "a.qcow2", capacity="2G")
    volumes = test_jobs.run("volume.list", {"pool": POOL})["volumes"]
    assert [(v["name"], v["capacity"], v["partial"]) for v in volumes] == [
        ("a.qcow2", 2 * GiB, False),
        ("b.qcow2", GiB, False),
    ]
    (pool,) = test_jobs.run("pool.list", {})["pools"]
    assert pool["name"] == POOL and pool["path"] == "/default-pool"
    assert pool["capacity"] == 100 * GiB and pool["active"] is True
    assert {"allocation", "available"} <= set(pool)


def test_pool_ensure_defines_once_and_refuses_a_different_path(test_jobs: JobHarness) -> None:
    first = test_jobs.run("pool.ensure", {"name": "extra", "path": "/extra-pool"})
    assert first["changed"] is True and "defined" in first["actions"]
    assert (first["active"], first["autostart"], first["path"]) == (True, True, "/extra-pool")
    again = test_jobs.run("pool.ensure", {"name": "extra", "path": "/extra-pool"})
    assert (again["changed"], again["actions"]) == (False, [])
    with pytest.raises(Conflict, match="path: wanted /elsewhere, found /extra-pool"):
        test_jobs.run("pool.ensure", {"name": "extra", "path": "/elsewhere"})
    with pytest.raises(Conflict, match="already belongs to storage pool 'default-pool'"):
        test_jobs.run("pool.ensure", {"name": "twin", "path": "/default-pool"})
