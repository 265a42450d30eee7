"""Storage jobs and reads through the whole stack: HTTP API, Redis, recorder and Celery workers,
on the test driver for the rules and on the real libvirtd for files checked with qemu-img."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests

from orchestrator.storage.names import partial_name
from tests.support import services
from tests.support.services import RunningStack

TEST_HV = "tdef"
KVM_HV = "kvm"
TEST_POOL = "default-pool"  # the test driver's built-in directory pool
GiB = 1024**3


@pytest.fixture(scope="module")
def api_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One stack for the module (starting one costs seconds), on its own redis-server."""
    tmp = tmp_path_factory.mktemp("through-api")
    with ExitStack() as contexts:
        server = contexts.enter_context(services.running_redis(tmp / "redis"))
        hypervisors = {TEST_HV: "test:///default"}
        yield contexts.enter_context(
            services.test_stack(
                tmp,
                services.redis_url(server),
                hypervisors,
                pool_roots=[Path("/tmp"), Path("/default-pool")],
            )
        )


@dataclass(frozen=True)
class KvmPool:
    name: str
    path: Path


@pytest.fixture(scope="module")
def kvm_pool(
    api_stack: RunningStack, qemu_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KvmPool]:
    """A worker on the real libvirtd and a unique directory pool made by a ``pool.ensure`` job;
    the pool, its volumes and its directory are removed afterwards, whatever happened."""
    if KVM_HV not in api_stack.workers:
        api_stack.add_workers({KVM_HV: qemu_uri})
    pool = KvmPool(f"test-api-{uuid.uuid4().hex[:10]}", tmp_path_factory.mktemp("pool"))
    try:
        done = api_stack.run(
            "pool.ensure", KVM_HV, name=pool.name, path=str(pool.path), autostart=False
        )
        assert done["state"] == "succeeded", done["error"]
        yield pool
    finally:
        _remove_pool(qemu_uri, pool)


def _remove_pool(uri: str, pool: KvmPool) -> None:
    conn = libvirt.open(uri)
    try:
        found = conn.storagePoolLookupByName(pool.name)
    except libvirt.libvirtError:
        found = None  # pool.ensure never got as far as defining it
    try:
        if found is not None:
            if found.isActive():
                found.refresh(0)
                for volume in found.listAllVolumes():
                    volume.delete(0)
                found.destroy()
            found.undefine()
    finally:
        conn.close()
        shutil.rmtree(pool.path, ignore_errors=True)


def post_job(stack: RunningStack, kind: str, hypervisor: str, **params: Any) -> requests.Response:
    body = {"kind": kind, "params": params, "hypervisor": hypervisor}
    return requests.post(f"{stack.settings.resolved_api_url}/v1/jobs", json=body, timeout=10)


def get(stack: RunningStack, path: str, **query: Any) -> requests.Response:
    return requests.get(f"{stack.settings.resolved_api_url}{path}", params=query, timeout=30)


def job_ids(stack: RunningStack) -> list[str]:
    return [job["id"] for job in stack.api.list_jobs({"limit": 500})]


def qemu_img_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


# --- rules, on the test driver ---------------------------------------------------------------

BAD_CREATES = [
    pytest.param({"name": "a/b.qcow2"}, "params.name", "'/'", id="slash-in-name"),
    pytest.param({"name": ".."}, "params.name", "'.'", id="dot-dot-name"),
    pytest.param({"name": ".hidden.qcow2"}, "params.name", "'.'", id="leading-dot"),
    pytest.param({"name": "x" * 256}, "params.name", "255 bytes", id="256-ascii-bytes"),
    pytest.param({"name": "é" * 128}, "params.name", "255 bytes", id="256-utf8-bytes"),
    pytest.param(
        {"name": None, "pool": None, "path": "/default-pool/../etc/x.qcow2"},
        "params.path",
        "'..'",
        id="dot-dot-in-path",
    ),
    pytest.param({"capacity": 0}, "params.capacity", "positive", id="zero-size"),
    pytest.param({"capacity": "-1G"}, "params.capacity", "positive", id="negative-size"),
    pytest.param({"capacity": "lots"}, "params.capacity", "cannot read", id="unparsable-size"),
    pytest.param({"capacity": "2Q"}, "params.capacity", "unknown size unit", id="unknown-unit"),
    pytest.param({"format": "vmdk"}, "params.format", "'qcow2' or 'raw'", id="unknown-format"),
]


@pytest.mark.parametrize(("override", "field", "rule"), BAD_CREATES)
def test_bad_volume_create_input_is_refused_with_422_naming_the_field_and_stores_nothing(
    api_stack: RunningStack, override: dict[str, Any], field: str, rule: str
) -> None:
    before = job_ids(api_stack)
    params = {"pool": TEST_POOL, "name": "ok.qcow2", "capacity": "1G", **override}
    params = {key: value for key, value in params.items() if value is not None}

    response = post_job(api_stack, "volume.create", TEST_HV, **params)

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    assert rule in errors[0]["message"]
    assert job_ids(api_stack) == before


def test_a_nul_in_a_name_is_refused_before_validation_and_stores_nothing(
    api_stack: RunningStack,
) -> None:
    # No string may carry a NUL (PostgreSQL text cannot hold one), so the body is refused as
    # a whole before any field is read.
    before = job_ids(api_stack)
    params = {"pool": TEST_POOL, "name": "a\x00b", "capacity": "1G"}
    response = post_job(api_stack, "volume.create", TEST_HV, **params)
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert job_ids(api_stack) == before


def test_same_name_other_size_fails_with_409_and_leaves_the_volume_as_it_was(
    api_stack: RunningStack,
) -> None:
    first = api_stack.run("volume.create", TEST_HV, pool=TEST_POOL, name="c.qcow2", capacity="1G")
    assert first["state"] == "succeeded", first["error"]

    clash = api_stack.run("volume.create", TEST_HV, pool=TEST_POOL, name="c.qcow2", capacity="2G")

    assert clash["state"] == "failed"
    assert clash["error"]["status"] == 409
    assert clash["error"]["type"] == "urn:orchestrator:problem:conflict"
    assert "capacity" in clash["error"]["detail"]
    listed = get(api_stack, f"/v1/hypervisors/{TEST_HV}/pools/{TEST_POOL}/volumes").json()
    (volume,) = [v for v in listed["volumes"] if v["name"] == "c.qcow2"]
    assert volume["capacity"] == GiB
    again = api_stack.run("volume.create", TEST_HV, pool=TEST_POOL, name="c.qcow2", capacity="1G")
    assert again["state"] == "succeeded" and again["result"]["changed"] is False


def test_pools_are_read_live_from_the_worker(api_stack: RunningStack) -> None:
    response = get(api_stack, f"/v1/hypervisors/{TEST_HV}/pools")
    assert response.status_code == 200
    (pool,) = [p for p in response.json()["pools"] if p["name"] == TEST_POOL]
    assert pool["path"] == "/default-pool" and pool["active"] is True
    assert pool["capacity"] > 0


def test_volumes_by_query_and_by_path_agree(api_stack: RunningStack) -> None:
    done = api_stack.run("volume.create", TEST_HV, pool=TEST_POOL, name="q.qcow2", capacity="1G")
    assert done["state"] == "succeeded", done["error"]
    by_path = get(api_stack, f"/v1/hypervisors/{TEST_HV}/pools/{TEST_POOL}/volumes").json()
    by_query = get(api_stack, f"/v1/hypervisors/{TEST_HV}/volumes", pool=TEST_POOL).json()
    assert by_path == by_query
    assert "q.qcow2" in {volume["name"] for volume in by_query["volumes"]}


@pytest.mark.parametrize(
    ("path", "query", "status", "field"),
    [
        pytest.param("/v1/hypervisors/nowhere/pools", {}, 404, None, id="unknown-hypervisor"),
        pytest.param(f"/v1/hypervisors/{TEST_HV}/volumes", {}, 422, "pool", id="pool-missing"),
        pytest.param(
            f"/v1/hypervisors/{TEST_HV}/volumes", {"pool": ".x"}, 422, "pool", id="bad-pool-name"
        ),
        pytest.param(
            f"/v1/hypervisors/{TEST_HV}/pools/no-such-pool/volumes", {}, 404, None, id="no-pool"
        ),
        pytest.param(
            f"/v1/hypervisors/{TEST_HV}/pools", {"wait": "soon"}, 422, "wait", id="bad-wait"
        ),
    ],
)
def test_bad_reads_get_a_problem_document(
    api_stack: RunningStack, path: str, query: dict[str, str], status: int, field: str | None
) -> None:
    response = get(api_stack, path, **query)
    assert response.status_code == status
    problem = response.json()
    assert problem["instance"] == path
    if field:
        assert [error["field"] for error in problem["errors"]] == [field]


def test_a_read_the_busy_worker_cannot_start_in_time_is_504_and_withdrawn(
    api_stack: RunningStack,
) -> None:
    threads = api_stack.settings.worker_concurrency
    pings = [api_stack.submit("ping", TEST_HV, delay=2.0) for _ in range(threads)]
    try:
        _wait_until(lambda: all(_state(api_stack, p["id"]) == "running" for p in pings))

        response = get(api_stack, f"/v1/hypervisors/{TEST_HV}/pools", wait=0.3)

        assert response.status_code == 504
        problem = response.json()
        assert "did not finish the pool.list read within 0.3 seconds" in problem["detail"]
        assert "withdrawn" in problem["detail"]
        assert api_stack.api.job(problem["job"])["state"] == "cancelled"
    finally:
        for ping in pings:
            api_stack.api.wait(ping["id"], timeout=30)
    # Once free, the worker skips the withdrawn read and answers new ones.
    assert api_stack.api.job(problem["job"])["state"] == "cancelled"
    assert get(api_stack, f"/v1/hypervisors/{TEST_HV}/pools").status_code == 200


def test_a_hypervisor_whose_worker_stopped_is_503_without_a_job(api_stack: RunningStack) -> None:
    api_stack.add_workers({"spare": "test:///default"})
    api_stack.workers["spare"].stop()
    _wait_until(lambda: not api_stack.api.get("/v1/hypervisors/spare")["alive"])
    before = job_ids(api_stack)

    response = get(api_stack, "/v1/hypervisors/spare/pools")

    assert response.status_code == 503
    assert "stopped sending heartbeats" in response.json()["detail"]
    assert job_ids(api_stack) == before


def _state(stack: RunningStack, job_id: str) -> str:
    return str(stack.api.job(job_id)["state"])


def _wait_until(condition: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# --- files, on the real libvirtd ------------------------------------------------------------


@pytest.mark.libvirtd
def test_qcow2_created_through_the_api_is_a_real_image_and_an_overlay_follows_it(
    api_stack: RunningStack, kvm_pool: KvmPool
) -> None:
    base = api_stack.run(
        "volume.create", KVM_HV, pool=kvm_pool.name, name="base.qcow2", capacity="1G"
    )
    assert base["state"] == "succeeded", base["error"]
    overlay = api_stack.run(
        "volume.create",
        KVM_HV,
        pool=kvm_pool.name,
        name="overlay.qcow2",
        backing=f"{kvm_pool.name}/base.qcow2",
    )
    assert overlay["state"] == "succeeded", overlay["error"]

    info = qemu_img_info(kvm_pool.path / "base.qcow2")
    assert (info["format"], info["virtual-size"]) == ("qcow2", GiB)
    assert base["result"]["path"] == str(kvm_pool.path / "base.qcow2")
    over = qemu_img_info(kvm_pool.path / "overlay.qcow2")
    assert over["virtual-size"] == GiB
    assert over["backing-filename"] == str(kvm_pool.path / "base.qcow2")
    assert over["backing-filename-format"] == "qcow2"


@pytest.mark.libvirtd
def test_a_volume_named_by_its_path_lands_in_its_pool(
    api_stack: RunningStack, kvm_pool: KvmPool
) -> None:
    path = kvm_pool.path / "by-path.qcow2"

    done = api_stack.run("volume.create", KVM_HV, path=str(path), capacity="512M")

    assert done["state"] == "succeeded", done["error"]
    assert (done["result"]["pool"], done["result"]["name"]) == (kvm_pool.name, "by-path.qcow2")
    assert qemu_img_info(path)["virtual-size"] == 512 * 1024**2


@pytest.mark.libvirtd
def test_a_path_outside_every_pool_fails_and_writes_nothing(
    api_stack: RunningStack, kvm_pool: KvmPool, tmp_path: Path
) -> None:
    outside = tmp_path / "stray.qcow2"

    done = api_stack.run("volume.create", KVM_HV, path=str(outside), capacity="1G")

    assert done["state"] == "failed"
    assert done["error"]["status"] == 422
    assert "not inside a storage pool directory" in done["error"]["detail"]
    assert not outside.exists()


@pytest.mark.libvirtd
def test_the_pool_and_its_volumes_are_listed_by_the_read_endpoints(
    api_stack: RunningStack, kvm_pool: KvmPool
) -> None:
    done = api_stack.run(
        "volume.create", KVM_HV, pool=kvm_pool.name, name="listed.qcow2", capacity="1G"
    )
    assert done["state"] == "succeeded", done["error"]

    pools = get(api_stack, f"/v1/hypervisors/{KVM_HV}/pools").json()["pools"]
    (pool,) = [p for p in pools if p["name"] == kvm_pool.name]
    assert (pool["path"], pool["active"], pool["type"]) == (str(kvm_pool.path), True, "dir")
    listed = get(api_stack, f"/v1/hypervisors/{KVM_HV}/volumes", pool=kvm_pool.name).json()
    volumes = {volume["name"]: volume for volume in listed["volumes"]}
    assert volumes["listed.qcow2"]["capacity"] == GiB
    assert volumes["listed.qcow2"]["format"] == "qcow2"
    assert volumes["listed.qcow2"]["path"] == str(kvm_pool.path / "listed.qcow2")


@pytest.mark.libvirtd
def test_delete_removes_the_file_and_a_second_delete_changes_nothing(
    api_stack: RunningStack, kvm_pool: KvmPool
) -> None:
    path = kvm_pool.path / "doomed.qcow2"
    made = api_stack.run("volume.create", KVM_HV, path=str(path), capacity="1G")
    assert made["state"] == "succeeded", made["error"]

    gone = api_stack.run("volume.delete", KVM_HV, pool=kvm_pool.name, name="doomed.qcow2")

    assert gone["state"] == "succeeded", gone["error"]
    assert gone["result"]["changed"] is True and not path.exists()
    listed = get(api_stack, f"/v1/hypervisors/{KVM_HV}/pools/{kvm_pool.name}/volumes").json()
    assert "doomed.qcow2" not in {volume["name"] for volume in listed["volumes"]}
    again = api_stack.run("volume.delete", KVM_HV, path=str(path))
    assert again["state"] == "succeeded" and again["result"]["changed"] is False


def test_many_volumes_in_one_job_are_listed_by_the_read_endpoint(api_stack: RunningStack) -> None:
    names = ["many-1.qcow2", "many-2.qcow2", "many-3.qcow2"]
    job = api_stack.run("volume.create_many", TEST_HV, pool=TEST_POOL, names=names, capacity="1G")
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["created"] == names
    listed = get(api_stack, f"/v1/hypervisors/{TEST_HV}/pools/{TEST_POOL}/volumes").json()
    assert {v["name"] for v in listed["volumes"]} >= set(names)
    repeated = post_job(
        api_stack, "volume.create_many", TEST_HV, pool=TEST_POOL, names=["x", "x"], capacity="1G"
    )
    assert repeated.status_code == 422
    assert [error["field"] for error in repeated.json()["errors"]] == ["params.names"]


def _qcow2_with_pattern(directory: Path) -> tuple[Path, str]:
    """A 3 MiB-plus qcow2 image with a known pattern, and its SHA-256."""
    image = directory / "upload-source.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "8M"], check=True)
    write = ["qemu-io", "-f", "qcow2", "-c", "write -P 0x3c 0 3M", str(image)]
    subprocess.run(write, check=True, capture_output=True)
    return image, hashlib.sha256(image.read_bytes()).hexdigest()


def put_content(
    stack: RunningStack, pool: str, name: str, image: Path, **query: str
) -> requests.Response:
    url = f"{stack.settings.resolved_api_url}/v1/hypervisors/{KVM_HV}/pools/{pool}/volumes/{name}"

    def chunks() -> Iterator[bytes]:  # streamed: a generator body goes out chunked
        with open(image, "rb") as handle:
            while chunk := handle.read(256 * 1024):
                yield chunk

    return requests.put(f"{url}/content", data=chunks(), params=query, timeout=120)


@pytest.mark.libvirtd
def test_an_image_sent_through_the_api_becomes_a_verified_volume(
    api_stack: RunningStack, kvm_pool: KvmPool, tmp_path: Path
) -> None:
    image, sha256 = _qcow2_with_pattern(tmp_path)

    response = put_content(api_stack, kvm_pool.name, "sent.qcow2", image, sha256=sha256)

    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "succeeded" and job["result"]["sha256"] == sha256
    stored = kvm_pool.path / "sent.qcow2"
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == sha256
    read = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "read -P 0x3c 0 3M", str(stored)],
        capture_output=True,
        text=True,
    )
    assert read.returncode == 0 and "verification failed" not in read.stdout
    again = put_content(api_stack, kvm_pool.name, "sent.qcow2", image, sha256=sha256)
    assert again.status_code == 200 and again.json()["result"]["changed"] is False
    assert not any((api_stack.settings.var_dir / "uploads").iterdir())


def what_an_upload_can_write(stack: RunningStack, pool: KvmPool, uri: str) -> dict[str, Any]:
    """Every place a volume.upload job on the kvm worker writes to, as it is now."""
    spool = stack.settings.var_dir.resolve() / "uploads"  # workers/storage/spool.py
    conn = libvirt.open(uri)
    try:
        # Without a refresh: what libvirt itself holds, not what it would find on disk.
        volumes = sorted(conn.storagePoolLookupByName(pool.name).listVolumes())
    finally:
        conn.close()
    return {
        # the volume and its ".partial-<job>" name before it is published (partials.py)
        "pool directory": sorted(os.listdir(pool.path)),
        "upload spool": sorted(os.listdir(spool)) if spool.exists() else [],
        "libvirt volumes": volumes,
    }


@pytest.mark.libvirtd
def test_content_with_another_checksum_is_refused_and_creates_nothing(
    api_stack: RunningStack, kvm_pool: KvmPool, tmp_path: Path, qemu_uri: str
) -> None:
    image, _ = _qcow2_with_pattern(tmp_path)
    before = what_an_upload_can_write(api_stack, kvm_pool, qemu_uri)

    response = put_content(api_stack, kvm_pool.name, "bad.qcow2", image, sha256="0" * 64)

    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert [error["field"] for error in problem["errors"]] == ["params.sha256"]
    # The content reached the worker's spool and was hashed there before it was refused.
    assert "not the expected" in problem["detail"] and problem["job"]
    after = what_an_upload_can_write(api_stack, kvm_pool, qemu_uri)
    assert after == before
    assert "bad.qcow2" not in after["pool directory"] + after["libvirt volumes"]
    assert partial_name(problem["job"]) not in after["pool directory"] + after["libvirt volumes"]
    assert not [name for name in after["upload spool"] if name.startswith(problem["job"])]


def test_an_upload_without_a_checksum_is_refused_before_any_byte_is_read(
    api_stack: RunningStack, tmp_path: Path
) -> None:
    before = job_ids(api_stack)
    image = tmp_path / "x.img"
    image.write_bytes(b"x" * 1024)
    url = f"{api_stack.settings.resolved_api_url}/v1/hypervisors/{TEST_HV}/pools/{TEST_POOL}"
    response = requests.put(f"{url}/volumes/x.img/content", data=image.read_bytes(), timeout=10)
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["sha256"]
    assert job_ids(api_stack) == before


def test_expected_lookup_misses_stay_out_of_the_worker_log(api_stack: RunningStack) -> None:
    # Every create first looks the volume up; libvirt would print each miss as an "error".
    done = api_stack.run(
        "volume.create", TEST_HV, pool=TEST_POOL, name="quiet.qcow2", capacity="1G"
    )
    assert done["state"] == "succeeded", done["error"]
    log = api_stack.workers[TEST_HV].log_path.read_text()
    assert "no storage vol with matching name 'quiet.qcow2'" not in log


@pytest.mark.libvirtd
def test_sent_content_that_points_at_another_file_is_refused_naming_the_content(
    api_stack: RunningStack, kvm_pool: KvmPool, tmp_path: Path
) -> None:
    base = tmp_path / "base.qcow2"
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "8M"], check=True)
    make_overlay = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2"]
    subprocess.run([*make_overlay, str(overlay)], check=True)
    sha256 = hashlib.sha256(overlay.read_bytes()).hexdigest()

    response = put_content(api_stack, kvm_pool.name, "o.qcow2", overlay, sha256=sha256)

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "content"
    assert error["message"].startswith("the content sent refers to another file")
    assert not (kvm_pool.path / "o.qcow2").exists()


def test_a_body_over_the_upload_limit_is_413_before_any_job(
    api_stack: RunningStack, tmp_path: Path
) -> None:
    from api import create_app

    settings = api_stack.settings.model_copy(update={"max_upload_bytes": 1024})
    before = job_ids(api_stack)
    client = create_app(settings).test_client()
    response = client.put(
        f"/v1/hypervisors/{TEST_HV}/pools/{TEST_POOL}/volumes/big.img/content",
        query_string={"sha256": "0" * 64},
        data=b"x" * 4096,
    )
    assert response.status_code == 413
    assert "1024 bytes" in response.get_json()["detail"]
    assert job_ids(api_stack) == before


@pytest.mark.libvirtd
def test_content_already_in_the_pool_is_not_taken_in_again(
    api_stack: RunningStack, kvm_pool: KvmPool, tmp_path: Path
) -> None:
    image, sha256 = _qcow2_with_pattern(tmp_path)
    first = put_content(api_stack, kvm_pool.name, "twice.qcow2", image, sha256=sha256)
    again = put_content(api_stack, kvm_pool.name, "twice.qcow2", image, sha256=sha256)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["result"]["changed"] is False
    taken_in = [
        [e["message"] for e in api_stack.api.events(r.json()["id"]) if "received" in e["message"]]
        for r in (first, again)
    ]
    assert len(taken_in[0]) == 1 and taken_in[1] == []  # the checksum decided before any byte
