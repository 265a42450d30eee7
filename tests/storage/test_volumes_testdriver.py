"""Volume and pool jobs on the libvirt test driver: ensure semantics, conflicts, lookups, lists.

The test driver keeps volumes in memory (pool ``default-pool`` at /default-pool, 100 GiB), so
these prove the job-level behaviour; the files themselves are checked on the real libvirtd.
"""

from __future__ import annotations

from typing import Any

from tests.storage.conftest import WorkerJobs

GiB = 1024**3
POOL = "default-pool"


def create(jobs: WorkerJobs, name: str, **params: object) -> dict[str, Any]:
    return jobs.run("volume.create", {"pool": POOL, "name": name, **params})


def create_fails(
    jobs: WorkerJobs, problem: str, name: str, match: str | None = None, **params: object
) -> dict[str, Any]:
    return jobs.fail("volume.create", {"pool": POOL, "name": name, **params}, problem, match)


def test_create_reports_the_volume_and_changed(test_jobs: WorkerJobs) -> None:
    result = create(test_jobs, "disk.qcow2", capacity="6G")
    assert result["changed"] is True
    assert result["path"] == "/default-pool/disk.qcow2"
    assert (result["format"], result["capacity"]) == ("qcow2", 6 * GiB)
    assert result["backing"] is None and result["qemu_img"] is None  # files are not local here
    assert "created qcow2 volume default-pool/disk.qcow2 (6 GiB, sparse)" in test_jobs.messages()


def test_same_spec_again_changes_nothing(test_jobs: WorkerJobs) -> None:
    first = create(test_jobs, "again.qcow2", capacity="1G")
    second = create(test_jobs, "again.qcow2", capacity="1073741824")
    assert second["changed"] is False
    assert second["path"] == first["path"]
    assert test_jobs.messages() == [
        test_jobs.running_message(),
        f"volume {POOL}/again.qcow2 already exists as asked",
        "succeeded",
    ]


def test_conflicting_spec_names_the_differences_and_changes_nothing(test_jobs: WorkerJobs) -> None:
    create(test_jobs, "c.img", capacity="1G", format="raw")
    problem = create_fails(test_jobs, "conflict", "c.img", capacity="2G", format="qcow2")
    assert problem["status"] == 409
    assert {diff["field"] for diff in problem["differences"]} == {"capacity", "format"}
    assert "capacity: wanted 2147483648, found 1073741824" in problem["detail"]
    assert test_jobs.messages()[-1] == f"failed: {problem['detail']}"
    listed = test_jobs.run("volume.list", {"pool": POOL})["volumes"]
    assert [(v["name"], v["capacity"], v["format"]) for v in listed] == [("c.img", GiB, "raw")]


def test_path_form_maps_to_the_pool(test_jobs: WorkerJobs) -> None:
    result = test_jobs.run("volume.create", {"path": "/default-pool/p.qcow2", "capacity": "1G"})
    assert (result["pool"], result["name"]) == (POOL, "p.qcow2")


def test_path_outside_every_pool_is_refused_naming_path(test_jobs: WorkerJobs) -> None:
    params = {"path": "/srv/x.qcow2", "capacity": "1G"}
    (error,) = test_jobs.fail("volume.create", params, "invalid-input")["errors"]
    assert error["field"] == "params.path"
    assert "default-pool: /default-pool" in error["message"]


def test_unknown_pool_is_not_found(test_jobs: WorkerJobs) -> None:
    params = {"pool": "nope", "name": "x", "capacity": "1G"}
    problem = test_jobs.fail("volume.create", params, "not-found", "storage pool 'nope' does not")
    assert problem["status"] == 404


def test_missing_backing_is_invalid_naming_backing(test_jobs: WorkerJobs) -> None:
    problem = create_fails(test_jobs, "invalid-input", "o.qcow2", backing=f"{POOL}/missing.qcow2")
    assert problem["errors"][0]["field"] == "params.backing"


def test_overlay_takes_the_backing_capacity_and_format(test_jobs: WorkerJobs) -> None:
    create(test_jobs, "base.raw", capacity="2G", format="raw")
    overlay = create(test_jobs, "o.qcow2", backing="/default-pool/base.raw")
    assert overlay["capacity"] == 2 * GiB
    assert overlay["backing"] == {"path": "/default-pool/base.raw", "format": "raw"}
    again = create(test_jobs, "o.qcow2", backing=f"{POOL}/base.raw")
    assert again["changed"] is False
    create(test_jobs, "other.raw", capacity="2G", format="raw")
    create_fails(test_jobs, "conflict", "o.qcow2", "backing", backing=f"{POOL}/other.raw")


def test_overlay_smaller_than_its_backing_is_refused(test_jobs: WorkerJobs) -> None:
    create(test_jobs, "big.qcow2", capacity="4G")
    backing = f"{POOL}/big.qcow2"
    match = "smaller than the backing"
    create_fails(test_jobs, "invalid-input", "small.qcow2", match, capacity="1G", backing=backing)
    assert [v["name"] for v in test_jobs.run("volume.list", {"pool": POOL})["volumes"]] == [
        "big.qcow2"
    ]


def test_capacity_beyond_available_space_is_invalid_unless_overcommitted(
    test_jobs: WorkerJobs,
) -> None:
    problem = create_fails(test_jobs, "invalid-input", "huge.qcow2", capacity="1T")
    assert problem["errors"][0]["field"] == "params.capacity"
    assert "100 GiB available" in problem["detail"]
    assert create(test_jobs, "huge.qcow2", capacity="1T", overcommit=True)["changed"] is True
    full = {"capacity": "1T", "format": "raw", "allocation": "full"}
    create_fails(test_jobs, "invalid-input", "huge-full.img", **full)


def test_delete_is_an_ensure(test_jobs: WorkerJobs) -> None:
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


def test_resize_of_a_missing_volume_is_not_found(test_jobs: WorkerJobs) -> None:
    params = {"pool": POOL, "name": "none", "capacity": "1G"}
    test_jobs.fail("volume.resize", params, "not-found", "volume default-pool/none does not")


def test_clone_copies_and_converges(test_jobs: WorkerJobs) -> None:
    create(test_jobs, "src.qcow2", capacity="1G")
    params = {"pool": POOL, "name": "copy.img", "source": f"{POOL}/src.qcow2", "format": "raw"}
    first = test_jobs.run("volume.clone", params)
    assert (first["format"], first["capacity"], first["changed"]) == ("raw", GiB, True)
    assert test_jobs.run("volume.clone", params)["changed"] is False
    test_jobs.fail(
        "volume.clone", {**params, "name": "src.qcow2"}, "invalid-input", "target volume itself"
    )


def test_lists_show_pools_and_volumes(test_jobs: WorkerJobs) -> None:
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


def test_pool_ensure_defines_once_and_refuses_a_different_path(test_jobs: WorkerJobs) -> None:
    first = test_jobs.run("pool.ensure", {"name": "extra", "path": "/extra-pool"})
    assert first["changed"] is True and "defined" in first["actions"]
    assert (first["active"], first["autostart"], first["path"]) == (True, True, "/extra-pool")
    again = test_jobs.run("pool.ensure", {"name": "extra", "path": "/extra-pool"})
    assert (again["changed"], again["actions"]) == (False, [])
    elsewhere = {"name": "extra", "path": "/elsewhere"}
    test_jobs.fail("pool.ensure", elsewhere, "conflict", "path: wanted /elsewhere, found /extra")
    twin = {"name": "twin", "path": "/default-pool"}
    test_jobs.fail(
        "pool.ensure", twin, "conflict", "already belongs to storage pool 'default-pool'"
    )
    assert [p["name"] for p in test_jobs.run("pool.list", {})["pools"]] == [POOL, "extra"]
