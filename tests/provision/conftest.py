"""Fixtures of the ``vm.provision`` tests: a private test-driver hypervisor whose libvirt network
hands out loopback addresses, served by the worker's own job runner on the session's Redis.

The test driver reports, for a running domain's NIC on a libvirt network, the address after the
start of that network's DHCP range (as if leased); with the range on a loopback subnet of its
own, the address a job discovers is one this machine answers on, and an sshd there is a guest
that accepts SSH.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.storage.conftest import WorkerJobs, worker_runtime

POOL = "default-pool"
BASE = "base.qcow2"
BASE_SIZE = 2 * 1024**3
ISO = "installer.iso"

NODE_XML = """<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>8</cores><threads>1</threads>
    <active>8</active><mhz>2000</mhz><model>x86_64</model>
  </cpu>
  <memory>16777216</memory>
  <network>
    <name>default</name>
    <bridge name='orchprov0'/>
    <forward mode='nat'/>
    <ip address='{subnet}.1' netmask='255.255.255.0'>
      <dhcp><range start='{subnet}.50' end='{subnet}.99'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>{pool}</name>
    <capacity unit='bytes'>107374182400</capacity>
    <allocation unit='bytes'>0</allocation>
    <available unit='bytes'>107374182400</available>
    <target><path>/{pool}</path></target>
    <volume type='file'>
      <name>{base}</name>
      <capacity unit='bytes'>{base_size}</capacity>
      <allocation unit='bytes'>1048576</allocation>
      <target><path>/{pool}/{base}</path><format type='qcow2'/></target>
    </volume>
    <volume type='file'>
      <name>{iso}</name>
      <capacity unit='bytes'>1048576</capacity>
      <allocation unit='bytes'>1048576</allocation>
      <target><path>/{pool}/{iso}</path><format type='raw'/></target>
    </volume>
  </pool>
</node>
"""


@dataclass(frozen=True)
class DriverHypervisor:
    """A test-driver hypervisor and the address its DHCP "leases" to a domain's first NIC."""

    uri: str
    guest_address: str


@pytest.fixture
def test_hypervisor(tmp_path: Path) -> DriverHypervisor:
    # A loopback /24 of its own per test: 127.0.0.0/8 all answers locally on Linux, and no
    # other test's sshd listens on port 22 of it.
    subnet = f"127.{random.randint(100, 250)}.{random.randint(0, 255)}"
    node = tmp_path / "node.xml"
    node.write_text(
        NODE_XML.format(subnet=subnet, pool=POOL, base=BASE, base_size=BASE_SIZE, iso=ISO)
    )
    return DriverHypervisor(f"test://{node}", f"{subnet}.51")


@pytest.fixture
def jobs(
    test_hypervisor: DriverHypervisor, redis_server: str, tmp_path: Path
) -> Iterator[WorkerJobs]:
    """Jobs run by the worker's runner on the test hypervisor, one runtime per test."""
    runtime = worker_runtime(test_hypervisor.uri, redis_server, tmp_path / "var")
    yield WorkerJobs(runtime)
    runtime.connector.close()
    runtime.live.redis.close()
