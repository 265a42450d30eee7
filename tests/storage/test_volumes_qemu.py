"""Volume jobs on the real libvirtd, checked on disk with qemu-img, qemu-io and stat."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.storage.names import partial_name
from tests.storage.conftest import DirPool, WorkerJobs, new_job_id
from tests.storage.dirwatch import DirectoryWatch
from workers.runner import run_attempt
from workers.storage.upload import file_sha256, opened_source, prepare_upload

pytestmark = pytest.mark.libvirtd

MiB = 1024**2
GiB = 1024**3


def qemu_img_info(path: Path | str) -> dict[str, Any]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def qemu_io(path: Path | str, fmt: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["qemu-io", "-f", fmt, "-c", command, str(path)], capture_output=True, text=True
    )


def pool_files(pool: DirPool) -> list[str]:
    return sorted(os.listdir(pool.path))


def create(jobs: WorkerJobs, pool: DirPool, name: str, **params: Any) -> dict[str, Any]:
    return jobs.run("volume.create", {"pool": pool.name, "name": name, **params})


def libvirt_volumes(pool: DirPool) -> list[str]:
    return sorted(pool.pool.listVolumes())


def test_sparse_qcow2_is_a_small_file_of_the_asked_size(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    result = create(qemu_jobs, dir_pool, "disk.qcow2", capacity="6G", mode="0640")
    path = dir_pool.path / "disk.qcow2"
    info = qemu_img_info(path)
    assert (info["format"], info["virtual-size"]) == ("qcow2", 6 * GiB)
    assert info["actual-size"] < MiB
    assert "backing-filename" not in info
    assert info["format-specific"]["data"]["compat"] == "1.1"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    assert result["path"] == str(path) and result["changed"] is True
    assert result["qemu_img"]["virtual_size"] == 6 * GiB
    assert result["qemu_img"]["format"] == "qcow2"


def test_raw_full_allocation_takes_its_space_and_leaves_no_partial(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    result = create(
        qemu_jobs, dir_pool, "full.img", capacity="64M", format="raw", allocation="full"
    )
    path = dir_pool.path / "full.img"
    assert path.stat().st_blocks * 512 >= 64 * MiB
    assert result["allocation"] >= 64 * MiB and result["changed"] is True
    assert pool_files(dir_pool) == ["full.img"]
    again = create(qemu_jobs, dir_pool, "full.img", capacity="64M", format="raw", allocation="full")
    assert again["changed"] is False


def test_qcow2_full_allocation_preallocates(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    create(qemu_jobs, dir_pool, "full.qcow2", capacity="32M", allocation="full")
    assert qemu_img_info(dir_pool.path / "full.qcow2")["actual-size"] >= 32 * MiB


def test_a_sparse_volume_does_not_satisfy_a_full_request(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    create(qemu_jobs, dir_pool, "thin.img", capacity="32M", format="raw")
    params = {"pool": dir_pool.name, "name": "thin.img", "capacity": "32M", "format": "raw"}
    full = {**params, "allocation": "full"}
    qemu_jobs.fail("volume.create", full, "conflict", "allocation: wanted full")
    assert (dir_pool.path / "thin.img").stat().st_blocks * 512 < 32 * MiB


def test_overlay_reads_the_base_image(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    create(qemu_jobs, dir_pool, "base.qcow2", capacity="1G")
    base = dir_pool.path / "base.qcow2"
    assert qemu_io(base, "qcow2", "write -P 0xab 0 64k").returncode == 0
    result = create(qemu_jobs, dir_pool, "vm1.qcow2", backing=f"{dir_pool.name}/base.qcow2")
    overlay = dir_pool.path / "vm1.qcow2"
    info = qemu_img_info(overlay)
    assert info["backing-filename"] == str(base)
    assert info["backing-filename-format"] == "qcow2"
    assert info["virtual-size"] == GiB
    assert result["backing"] == {"path": str(base), "format": "qcow2"}
    assert result["qemu_img"]["backing_file"] == str(base)
    read = qemu_io(overlay, "qcow2", "read -P 0xab 0 64k")
    assert read.returncode == 0 and "Pattern verification failed" not in read.stdout
    assert qemu_io(overlay, "qcow2", "read -P 0xcd 0 64k").stdout.count("verification failed")


def test_overlay_by_path_in_path_form(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    create(qemu_jobs, dir_pool, "base.img", capacity="16M", format="raw")
    base = dir_pool.path / "base.img"
    result = qemu_jobs.run(
        "volume.create",
        {"path": str(dir_pool.path / "o.qcow2"), "backing": str(base), "capacity": "32M"},
    )
    assert (result["pool"], result["name"]) == (dir_pool.name, "o.qcow2")
    info = qemu_img_info(dir_pool.path / "o.qcow2")
    assert (info["backing-filename-format"], info["virtual-size"]) == ("raw", 32 * MiB)


def test_resize_grows_refuses_to_shrink_unless_allowed(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    create(qemu_jobs, dir_pool, "r.qcow2", capacity="1G")
    target = {"pool": dir_pool.name, "name": "r.qcow2"}
    grown = qemu_jobs.run("volume.resize", {**target, "capacity": "2G"})
    assert (grown["previous_capacity"], grown["capacity"], grown["changed"]) == (GiB, 2 * GiB, True)
    assert qemu_img_info(dir_pool.path / "r.qcow2")["virtual-size"] == 2 * GiB
    assert qemu_jobs.run("volume.resize", {**target, "capacity": "2G"})["changed"] is False
    qemu_jobs.fail("volume.resize", {**target, "capacity": "1G"}, "invalid-input", "allow_shrink")
    assert qemu_img_info(dir_pool.path / "r.qcow2")["virtual-size"] == 2 * GiB
    qemu_jobs.run("volume.resize", {**target, "capacity": "1G", "allow_shrink": True})
    assert qemu_img_info(dir_pool.path / "r.qcow2")["virtual-size"] == GiB


def test_delete_removes_the_file(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    create(qemu_jobs, dir_pool, "d.qcow2", capacity="1G")
    qemu_jobs.run("volume.delete", {"path": str(dir_pool.path / "d.qcow2")})
    assert pool_files(dir_pool) == []


def test_clone_converts_raw_to_qcow2(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    create(qemu_jobs, dir_pool, "src.img", capacity="16M", format="raw")
    assert qemu_io(dir_pool.path / "src.img", "raw", "write -P 0x5a 1M 64k").returncode == 0
    params = {"pool": dir_pool.name, "name": "copy.qcow2", "source": f"{dir_pool.name}/src.img"}
    result = qemu_jobs.run("volume.clone", {**params, "format": "qcow2"})
    copy = dir_pool.path / "copy.qcow2"
    info = qemu_img_info(copy)
    assert (info["format"], info["virtual-size"], result["format"]) == ("qcow2", 16 * MiB, "qcow2")
    assert qemu_io(copy, "qcow2", "read -P 0x5a 1M 64k").stdout.count("verification failed") == 0
    assert pool_files(dir_pool) == ["copy.qcow2", "src.img"]
    assert qemu_jobs.run("volume.clone", {**params, "format": "qcow2"})["changed"] is False
    # The default format is the source's: raw.
    qemu_jobs.fail("volume.clone", params, "conflict", "format")
    assert qemu_img_info(copy)["format"] == "qcow2"


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, str]:
    """A small qcow2 image with data, outside any pool, and its SHA-256."""
    path = tmp_path / "upload.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    assert qemu_io(path, "qcow2", "write -P 0x11 0 128k").returncode == 0
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_imports_verified_content(
    qemu_jobs: WorkerJobs, dir_pool: DirPool, image: tuple[Path, str]
) -> None:
    source, digest = image
    params = {"pool": dir_pool.name, "name": "img.qcow2", "source_path": str(source)}
    result = qemu_jobs.run("volume.upload", {**params, "sha256": digest.upper()})
    target = dir_pool.path / "img.qcow2"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert (result["format"], result["capacity"], result["sha256"]) == ("qcow2", 64 * MiB, digest)
    assert qemu_img_info(target)["format"] == "qcow2"
    assert pool_files(dir_pool) == ["img.qcow2"]
    assert qemu_jobs.run("volume.upload", {**params, "sha256": digest})["changed"] is False


def test_upload_with_a_wrong_checksum_leaves_nothing(
    qemu_jobs: WorkerJobs, dir_pool: DirPool, image: tuple[Path, str]
) -> None:
    source, _ = image
    params = {"pool": dir_pool.name, "name": "img.qcow2", "source_path": str(source)}
    problem = qemu_jobs.fail("volume.upload", {**params, "sha256": "0" * 64}, "invalid-input")
    assert problem["errors"][0]["field"] == "params.sha256"
    assert pool_files(dir_pool) == []
    assert libvirt_volumes(dir_pool) == []
    assert qemu_jobs.run("volume.list", {"pool": dir_pool.name})["volumes"] == []


def test_an_upload_reads_the_file_it_checked_even_if_a_directory_is_swapped_for_a_link(
    image: tuple[Path, str], tmp_path: Path
) -> None:
    # Whoever may write in an allowed directory swaps a directory on the source's path for a
    # symlink to a secret between the check and the read: the import still reads what it checked.
    source, digest = image
    allowed = tmp_path / "allowed"
    (allowed / "images").mkdir(parents=True)
    checked = allowed / "images" / "disk.qcow2"
    shutil.copy(source, checked)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "disk.qcow2").write_bytes(b"root's secret")

    with opened_source(str(checked), [allowed]) as held:
        (allowed / "images").rename(allowed / "moved")
        (allowed / "images").symlink_to(secret)
        assert file_sha256(held.path) == digest
        assert prepare_upload(held, None).format == "qcow2"


def test_an_upload_source_that_is_a_fifo_is_refused_without_waiting_for_a_writer(
    qemu_jobs: WorkerJobs, dir_pool: DirPool, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe.img"
    os.mkfifo(fifo)
    params = {"pool": dir_pool.name, "name": "p.img", "source_path": str(fifo), "sha256": "0" * 64}
    qemu_jobs.fail("volume.upload", params, "invalid-input", "is not a regular file")
    assert pool_files(dir_pool) == []


def test_upload_refuses_images_that_point_at_other_files(
    qemu_jobs: WorkerJobs, dir_pool: DirPool, image: tuple[Path, str], tmp_path: Path
) -> None:
    base, _ = image
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(overlay)],
        check=True,
    )
    digest = hashlib.sha256(overlay.read_bytes()).hexdigest()
    params = {"pool": dir_pool.name, "name": "o.qcow2", "source_path": str(overlay)}
    params = {**params, "sha256": digest}
    qemu_jobs.fail("volume.upload", params, "invalid-input", "refers to another file")
    as_raw = {**params, "source_path": str(base), "format": "raw"}
    qemu_jobs.fail("volume.upload", as_raw, "invalid-input", "holds a qcow2 image, not raw")
    assert pool_files(dir_pool) == []
    assert libvirt_volumes(dir_pool) == []


def test_the_next_attempt_of_a_job_removes_its_partial_and_converges(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    # What a worker killed mid-write leaves: its claim on attempt 1 and a partial volume.
    job_id = new_job_id()
    qemu_jobs.live.claim(job_id, 1, "storage-test/gone", "gone-instance")
    (dir_pool.path / partial_name(job_id)).write_bytes(b"\0" * 4096)
    params = {
        "pool": dir_pool.name,
        "name": "f.img",
        "capacity": "8M",
        "format": "raw",
        "allocation": "full",
    }
    rerun = qemu_jobs.run_next_attempt(job_id, "volume.create", params)
    assert (rerun.attempt, rerun.state, rerun.result["changed"]) == (2, "succeeded", True)
    assert pool_files(dir_pool) == ["f.img"]
    assert "removed an unfinished volume left by an earlier attempt" in rerun.messages


def test_a_published_file_libvirt_has_not_seen_counts_as_existing(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    # A worker that died after publishing but before refreshing the pool leaves exactly this.
    path = dir_pool.path / "late.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1G"], check=True)
    result = create(qemu_jobs, dir_pool, "late.qcow2", capacity="1G")
    assert result["changed"] is False
    params = {"pool": dir_pool.name, "name": "late.qcow2", "capacity": "2G"}
    qemu_jobs.fail("volume.create", params, "conflict", "capacity: wanted 2147483648")
    assert qemu_img_info(path)["virtual-size"] == GiB


def test_volume_list_shows_partials(qemu_jobs: WorkerJobs, dir_pool: DirPool) -> None:
    create(qemu_jobs, dir_pool, "a.qcow2", capacity="1G")
    (dir_pool.path / partial_name("lost-job")).write_bytes(b"")
    dir_pool.pool.refresh(0)
    volumes = qemu_jobs.run("volume.list", {"pool": dir_pool.name})["volumes"]
    assert [(v["name"], v["partial"]) for v in volumes] == [
        (partial_name("lost-job"), True),
        ("a.qcow2", False),
    ]


# A worker process of its own, running the job's first attempt as its Celery task would.
_KILLED_WORKER = """
import sys
from pathlib import Path
from tests.storage.conftest import worker_runtime
from workers.runner import run_attempt
uri, redis_url, var_dir, job_id, pool, source, digest = sys.argv[1:]
runtime = worker_runtime(uri, redis_url, Path(var_dir))
params = {"pool": pool, "name": "big.img", "source_path": source, "sha256": digest}
run_attempt(runtime, job_id, 1, "volume.upload", params)
"""


def test_a_worker_killed_mid_upload_leaves_no_volume_and_the_rerun_converges(
    qemu_jobs: WorkerJobs, dir_pool: DirPool, tmp_path: Path
) -> None:
    source = tmp_path / "big.img"
    block = hashlib.sha256(b"seed").digest() * (MiB // 32)
    with source.open("wb") as handle:
        for _ in range(128):
            handle.write(block)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    job_id = new_job_id()
    settings = qemu_jobs.runtime.settings
    partial = partial_name(job_id)
    argv = [settings.libvirt_uri, settings.resolved_redis_url, str(settings.var_dir), job_id]
    with DirectoryWatch(dir_pool.path) as watch:
        worker = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WORKER, *argv, dir_pool.name, str(source), digest],
            cwd=Path(__file__).parents[2],
        )
        try:
            started = watch.wait_for(partial, 120, gave_up=lambda: worker.poll() is not None)
        finally:
            worker.kill()
            worker.wait()
    assert started, "the worker ended before it began writing the volume"
    assert pool_files(dir_pool) == [partial], "the upload finished before it could be interrupted"
    assert qemu_jobs.read(job_id).state == "running"

    # The broker hands the unacknowledged message out again: that attempt was claimed already.
    params = {
        "pool": dir_pool.name,
        "name": "big.img",
        "source_path": str(source),
        "sha256": digest,
    }
    assert run_attempt(qemu_jobs.runtime, job_id, 1, "volume.upload", params) == {
        "skipped": "duplicate"
    }
    assert pool_files(dir_pool) == [partial]

    rerun = qemu_jobs.run_next_attempt(job_id, "volume.upload", params)
    assert (rerun.attempt, rerun.state) == (2, "succeeded"), rerun.error
    assert (rerun.result["changed"], rerun.result["format"]) == (True, "raw")
    assert rerun.result["capacity"] == 128 * MiB
    assert pool_files(dir_pool) == libvirt_volumes(dir_pool) == ["big.img"]
    assert hashlib.sha256((dir_pool.path / "big.img").read_bytes()).hexdigest() == digest
    assert "removed an unfinished volume left by an earlier attempt" in rerun.messages


def test_upload_from_outside_the_allowed_directories_is_refused(
    qemu_jobs: WorkerJobs, dir_pool: DirPool
) -> None:
    params = {"pool": dir_pool.name, "name": "shadow.img", "sha256": "0" * 64, "format": "raw"}
    shadow = {**params, "source_path": "/etc/shadow"}
    problem = qemu_jobs.fail("volume.upload", shadow, "forbidden", "a system directory")
    assert problem["errors"][0]["field"] == "params.source_path"
    link = dir_pool.path.parent / "innocent.img"  # a symlink inside an allowed one is followed
    link.symlink_to("/etc/shadow")
    linked = {**params, "source_path": str(link)}
    qemu_jobs.fail("volume.upload", linked, "forbidden", "a system directory")
    with tempfile.NamedTemporaryFile(dir="/var/tmp") as elsewhere:  # not a system directory
        outside = {**params, "source_path": elsewhere.name}
        problem = qemu_jobs.fail("volume.upload", outside, "invalid-input")
    assert "outside the directories uploads may come from" in problem["detail"]
    assert pool_files(dir_pool) == []
    assert libvirt_volumes(dir_pool) == []
