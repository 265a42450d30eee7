"""The README's "Using it" sequence, word for word through the CLI, against a worker on the real
libvirtd with nothing configured about its CPU: a 6G ``c7.qcow2`` in pool ``default`` at
/var/lib/libvirt/images, then ``virt-install --name=c73 ... --os-variant=rhel7``. On nested KVM
the default CPU used to make qemu abort (MSR 0x10a); the worker now starts c73 with the best CPU
that booted when it started. Everything the sequence made is removed afterwards."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest
from click.testing import CliRunner

from orchestrator.cli import main
from tests.capacity.conftest import SLOW_LIVENESS, remove_pool
from tests.support.libvirtd import remove_domain
from tests.support.services import RunningStack

GiB = 1024**3
POOL_DIR = "/var/lib/libvirt/images"
README = [
    ["submit", "ping", "--hypervisor", "local", "--wait"],
    ["submit", "pool.ensure", "-p", "name=default", "-p", f"path={POOL_DIR}", "--wait"],
    ["submit", "volume.create", "-p", "pool=default", "-p", "name=c7.qcow2", "-p",
     "capacity=6G", "--wait"],
    ["virt-install", "--name=c73", "--vcpus=1", "-r", "1024", "--import",
     "--disk", f"path={POOL_DIR}/c7.qcow2", "--network", "network=default",
     "--graphics", "vnc,listen=0.0.0.0", "--noautoconsole", "--os-variant=rhel7"],
]  # fmt: skip


@pytest.fixture
def readme_host(qemu_uri: str) -> Iterator[libvirt.virConnect]:
    """The real libvirtd with the running ``default`` network the sequence names, and none of
    its names taken; afterwards c73, c7.qcow2 and (when the sequence made it) the pool go."""
    conn = libvirt.open(qemu_uri)
    try:
        network = conn.networkLookupByName("default")
    except libvirt.libvirtError:
        conn.close()
        pytest.skip("libvirt has no 'default' network on this machine")
    taken = [n for n in ("c73",) if n in {d.name() for d in conn.listAllDomains()}]
    if taken or _volume(conn) is not None:
        conn.close()
        pytest.skip("c73 or default/c7.qcow2 already exists on this libvirtd")
    had_pool = "default" in {p.name() for p in conn.listAllStoragePools()}
    started = not network.isActive()
    if started:
        network.create()
    try:
        yield conn
    finally:
        remove_domain(conn, "c73")
        volume = _volume(conn)
        if volume is not None:
            volume.delete(0)
        if not had_pool:
            remove_pool(conn, "default")
        if started:
            network.destroy()
        conn.close()


def _volume(conn: libvirt.virConnect) -> libvirt.virStorageVol | None:
    try:
        pool = conn.storagePoolLookupByName("default")
        pool.refresh(0)
        return pool.storageVolLookupByName("c7.qcow2")
    except libvirt.libvirtError:
        return None


def test_the_readme_sequence_runs_c73_as_written_on_this_host(
    make_stack: Any, qemu_uri: str, readme_host: libvirt.virConnect
) -> None:
    stack: RunningStack = make_stack({"local": qemu_uri}, **SLOW_LIVENESS)
    env = {"ORCH_API_URL": stack.settings.resolved_api_url}
    outputs = []
    for args in README:
        ran = CliRunner().invoke(main, args, env=env)
        assert ran.exit_code == 0, f"orchestrator {' '.join(args)}:\n{ran.output}"
        outputs.append(ran.output)
    for output in outputs[:3]:
        assert re.search(r"^job \S+ succeeded", output, re.MULTILINE), output
    assert "Domain c73 is running on local" in outputs[3]

    domain = readme_host.lookupByName("c73")
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    beat = stack.api.get("/v1/hypervisors/local")
    cpu = ET.fromstring(domain.XMLDesc(0)).find("cpu")
    assert cpu is not None and cpu.get("mode") == beat["cpu_modes"][0]

    # The heartbeat counts c73 and its disk, and c7.qcow2, now c73's disk, is no base image.
    deadline = time.monotonic() + 60
    while not any(d["name"] == "c73" for d in beat["capacity"]["domains"]):
        assert time.monotonic() < deadline, "c73 never showed in the heartbeat"
        time.sleep(0.2)
        beat = stack.api.get("/v1/hypervisors/local")
    assert beat["allocated"]["vcpus"] >= 1 and beat["allocated"]["memory_mib"] >= 1024
    assert beat["allocated"]["disk_bytes"]["default"] >= 6 * GiB
    assert "c7.qcow2" not in beat["capacity"]["pools"]["default"]["images"]
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING  # still: qemu did not abort later
