"""Domain jobs on the real libvirtd with real VMs: a boot sector on a qcow2 overlay proves the
guest ran (its marker reaches a file-backed serial port), and every power action leaves the
state libvirt reports.

One stack (API, recorder, a worker for ``qemu:///system`` with the qemu64 CPU that nested KVM
runs) serves the module; each test uses its own directory pool and removes its domains.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.local.bootsector import MARKER, write_base_image
from tests.support import services
from tests.support.libvirtd import remove_domain
from tests.support.services import RunningStack

HV = "kvm"
NESTED_SAFE_CPU = "qemu64,-svm"
# Each test's pool, serial logs and password files live in its own directory under /var/tmp
# (where qemu, running as another user, can reach them): the worker must allow it as a root.
VM_ROOT = Path("/var/tmp")


@pytest.fixture(scope="module")
def stack(
    qemu_uri: str, redis_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    # libvirtd answers the heartbeat's capacity read only after a destroy finishes (seconds
    # while qemu exits), so the liveness here is slower than the pipeline tests' 1.5 s.
    with services.test_stack(
        tmp_path_factory.mktemp("stack"),
        redis_server,
        {HV: qemu_uri},
        cpu_mode=NESTED_SAFE_CPU,
        heartbeat_interval=0.5,
        heartbeat_ttl=20,
        pool_roots=[VM_ROOT],
        read_roots=[VM_ROOT],
    ) as running:
        yield running


@pytest.fixture(scope="module")
def default_network(qemu_uri: str) -> Iterator[str]:
    """libvirt's ``default`` network, started for the module if it was not running."""
    conn = libvirt.open(qemu_uri)
    try:
        network = conn.networkLookupByName("default")
    except libvirt.libvirtError:
        conn.close()
        pytest.skip("libvirt has no 'default' network on this machine")
    started = not network.isActive()
    if started:
        network.create()
    try:
        yield "default"
    finally:
        if started:
            network.destroy()
        conn.close()


@dataclass
class VmPool:
    """A throwaway directory pool with the boot-sector base image, and the domains to remove."""

    conn: libvirt.virConnect
    name: str
    root: Path
    domains: list[str]

    @property
    def directory(self) -> Path:
        return self.root / "pool"

    def domain_name(self, label: str) -> str:
        name = f"orch-t-{label}-{uuid.uuid4().hex[:6]}"
        self.domains.append(name)
        return name

    def volumes(self) -> set[str]:
        pool = self.conn.storagePoolLookupByName(self.name)
        pool.refresh(0)
        return set(pool.listVolumes())

    def serial_log(self, domain: str) -> Path:
        return self.root / f"{domain}.serial.log"


@pytest.fixture
def vm_pool(qemu_uri: str) -> Iterator[VmPool]:
    with throwaway_pool(qemu_uri) as vm:
        yield vm


@contextmanager
def throwaway_pool(uri: str, name: str | None = None) -> Iterator[VmPool]:
    """A transient directory pool on ``uri`` holding the boot-sector base image, in a fresh
    directory removed afterwards (see :func:`pool_in`)."""
    # Under /var/tmp, not pytest's private tmp: qemu runs as another user and must reach it.
    root = Path(tempfile.mkdtemp(prefix="orch-vm-", dir=VM_ROOT))
    root.chmod(0o755)
    try:
        with pool_in(uri, root, name) as vm:
            yield vm
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def pool_in(
    uri: str, root: Path, name: str | None = None, owner: tuple[int, int] | None = None
) -> Iterator[VmPool]:
    """A transient directory pool ``root/pool`` on ``uri`` (owned by ``owner``, a uid and
    gid, when given) holding the boot-sector base image; on the way out, the domains the test
    named are removed, then the pool."""
    (root / "pool").mkdir(mode=0o755)
    if owner is not None:
        os.chown(root / "pool", *owner)
    write_base_image(root / "pool" / "base.img")
    conn = libvirt.open(uri)
    name = name or f"orch-t-{uuid.uuid4().hex[:8]}"
    xml = (
        f"<pool type='dir'><name>{name}</name><target><path>{root / 'pool'}</path></target></pool>"
    )
    pool = conn.storagePoolCreateXML(xml, 0)
    vm = VmPool(conn, name, root, [])
    try:
        yield vm
    finally:
        try:
            for domain_name in vm.domains:
                remove_domain(conn, domain_name)
        finally:
            pool.destroy()
            conn.close()


def boot_spec(vm: VmPool, name: str, network: str | None = None, **extra: Any) -> dict[str, Any]:
    """A domain that boots the base image through a fresh qcow2 overlay."""
    spec: dict[str, Any] = {
        "name": name,
        "memory_mib": 64,
        "vcpus": 1,
        "boot_source": "import",
        "disks": [
            {
                "source": {
                    "type": "new_volume",
                    "pool": vm.name,
                    "size_gib": 1 / 1024,
                    "backing_volume": "base.img",
                }
            }
        ],
        "networks": [{"source": network}] if network else [],
        "graphics": {"type": "vnc", "listen": "127.0.0.1"},
        "serials": [{"type": "file", "path": str(vm.serial_log(name))}],
    }
    spec.update(extra)
    return spec


def wait_for_marker(path: Path, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = path.read_bytes() if path.exists() else b""
        if MARKER in data:
            return data
        time.sleep(0.1)
    raise AssertionError(f"the guest never wrote {MARKER!r} to {path}")


def virsh(*args: str) -> str:
    done = subprocess.run(
        ["virsh", "-c", "qemu:///system", *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def libvirt_state(conn: libvirt.virConnect, name: str) -> int:
    return int(conn.lookupByName(name).state()[0])


def run_ok(stack: RunningStack, kind: str, **params: Any) -> dict[str, Any]:
    done = stack.run(kind, HV, **params)
    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] == 1, "the job ran twice"
    result: dict[str, Any] = done["result"]
    return result


def test_a_defined_vm_boots_its_overlay_and_every_power_action_shows_in_libvirt(
    stack: RunningStack, vm_pool: VmPool, default_network: str
) -> None:
    name = vm_pool.domain_name("life")
    spec = boot_spec(vm_pool, name, network=default_network)

    defined = run_ok(stack, "domain.define", **spec)
    assert defined["changed"] is True
    assert defined["state"] == "running"
    assert wait_for_marker(vm_pool.serial_log(name)).startswith(MARKER)
    overlay = vm_pool.directory / f"{name}.qcow2"
    info = subprocess.run(
        ["qemu-img", "info", "-U", str(overlay)], capture_output=True, text=True, check=True
    )
    assert f"backing file: {vm_pool.directory / 'base.img'}" in info.stdout

    shown = stack.api.get(f"/v1/domains/{HV}/{name}")
    display = virsh("vncdisplay", name)  # "127.0.0.1:N"
    assert shown["vnc"]["port"] == 5900 + int(display.rsplit(":", 1)[1])
    assert shown["vnc"]["host"] == "127.0.0.1"
    assert shown["state"] == "running" and shown["vcpus"] == 1 and shown["memory_mib"] == 64
    mac = virsh("domiflist", name).splitlines()[-1].split()[-1]
    assert [i["mac"] for i in shown["interfaces"]] == [mac]
    assert shown["disks"][0]["path"] == str(overlay)
    listed = stack.api.get("/v1/domains")["items"]
    assert any(d["name"] == name and d["hypervisor"] == HV for d in listed)

    again = run_ok(stack, "domain.define", **spec)
    assert again["changed"] is False

    conflict = stack.run("domain.define", HV, **{**spec, "memory_mib": 96})
    assert conflict["state"] == "failed"
    assert conflict["error"]["status"] == 409
    assert [d["field"] for d in conflict["error"]["differences"]] == ["memory_mib"]

    conn = vm_pool.conn
    assert run_ok(stack, "domain.suspend", name=name)["state"] == "paused"
    assert libvirt_state(conn, name) == libvirt.VIR_DOMAIN_PAUSED
    assert run_ok(stack, "domain.suspend", name=name)["changed"] is False
    assert run_ok(stack, "domain.resume", name=name)["state"] == "running"
    assert libvirt_state(conn, name) == libvirt.VIR_DOMAIN_RUNNING
    assert run_ok(stack, "domain.reboot", name=name, force=True)["state"] == "running"

    # The boot sector has no ACPI handler: force ends it when the short timeout runs out.
    stopped = run_ok(stack, "domain.shutdown", name=name, timeout=0.5, force=True)
    assert stopped["state"] == "shutoff" and stopped["changed"] is True
    assert libvirt_state(conn, name) == libvirt.VIR_DOMAIN_SHUTOFF

    assert run_ok(stack, "domain.start", name=name)["state"] == "running"
    assert libvirt_state(conn, name) == libvirt.VIR_DOMAIN_RUNNING
    assert run_ok(stack, "domain.destroy", name=name)["state"] == "shutoff"
    assert run_ok(stack, "domain.destroy", name=name)["changed"] is False
    assert libvirt_state(conn, name) == libvirt.VIR_DOMAIN_SHUTOFF

    assert run_ok(stack, "domain.set-autostart", name=name, autostart=True)["autostart"] is True
    assert conn.lookupByName(name).autostart() == 1

    removed = run_ok(stack, "domain.undefine", name=name, remove_storage=True)
    assert removed["removed_volumes"] == [str(overlay)]
    assert name not in {d.name() for d in conn.listAllDomains()}
    assert vm_pool.volumes() == {"base.img"}
    assert run_ok(stack, "domain.undefine", name=name)["changed"] is False
