"""``domain.define`` confined on the hypervisor, through the API and a worker on the real
libvirtd: every host path it names (disks, ISOs, kernel, initrd, serial log, display password
file) resolves where the operator allowed or the define is refused before anything is made; a
disk's format is the probed one, whatever the job says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.confinement.conftest import (
    HV,
    Area,
    Pool,
    cron_d,
    domain_names,
    fields,
    job_count,
    post_job,
    qemu_img_create,
    refresh,
    sha256,
)
from tests.support.libvirtd import remove_domain
from tests.support.services import RunningStack

pytestmark = pytest.mark.libvirtd

# How a define's events name what it made; a refusal shows none of them.
CHANGE_STEPS = ("created ", "defined ", "built ", "started ", "removed ", "deleted ")


@pytest.fixture
def names(conn: libvirt.virConnect) -> Iterator[list[str]]:
    """Domain names a test uses; any that got defined is removed afterwards."""
    used: list[str] = []
    yield used
    for name in used:
        remove_domain(conn, name)


def new_name(names: list[str]) -> str:
    name = f"orch-cf-{uuid.uuid4().hex[:8]}"
    names.append(name)
    return name


def spec(name: str, pool: Pool, **extra: Any) -> dict[str, Any]:
    """A small domain on a new disk of ``pool``, defined but not started."""
    return {
        "name": name,
        "memory_mib": 64,
        "vcpus": 1,
        "boot_source": "import",
        "disks": [{"source": {"type": "new_volume", "pool": pool.name, "size_gib": 1 / 1024}}],
        "networks": [],
        "graphics": {"type": "none"},
        "start": False,
        **extra,
    }


def kernel_boot(kernel: Path, initrd: Path | None = None) -> dict[str, Any]:
    boot: dict[str, Any] = {"kernel": str(kernel)}
    if initrd is not None:
        boot["initrd"] = str(initrd)
    return {"boot_source": "kernel", "kernel": boot}


def define_refused(
    stack: RunningStack, conn: libvirt.virConnect, params: dict[str, Any], status: int = 403
) -> dict[str, Any]:
    """The problem of a define the worker refused; no event tells of anything made, and
    libvirt has no domain of that name."""
    done = stack.run("domain.define", HV, **params)
    assert done["state"] == "failed", done["result"]
    problem: dict[str, Any] = done["error"]
    assert problem["status"] == status, problem
    changes = [
        event["message"]
        for event in stack.api.events(done["id"])
        if event["message"].startswith(CHANGE_STEPS)
    ]
    assert changes == []
    assert params["name"] not in domain_names(conn)
    return problem


@pytest.fixture
def secret(area: Area) -> Iterator[Path]:
    path = area.outside / f"secret-{uuid.uuid4().hex[:8]}"
    path.write_text("not yours\n")
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def links(area: Area) -> Iterator[list[Path]]:
    """Symlinks a test makes in the roots; removed afterwards."""
    made: list[Path] = []
    yield made
    for link in made:
        link.unlink(missing_ok=True)


def symlink(links: list[Path], directory: Path, target: Path | str) -> Path:
    link = directory / f"link-{uuid.uuid4().hex[:8]}"
    link.symlink_to(target)
    links.append(link)
    return link


def test_the_api_refuses_host_paths_in_system_directories_with_403(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool, names: list[str]
) -> None:
    name, cron_before, jobs_before = new_name(names), cron_d(), job_count(stack)
    attempts = {
        "params.serials.0.path": {"serials": [{"type": "file", "path": "/etc/cron.d/orch-cf"}]},
        "params.kernel.kernel": kernel_boot(Path("/boot/vmlinuz")),
        "params.kernel.initrd": kernel_boot(Path("/srv/k"), Path("/proc/self/environ")),
        "params.graphics.password_file": {
            "graphics": {"type": "vnc", "password_file": "/etc/shadow"}
        },
        "params.disks.0.source.path": {
            "disks": [{"source": {"type": "path", "path": "/var/lib/libvirt/qemu/x.img"}}]
        },
        "params.cdrom.path": {
            "boot_source": "cdrom",
            "cdrom": {"type": "path", "path": "/root/.ssh/authorized_keys"},
        },
    }
    for field, change in attempts.items():
        response = post_job(stack, "domain.define", **spec(name, managed, **change))
        assert response.status_code == 403, response.text
        problem = response.json()
        assert fields(problem) == [field]
        assert problem["detail"].endswith("a system directory, never allowed")
    assert job_count(stack) == jobs_before
    assert cron_d() == cron_before
    assert name not in domain_names(conn)
    assert managed.files() == []


def test_files_a_domain_reads_come_only_from_the_read_roots_or_managed_pools(
    stack: RunningStack,
    conn: libvirt.virConnect,
    area: Area,
    managed: Pool,
    secret: Path,
    links: list[Path],
    names: list[str],
) -> None:
    name = new_name(names)
    allowed = area.read_root / "vmlinuz"
    allowed.write_bytes(b"kernel")
    via_link = symlink(links, area.read_root, secret)
    attempts = [
        ("params.kernel.kernel", secret, kernel_boot(secret)),
        ("params.kernel.initrd", via_link, kernel_boot(allowed, via_link)),
        (
            "params.graphics.password_file",
            via_link,
            {"graphics": {"type": "vnc", "password_file": str(via_link)}},
        ),
    ]
    for field, given, change in attempts:
        problem = define_refused(stack, conn, spec(name, managed, **change))
        assert fields(problem) == [field]
        resolving = f" (resolving to {secret})" if given != secret else ""
        assert problem["detail"] == (
            f"{field} {given}{resolving} is outside the read roots and managed pools "
            f"(ORCH_READ_ROOTS: {area.read_root}, {stack.settings.var_dir.resolve()}/images)"
        )
        assert (problem["rule"], problem["setting"]) == ("read-roots", "ORCH_READ_ROOTS")
    assert managed.files() == []


def test_a_serial_log_is_written_only_where_consoles_may_be_and_never_over_a_disk(
    stack: RunningStack,
    conn: libvirt.virConnect,
    area: Area,
    managed: Pool,
    links: list[Path],
    names: list[str],
) -> None:
    name, cron_before = new_name(names), cron_d()
    disk = stack.run("volume.create", HV, pool=managed.name, name="disk.img", format="raw",
                     capacity="1M")  # fmt: skip
    assert disk["state"] == "succeeded", disk["error"]
    digest = sha256(managed.path / "disk.img")
    outside = area.outside / f"{name}.log"
    into_cron = symlink(links, area.pool_root, "/etc/cron.d")
    cases = [
        (outside, "console-roots", "is outside where consoles may be written"),
        (into_cron / "orch-cf", "system-directory", "a system directory, never allowed"),
        (managed.path / "disk.img", "console-roots", "a console never writes over a volume"),
    ]
    for path, rule, message in cases:
        serials = [{"type": "file", "path": str(path)}]
        problem = define_refused(stack, conn, spec(name, managed, serials=serials))
        assert fields(problem) == ["params.serials.0.path"]
        assert problem["rule"] == rule
        assert message in problem["detail"], problem["detail"]
    assert not outside.exists()
    assert cron_d() == cron_before
    assert managed.files() == ["disk.img"]
    assert sha256(managed.path / "disk.img") == digest


def test_disks_and_isos_of_a_pool_outside_the_roots_are_refused(
    stack: RunningStack, conn: libvirt.virConnect, managed: Pool, unmanaged: Pool, names: list[str]
) -> None:
    name = new_name(names)
    victim = {"type": "volume", "pool": unmanaged.name, "volume": "victim.img"}
    attempts: dict[str, dict[str, Any]] = {
        "params.disks.0.source": {"disks": [{"source": victim}]},
        "params.disks.0.source.path": {
            "disks": [{"source": {"type": "path", "path": str(unmanaged.path / "victim.img")}}]
        },
        "params.cdrom": {"boot_source": "cdrom", "cdrom": victim},
        "params.disks": {
            "disks": [{"source": {"type": "new_volume", "pool": unmanaged.name, "size_gib": 0.01}}]
        },
    }
    digest = sha256(unmanaged.path / "victim.img")
    for field, change in attempts.items():
        problem = define_refused(stack, conn, spec(name, managed, **change))
        assert fields(problem) == [field], problem
        assert problem["rule"] == "managed-pool"
        assert "ORCH_POOL_ROOTS" in problem["detail"]
    assert unmanaged.files() == ["victim.img"]
    assert sha256(unmanaged.path / "victim.img") == digest
    assert managed.files() == []


def test_a_disk_is_opened_in_its_probed_format_never_the_one_a_job_says(
    stack: RunningStack,
    conn: libvirt.virConnect,
    managed: Pool,
    secret: Path,
    tmp_path: Path,
    names: list[str],
) -> None:
    name = new_name(names)
    for volume, fmt in (("plain.img", "raw"), ("image.qcow2", "qcow2"), ("hijacked.img", "raw")):
        made = stack.run(
            "volume.create", HV, pool=managed.name, name=volume, format=fmt, capacity="1M"
        )
        assert made["state"] == "succeeded", made["error"]
    # What a guest can do to its raw disk: write a qcow2 header naming a host file as backing.
    header = tmp_path / "header.qcow2"
    qemu_img_create(header, "1M", backing=secret)
    with open(managed.path / "hijacked.img", "r+b") as raw_disk:
        raw_disk.write(header.read_bytes())
    refresh(conn, managed)

    def disk(volume: str, fmt: str | None) -> dict[str, Any]:
        source = {"type": "volume", "pool": managed.name, "volume": volume}
        return {"disks": [{"source": source, **({"format": fmt} if fmt else {})}]}

    for volume, said, probed in (("plain.img", "qcow2", "raw"), ("image.qcow2", "raw", "qcow2")):
        params = spec(name, managed, **disk(volume, said))
        problem = define_refused(stack, conn, params, 422)
        assert fields(problem) == ["params.disks.0.format"]
        assert problem["detail"] == (
            f"{said} was given, but {managed.name}/{volume} is a {probed} image as probed on "
            f"the hypervisor; give {probed} or leave format out"
        )
    # Said raw or not said, the probe finds the planted header and its chain is refused.
    for maybe in (None, "raw"):
        problem = define_refused(stack, conn, spec(name, managed, **disk("hijacked.img", maybe)))
        assert fields(problem) == ["params.disks.0.source"]
        assert (
            f"refers to the backing file {secret} is outside the managed pools"
            in (problem["detail"])
        )
    assert managed.files() == ["hijacked.img", "image.qcow2", "plain.img"]

    done = stack.run("domain.define", HV, **spec(name, managed, **disk("plain.img", "raw")))
    assert done["state"] == "succeeded", done["error"]
    assert name in domain_names(conn)


def test_paths_inside_the_roots_define_the_domain_and_undefine_removes_its_disk(
    stack: RunningStack, conn: libvirt.virConnect, area: Area, managed: Pool, names: list[str]
) -> None:
    name = new_name(names)
    kernel, initrd, password = (area.read_root / n for n in ("vmlinuz", "initrd", "vnc.pw"))
    kernel.write_bytes(b"kernel")
    initrd.write_bytes(b"initrd")
    password.write_text("Pw4-vnc!\n")
    console = stack.settings.var_dir.resolve() / "consoles" / f"{name}.log"
    params = spec(
        name,
        managed,
        serials=[{"type": "file", "path": str(console)}],
        graphics={"type": "vnc", "listen": "127.0.0.1", "password_file": str(password)},
        **kernel_boot(kernel, initrd),
    )

    done = stack.run("domain.define", HV, **params)

    assert done["state"] == "succeeded", done["error"]
    assert managed.files() == [f"{name}.qcow2"]
    undone = stack.run("domain.undefine", HV, name=name, remove_storage=True)
    assert undone["state"] == "succeeded", undone["error"]
    assert managed.files() == []


def test_undefine_keeps_the_disks_of_pools_outside_the_roots(
    stack: RunningStack, conn: libvirt.virConnect, unmanaged: Pool, names: list[str]
) -> None:
    name = new_name(names)
    victim = unmanaged.path / "victim.img"
    digest = sha256(victim)
    conn.defineXML(
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64'>hvm</type></os><devices>"
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{victim}'/>"
        "<target dev='vda' bus='virtio'/></disk></devices></domain>"
    )

    done = stack.run("domain.undefine", HV, name=name, remove_storage=True)

    assert done["state"] == "succeeded", done["error"]
    assert done["result"]["removed_volumes"] == []
    messages = [event["message"] for event in stack.api.events(done["id"])]
    assert f"kept {victim}: not in a managed pool (ORCH_POOL_ROOTS)" in messages
    assert name not in domain_names(conn)
    assert sha256(victim) == digest
