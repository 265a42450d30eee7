"""The worker's spool for images sent through the API: ``var/uploads`` is private (mode 0700), and
files a killed worker left there are removed once they are a day old, by the next upload that
spools on that worker. Real stack, real libvirtd, a throwaway directory pool."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests

from tests.support.services import RunningStack

pytestmark = pytest.mark.libvirtd

KVM_HV = "kvm"
HOUR = 3600


@dataclass(frozen=True)
class Pool:
    name: str
    path: Path


@pytest.fixture
def kvm_stack(make_stack: Any, qemu_uri: str) -> RunningStack:
    stack: RunningStack = make_stack({KVM_HV: qemu_uri})
    return stack


@pytest.fixture
def pool(kvm_stack: RunningStack, qemu_uri: str, tmp_path: Path) -> Iterator[Pool]:
    """A directory pool made by a ``pool.ensure`` job; removed with its volumes afterwards."""
    # Under the stack's var_dir/pools, where pools may live without configuring pool roots.
    pools = kvm_stack.settings.var_dir.resolve() / "pools"
    made = Pool(f"test-spool-{uuid.uuid4().hex[:10]}", pools / "spool-test")
    made.path.mkdir(parents=True)
    try:
        done = kvm_stack.run(
            "pool.ensure", KVM_HV, name=made.name, path=str(made.path), autostart=False
        )
        assert done["state"] == "succeeded", done["error"]
        yield made
    finally:
        _remove_pool(qemu_uri, made)


def _remove_pool(uri: str, pool: Pool) -> None:
    conn = libvirt.open(uri)
    try:
        try:
            found = conn.storagePoolLookupByName(pool.name)
        except libvirt.libvirtError:
            return  # pool.ensure never got as far as defining it
        if found.isActive():
            found.refresh(0)
            for volume in found.listAllVolumes():
                volume.delete(0)
            found.destroy()
        found.undefine()
    finally:
        conn.close()
        shutil.rmtree(pool.path, ignore_errors=True)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "8M"], check=True)
    return path


def upload(stack: RunningStack, pool: Pool, name: str, image: Path) -> requests.Response:
    url = (
        f"{stack.settings.resolved_api_url}/v1/hypervisors/{KVM_HV}/pools/{pool.name}"
        f"/volumes/{name}/content"
    )
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    return requests.put(
        url, data=image.read_bytes(), params={"sha256": digest, "wait": "120"}, timeout=180
    )


def spool_dir(stack: RunningStack) -> Path:
    return stack.settings.var_dir.resolve() / "uploads"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftover(directory: Path, age_seconds: float) -> Path:
    """A spool file as a worker killed mid-upload ``age_seconds`` ago would have left it."""
    path = directory / f"{uuid.uuid4()}.1"
    path.write_bytes(b"half an image")
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def test_images_are_spooled_in_a_private_directory_emptied_after_the_import(
    kvm_stack: RunningStack, pool: Pool, image: Path
) -> None:
    assert not spool_dir(kvm_stack).exists()

    response = upload(kvm_stack, pool, "first.qcow2", image)

    assert response.status_code == 201, response.text
    assert (pool.path / "first.qcow2").is_file()
    assert spool_dir(kvm_stack).is_dir()
    assert mode(spool_dir(kvm_stack)) == 0o700
    assert list(spool_dir(kvm_stack).iterdir()) == []


def test_the_next_upload_removes_leftovers_a_day_old_and_keeps_younger_ones(
    kvm_stack: RunningStack, pool: Pool, image: Path
) -> None:
    assert upload(kvm_stack, pool, "first.qcow2", image).status_code == 201
    spool = spool_dir(kvm_stack)
    two_days_old = leftover(spool, 48 * HOUR)
    almost_a_day_old = leftover(spool, 23 * HOUR)
    fresh = leftover(spool, 0)

    response = upload(kvm_stack, pool, "second.qcow2", image)

    assert response.status_code == 201, response.text
    assert not two_days_old.exists()
    assert almost_a_day_old.exists() and fresh.exists()
    assert sorted(spool.iterdir()) == sorted([almost_a_day_old, fresh])
    assert mode(spool) == 0o700


def test_a_spool_directory_found_with_a_looser_mode_is_made_private_again(
    kvm_stack: RunningStack, pool: Pool, image: Path
) -> None:
    spool_dir(kvm_stack).mkdir(parents=True)
    spool_dir(kvm_stack).chmod(0o755)

    response = upload(kvm_stack, pool, "first.qcow2", image)

    assert response.status_code == 201, response.text
    assert mode(spool_dir(kvm_stack)) == 0o700
