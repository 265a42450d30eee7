"""What a worker's heartbeat says its hypervisor has and holds, as ``GET /v1/hypervisors`` shows
it: a test-driver hypervisor with its own node XML (CPUs, memory, a pool with base images, ISOs
and domain disks, a running and a stopped domain), served by a real worker process."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.support.services import RunningStack

HV = "hv-cap"
GiB = 1024**3
MiB = 1024**2

NODE_XML = """\
<node xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
  <cpu><mhz>2000</mhz><model>i686</model><active>12</active><nodes>1</nodes><sockets>1</sockets>
    <cores>6</cores><threads>2</threads></cpu>
  <memory>16777216</memory>
  <domain type="test">
    <name>web-1</name>
    <memory unit="MiB">2048</memory>
    <vcpu>2</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type="file" device="disk"><source file="/pools/images/web-1.qcow2"/>
        <target dev="vda"/></disk>
      <disk type="file" device="cdrom"><source file="/pools/images/install.iso"/>
        <target dev="hdc"/></disk>
    </devices>
  </domain>
  <domain type="test">
    <name>db-1</name>
    <memory unit="MiB">4096</memory>
    <vcpu current="3">4</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type="volume" device="disk"><source pool="images" volume="db-1.qcow2"/>
        <target dev="vda"/></disk>
      <disk type="file" device="cdrom"><source file="/pools/images/install.iso"/>
        <target dev="hdc"/></disk>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
  <pool type="dir">
    <name>images</name>
    <target><path>/pools/images</path></target>
    <volume type="file"><name>base.qcow2</name><capacity unit="GiB">10</capacity>
      <allocation unit="GiB">2</allocation></volume>
    <volume type="file"><name>web-1.qcow2</name><capacity unit="GiB">20</capacity>
      <allocation unit="GiB">1</allocation></volume>
    <volume type="file"><name>db-1.qcow2</name><capacity unit="GiB">40</capacity>
      <allocation unit="GiB">1</allocation></volume>
    <volume type="file"><name>install.iso</name><capacity unit="MiB">700</capacity>
      <allocation unit="MiB">700</allocation></volume>
    <volume type="file"><name>notes.txt</name><capacity>100</capacity>
      <allocation>100</allocation></volume>
  </pool>
</node>
"""
# Both domains' disks in the pool, the ISO they share counted once.
DOMAIN_DISKS = 20 * GiB + 40 * GiB + 700 * MiB


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    node = tmp_path / "node.xml"
    node.write_text(NODE_XML)
    return f"test://{node}"


@pytest.fixture
def stack(make_stack: Any, node_uri: str) -> RunningStack:
    running: RunningStack = make_stack({HV: node_uri}, pool_roots=[Path("/pools")])
    return running


def hypervisor(stack: RunningStack) -> dict[str, Any]:
    shown: dict[str, Any] = stack.api.get(f"/v1/hypervisors/{HV}")
    return shown


def wait_for(stack: RunningStack, what: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The hypervisor's document once ``what`` holds for it (each beat reads capacity anew)."""
    deadline = time.monotonic() + 60
    while True:
        shown = hypervisor(stack)
        if what(shown):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"the heartbeat never showed it; last: {shown}")
        time.sleep(0.1)


def test_the_heartbeat_reports_cpus_memory_pool_space_images_and_what_domains_hold(
    stack: RunningStack, node_uri: str
) -> None:
    shown = hypervisor(stack)
    capacity = shown["capacity"]
    assert (capacity["cpus"], capacity["memory_mib"]) == (12, 16384)
    conn = libvirt.open(node_uri)  # the same node, fresh: what the worker's libvirt reports
    try:
        _, total, used, free = conn.storagePoolLookupByName("images").info()
    finally:
        conn.close()
    assert capacity["pools"] == {
        # web-1.qcow2 and db-1.qcow2 are the domains' disks, notes.txt no image; the ISO that
        # both domains attach read-only can still start a new one.
        "images": {
            "capacity": total,
            "allocation": used,
            "available": free,
            "images": ["base.qcow2", "install.iso"],
        }
    }
    assert shown["allocated"] == {
        "domains": 2,
        "vcpus": 2 + 3,  # db-1 boots 3 of its 4
        "memory_mib": 2048 + 4096,  # the stopped domain's memory is promised too
        "disk_bytes": {"images": DOMAIN_DISKS},
        "disk_bytes_total": DOMAIN_DISKS,
    }
    assert {d["name"]: d["state"] for d in capacity["domains"]} == {
        "web-1": "running",
        "db-1": "shutoff",
    }
    assert capacity["running_domains"] == 1


def test_the_test_driver_reports_every_cpu_mode_it_accepts_and_auto_takes_the_best(
    stack: RunningStack,
) -> None:
    shown = hypervisor(stack)
    assert shown["cpu_modes"] == ["host-passthrough", "host-model", "custom"]
    assert shown["cpu_probe"]["boots"] == ["host-passthrough", "host-model", "qemu64,-svm"]
    assert shown["cpu_probe"]["refused"] == {}
    assert shown["cpu_mode"] == "host-passthrough"
    names = {d["name"] for d in shown["capacity"]["domains"]}
    assert names == {"web-1", "db-1"}  # no probe domain is left behind


def test_pool_space_images_and_allocation_follow_the_jobs_that_change_them(
    stack: RunningStack,
) -> None:
    made = stack.run("volume.create", HV, pool="images", name="centos.qcow2", capacity="5G")
    assert made["state"] == "succeeded", made["error"]
    wait_for(stack, lambda hv: "centos.qcow2" in hv["capacity"]["pools"]["images"]["images"])

    spec = {
        "name": "app-1",
        "memory_mib": 1024,
        "vcpus": 2,
        "boot_source": "import",
        "disks": [{"source": {"type": "new_volume", "pool": "images", "size_gib": 8}}],
        "networks": [],
        "start": False,
    }
    defined = stack.run("domain.define", HV, **spec)
    assert defined["state"] == "succeeded", defined["error"]
    held = wait_for(stack, lambda hv: hv["allocated"]["domains"] == 3)
    assert held["allocated"]["vcpus"] == 5 + 2
    assert held["allocated"]["memory_mib"] == 6144 + 1024
    assert held["allocated"]["disk_bytes"] == {"images": DOMAIN_DISKS + 8 * GiB}
    assert "app-1.qcow2" not in held["capacity"]["pools"]["images"]["images"]
