"""volume.create_many: many volumes of one spec in one job, as an ensure.

The rules run on the test driver; the files (real overlays reading their base) on the real
libvirtd.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from tests.storage.conftest import DirPool, WorkerJobs

GiB = 1024**3
POOL = "default-pool"


def create_many(jobs: WorkerJobs, pool: str, names: list[str], **params: Any) -> dict[str, Any]:
    return jobs.run("volume.create_many", {"pool": pool, "names": names, **params})


def listed(jobs: WorkerJobs, pool: str) -> dict[str, dict[str, Any]]:
    volumes = jobs.run("volume.list", {"pool": pool})["volumes"]
    return {volume["name"]: volume for volume in volumes}


def test_creates_every_volume_and_reports_each(test_jobs: WorkerJobs) -> None:
    names = [f"vm-{i}.qcow2" for i in range(12)]
    result = create_many(test_jobs, POOL, names, capacity="2G", parallel=3)
    assert result["changed"] is True
    assert (result["created"], result["existing"]) == (names, [])
    assert [v["name"] for v in result["volumes"]] == names
    assert {(v["format"], v["capacity"]) for v in result["volumes"]} == {("qcow2", 2 * GiB)}
    assert test_jobs.messages() == [
        test_jobs.running_message(),
        "creating 12 qcow2 volumes in pool default-pool (2 GiB, sparse); 0 already exist",
        "created 12 volumes in pool default-pool",
        "succeeded",
    ]
    assert set(listed(test_jobs, POOL)) == set(names)


def test_a_rerun_creates_only_the_missing_ones(test_jobs: WorkerJobs) -> None:
    create_many(test_jobs, POOL, ["a.qcow2", "b.qcow2"], capacity="1G")
    result = create_many(test_jobs, POOL, ["a.qcow2", "b.qcow2", "c.qcow2"], capacity="1G")
    assert (result["created"], result["existing"]) == (["c.qcow2"], ["a.qcow2", "b.qcow2"])
    again = create_many(test_jobs, POOL, ["a.qcow2", "b.qcow2", "c.qcow2"], capacity="1G")
    assert again["changed"] is False and again["created"] == []
    assert test_jobs.messages() == [
        test_jobs.running_message(),
        "all 3 volumes already exist in pool default-pool as asked",
        "succeeded",
    ]


def test_a_conflicting_volume_fails_the_job_before_anything_is_created(
    test_jobs: WorkerJobs,
) -> None:
    test_jobs.run(
        "volume.create", {"pool": POOL, "name": "b.img", "capacity": "1G", "format": "raw"}
    )
    params = {"pool": POOL, "names": ["a.qcow2", "b.img", "c.qcow2"], "capacity": "1G"}
    problem = test_jobs.fail("volume.create_many", params, "conflict")
    assert problem["status"] == 409
    assert "b.img: format: wanted qcow2, found raw" in problem["detail"]
    assert set(problem["differences"]) == {"b.img"}
    # Refused before any create: nothing made, so nothing removed again after the failure.
    messages = test_jobs.messages()
    assert messages == [test_jobs.running_message(), f"failed: {problem['detail']}"]
    assert set(listed(test_jobs, POOL)) == {"b.img"}


def test_overlays_take_the_backing_capacity(test_jobs: WorkerJobs) -> None:
    test_jobs.run("volume.create", {"pool": POOL, "name": "base.qcow2", "capacity": "3G"})
    result = create_many(test_jobs, POOL, ["o1.qcow2", "o2.qcow2"], backing=f"{POOL}/base.qcow2")
    assert {v["capacity"] for v in result["volumes"]} == {3 * GiB}
    assert {v["backing"]["path"] for v in result["volumes"]} == {"/default-pool/base.qcow2"}


def test_a_volume_beyond_the_available_space_is_refused_naming_capacity(
    test_jobs: WorkerJobs,
) -> None:
    params = {"pool": POOL, "names": ["a.qcow2"], "capacity": "1T"}
    problem = test_jobs.fail("volume.create_many", params, "invalid-input")
    assert problem["errors"][0]["field"] == "params.capacity"
    assert listed(test_jobs, POOL) == {}


@pytest.mark.parametrize(
    ("override", "field", "rule"),
    [
        ({"names": []}, "params.names", "at least 1"),
        ({"names": ["a.qcow2", "a.qcow2"]}, "params.names", "repeated: a.qcow2"),
        ({"names": ["../x"]}, "params.names.0", "'/'"),
        ({"allocation": "full"}, "params.allocation", "one per job"),
        ({"parallel": 0}, "params.parallel", "greater than or equal to 1"),
        ({"names": [f"v{i}" for i in range(1001)]}, "params.names", "at most 1000"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    test_jobs: WorkerJobs, override: dict[str, Any], field: str, rule: str
) -> None:
    params = {"pool": POOL, "names": ["a.qcow2"], "capacity": "1G", **override}
    errors = test_jobs.fail("volume.create_many", params, "invalid-input")["errors"]
    assert [error["field"] for error in errors] == [field]
    assert rule in errors[0]["message"]
    assert listed(test_jobs, POOL) == {}


@pytest.mark.libvirtd
def test_real_overlays_read_their_base(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    qemu_jobs.run("volume.create", {"pool": dir_pool.name, "name": "base.qcow2", "capacity": "64M"})
    base = dir_pool.path / "base.qcow2"
    pattern = ["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", str(base)]
    subprocess.run(pattern, check=True, capture_output=True)
    names = [f"clone-{i}.qcow2" for i in range(8)]
    result = create_many(qemu_jobs, dir_pool.name, names, backing=f"{dir_pool.name}/base.qcow2")
    assert result["created"] == names
    assert sorted(os.listdir(dir_pool.path)) == sorted(["base.qcow2", *names])
    for name in names:
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", str(dir_pool.path / name)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert info["backing-filename"] == str(base)
        assert info["virtual-size"] == 64 * 1024**2
    read = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 64k", str(dir_pool.path / names[-1])],
        capture_output=True,
        text=True,
    )
    assert read.returncode == 0 and "verification failed" not in read.stdout


@pytest.mark.libvirtd
def test_a_failure_part_way_removes_the_volumes_the_job_made(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    # A directory libvirt has not seen yet takes the last name: creating that volume fails
    # after the others were made, it turns out to be something else (409), and every volume
    # the job made is removed again.
    names = [f"d-{i}.qcow2" for i in range(6)]
    (dir_pool.path / names[-1]).mkdir()
    params = {"pool": dir_pool.name, "names": names, "capacity": "16M", "parallel": 1}
    match = re.escape("d-5.qcow2: format: wanted qcow2, found dir")
    qemu_jobs.fail("volume.create_many", params, "conflict", match)
    assert sorted(os.listdir(dir_pool.path)) == [names[-1]]
    removals = [m for m in qemu_jobs.messages() if m.startswith("removed volume")]
    assert len(removals) == 5, qemu_jobs.messages()
