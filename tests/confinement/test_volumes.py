"""Volumes change only in managed pools, through the API and a worker on the real libvirtd: a
pool outside the pool roots, a symlink leading out of a managed pool, and a backing chain that
leaves them are each refused with 403 before anything is written, deleted or copied."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests

from tests.confinement.conftest import (
    HV,
    Area,
    MiB,
    Pool,
    fields,
    job_count,
    post_job,
    qemu_img_create,
    refresh,
    refused,
    sha256,
)
from tests.support.services import RunningStack

pytestmark = pytest.mark.libvirtd


@pytest.fixture
def secret(area: Area) -> Path:
    """A file outside every root standing in for /etc/shadow or another tenant's disk."""
    path = area.outside / f"secret-{uuid.uuid4().hex[:8]}.img"
    path.write_bytes(b"not yours\n" * 52429)  # a little over 512 KiB
    return path


def test_api_refuses_volume_paths_in_system_directories_with_403(stack: RunningStack) -> None:
    before = job_count(stack)
    attempts: list[tuple[str, dict[str, Any], str]] = [
        ("volume.delete", {"path": "/etc/shadow"}, "params.path"),
        (
            "volume.resize",
            {"path": "/etc/passwd", "capacity": 512, "allow_shrink": True},
            "params.path",
        ),
        (
            "volume.clone",
            {"pool": "p", "name": "copy.img", "source": "/etc/shadow"},
            "params.source",
        ),
        (
            "volume.create",
            {"pool": "p", "name": "o.qcow2", "backing": "/boot/initrd.img"},
            "params.backing",
        ),
    ]
    for kind, params, field in attempts:
        response = post_job(stack, kind, **params)
        assert response.status_code == 403, response.text
        problem = response.json()
        assert fields(problem) == [field]
        assert "a system directory, never allowed" in problem["detail"]
    assert job_count(stack) == before


def test_volumes_of_a_pool_outside_the_roots_are_neither_deleted_resized_nor_made(
    stack: RunningStack, unmanaged: Pool, managed: Pool
) -> None:
    victim = unmanaged.path / "victim.img"
    digest = sha256(victim)
    shrink = {"capacity": 512, "allow_shrink": True}
    attempts: list[tuple[str, dict[str, Any], str]] = [
        ("volume.delete", {"pool": unmanaged.name, "name": "victim.img"}, "params.pool"),
        ("volume.delete", {"path": str(victim)}, "params.path"),
        ("volume.resize", {"pool": unmanaged.name, "name": "victim.img", **shrink}, "params.pool"),
        ("volume.resize", {"path": str(victim), **shrink}, "params.path"),
        (
            "volume.create",
            {"pool": unmanaged.name, "name": "new.qcow2", "capacity": "1M"},
            "params.pool",
        ),
        (
            "volume.create_many",
            {"pool": unmanaged.name, "names": ["a"], "capacity": "1M"},
            "params.pool",
        ),
        ("pool.delete", {"name": unmanaged.name, "delete_volumes": True}, "params.name"),
    ]
    for kind, params, field in attempts:
        problem = refused(stack, kind, 403, **params)
        assert fields(problem) == [field]
        assert (
            f"storage pool {unmanaged.name!r} at {unmanaged.path} is not a managed pool"
            in (problem["detail"])
        )
        assert (problem["rule"], problem["setting"]) == ("managed-pool", "ORCH_POOL_ROOTS")
    assert unmanaged.files() == ["victim.img"]
    assert sha256(victim) == digest
    assert managed.files() == []


def test_a_volume_of_a_pool_outside_the_roots_is_not_copied_into_a_managed_one(
    stack: RunningStack, unmanaged: Pool, managed: Pool
) -> None:
    for source in (f"{unmanaged.name}/victim.img", str(unmanaged.path / "victim.img")):
        problem = refused(
            stack, "volume.clone", 403, pool=managed.name, name="stolen.img", source=source
        )
        assert fields(problem) == ["params.source"]
        assert "is not a managed pool" in problem["detail"]
    assert managed.files() == []


def test_content_sent_for_a_pool_outside_the_roots_writes_no_file(
    stack: RunningStack, unmanaged: Pool
) -> None:
    content = b"\x00" * MiB
    url = (
        f"{stack.settings.resolved_api_url}/v1/hypervisors/{HV}/pools/{unmanaged.name}"
        "/volumes/planted.img/content"
    )
    response = requests.put(
        url, data=content, params={"sha256": hashlib.sha256(content).hexdigest()}, timeout=60
    )
    assert response.status_code == 403, response.text
    assert response.json()["errors"][0]["field"] == "params.pool"
    assert unmanaged.files() == ["victim.img"]


def test_a_symlink_in_a_managed_pool_leading_out_is_refused_for_every_change(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool, secret: Path
) -> None:
    (managed.path / "link.img").symlink_to(secret)
    refresh(conn, managed)  # libvirt lists the symlink as a volume
    digest = sha256(secret)
    link = {"pool": managed.name, "name": "link.img"}
    attempts: list[tuple[str, dict[str, Any]]] = [
        (
            "volume.clone",
            {"pool": managed.name, "name": "copy.img", "source": f"{managed.name}/link.img"},
        ),
        ("volume.resize", {**link, "capacity": 512, "allow_shrink": True}),
        ("volume.delete", link),
        ("volume.delete", {"path": str(managed.path / "link.img")}),
    ]
    for kind, params in attempts:
        problem = refused(stack, kind, 403, **params)
        assert (
            f"link.img (resolving to {secret}) is outside the managed pools" in (problem["detail"])
        ), problem
    assert managed.files() == ["link.img"]
    assert (managed.path / "link.img").readlink() == secret
    assert sha256(secret) == digest


def test_a_backing_chain_leaving_the_managed_pools_is_refused_at_any_depth(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool, secret: Path
) -> None:
    qemu_img_create(managed.path / "evil.qcow2", "1M", backing=secret)
    qemu_img_create(managed.path / "mid.qcow2", "1M", backing=secret)
    qemu_img_create(managed.path / "top.qcow2", "1M", managed.path / "mid.qcow2", "qcow2")
    refresh(conn, managed)
    before = managed.files()
    for top in ("evil.qcow2", "top.qcow2"):
        overlay = refused(
            stack,
            "volume.create",
            403,
            pool=managed.name,
            name="overlay.qcow2",
            backing=f"{managed.name}/{top}",
        )
        copy = refused(
            stack,
            "volume.clone",
            403,
            pool=managed.name,
            name="copy.img",
            source=f"{managed.name}/{top}",
        )
        for problem, field in ((overlay, "params.backing"), (copy, "params.source")):
            assert fields(problem) == [field]
            assert problem["detail"].startswith(f"{field} {managed.path}/")
            assert (
                f"refers to the backing file {secret} is outside the managed pools"
                in (problem["detail"])
            )
    assert managed.files() == before


def test_a_missing_backing_file_outside_the_pools_is_refused_as_outside_not_as_missing(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool, area: Area
) -> None:
    # Whether a file exists outside the roots is none of a job's business: the answer is the
    # same 403 whether it does or not.
    missing = area.outside / "no-such-file.img"
    qemu_img_create(managed.path / "dangling.qcow2", "1M", backing=missing)
    qemu_img_create(managed.path / "broken.qcow2", "1M", backing=managed.path / "gone.img")
    refresh(conn, managed)
    params = {"pool": managed.name, "name": "copy.img"}
    outside = refused(stack, "volume.clone", 403, source=f"{managed.name}/dangling.qcow2", **params)
    assert (
        f"refers to the backing file {missing} is outside the managed pools" in (outside["detail"])
    )
    inside = refused(stack, "volume.clone", 422, source=f"{managed.name}/broken.qcow2", **params)
    assert fields(inside) == ["params.source"]
    assert f"qemu-img cannot read {managed.path}/gone.img" in inside["detail"]
    assert "copy.img" not in managed.files()


def test_a_chain_inside_the_managed_pools_is_cloned_and_overlaid(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool
) -> None:
    qemu_img_create(managed.path / "base.qcow2", "1M")
    qemu_img_create(managed.path / "mid.qcow2", "1M", managed.path / "base.qcow2", "qcow2")
    refresh(conn, managed)
    copy = stack.run(
        "volume.clone", HV, pool=managed.name, name="flat.qcow2", source=f"{managed.name}/mid.qcow2"
    )
    assert copy["state"] == "succeeded", copy["error"]
    overlay = stack.run(
        "volume.create", HV, pool=managed.name, name="o.qcow2", backing=f"{managed.name}/mid.qcow2"
    )
    assert overlay["state"] == "succeeded", overlay["error"]
    assert overlay["result"]["backing"] == {
        "path": str(managed.path / "mid.qcow2"),
        "format": "qcow2",
    }


def test_a_network_backing_file_is_refused_before_the_worker_connects_to_it(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool
) -> None:
    # A qcow2 header naming an nbd:// backing (a guest can write one into its own raw disk):
    # reading the chain must not make the root worker connect anywhere.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        backing = f"nbd://127.0.0.1:{port}/x"
        image = managed.path / "net.qcow2"
        create = ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing, "-F", "raw"]
        subprocess.run([*create, str(image), "1M"], check=True)
        refresh(conn, managed)
        problem = refused(
            stack,
            "volume.clone",
            403,
            pool=managed.name,
            name="copy.img",
            source=f"{managed.name}/net.qcow2",
        )
        assert "nbd://127.0.0.1" in problem["detail"] and "not a file path" in problem["detail"]
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody ever knocked
    assert not (managed.path / "copy.img").exists()
