"""A fleet of four test-driver hypervisors, each with its own node XML (CPUs, memory, pools),
each served by its own real worker process, plus one declared in settings that never beats;
tokens on, so that the operator's routes can be refused."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.services import RunningStack, test_stack

GIB = 1024**3

NODE_XML = """<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>{cpus}</cores><threads>1</threads>
    <active>{cpus}</active><mhz>2000</mhz><model>x86_64</model>
  </cpu>
  <memory>{memory_kib}</memory>
  <network>
    <name>default</name>
    <bridge name='orch{host}'/>
    <forward mode='nat'/>
    <ip address='127.79.{subnet}.1' netmask='255.255.255.0'>
      <dhcp><range start='127.79.{subnet}.50' end='127.79.{subnet}.99'/></dhcp>
    </ip>
  </network>
{pools}</node>
"""

POOL_XML = """  <pool type='dir'>
    <name>{name}</name>
    <capacity unit='GiB'>{gib}</capacity>
    <allocation unit='GiB'>0</allocation>
    <available unit='GiB'>{gib}</available>
    <target><path>{root}/{host}-{name}</path></target>
  </pool>
"""


@dataclass(frozen=True)
class Node:
    """A test-driver hypervisor: host CPUs, memory (MiB) and pools (name -> GiB)."""

    cpus: int
    memory_mib: int
    pools: dict[str, int]

    def xml(self, host: str, pool_root: Path) -> str:
        """The node, its pools' directories under ``pool_root`` (a managed pool's must lie
        in the pool roots, even on the test driver)."""
        pools = "".join(
            POOL_XML.format(name=name, gib=gib, host=host, root=pool_root)
            for name, gib in self.pools.items()
        )
        # A loopback subnet per node: the address a VM's NIC reports is one only this machine
        # answers on, so waiting for its SSH port reaches nothing outside.
        subnet = sorted(NODES).index(host) + 1 if host in NODES else 99
        return NODE_XML.format(
            cpus=self.cpus,
            memory_kib=self.memory_mib * 1024,
            pools=pools,
            host=host.replace("-", ""),
            subnet=subnet,
        )


# Free memory under ratio 1.0 less 512 MiB reserved: hv-a 7680, hv-b 3584, hv-c 15872; hv-d
# has the most of everything but no pool called "default".
NODES = {
    "hv-a": Node(cpus=4, memory_mib=8192, pools={"default": 100}),
    "hv-b": Node(cpus=2, memory_mib=4096, pools={"default": 20}),
    "hv-c": Node(cpus=8, memory_mib=16384, pools={"default": 200, "fast": 50}),
    "hv-d": Node(cpus=16, memory_mib=65536, pools={"bulk": 1000}),
}
DECLARED = {"name": "hv-spare", "libvirt_uri": "qemu+ssh://spare/system", "labels": {"rack": "r9"}}


class Caller:
    """HTTP as one bearer token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.http.request(method, f"{self.url}{path}", timeout=120, **kwargs)

    def post_job(self, body: dict[str, Any], **params: Any) -> requests.Response:
        return self.request("POST", "/v1/jobs", json=body, params=params)

    def hypervisors(self) -> dict[str, dict[str, Any]]:
        items = self.request("GET", "/v1/hypervisors").json()["items"]
        return {item["name"]: item for item in items}

    def wait_job(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 120
        while True:
            job = self.request("GET", f"/v1/jobs/{job_id}", params={"wait": 30}).json()
            if job["state"] in {"succeeded", "failed", "cancelled", "lost"}:
                return job
            assert time.monotonic() < deadline, job

    def patch(self, name: str, body: dict[str, Any]) -> requests.Response:
        return self.request("PATCH", f"/v1/hypervisors/{name}", json=body)


@dataclass
class Fleet:
    stack: RunningStack
    operator: Caller  # hypervisors:admin, jobs:read, jobs:submit
    user: Caller  # jobs:read, jobs:submit

    def until(self, check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        """``check()`` once it is truthy; the timeout only bounds a failure."""
        deadline = time.monotonic() + timeout
        while not (found := check()):
            assert time.monotonic() < deadline, f"never: {what}"
            time.sleep(0.1)
        return found


def define_body(name: str, memory_mib: int = 1024, vcpus: int = 1, **extra: Any) -> dict[str, Any]:
    """A ``domain.define`` that names no hypervisor: one new 2 GiB volume in pool ``default``,
    no network, left shut off."""
    params = {
        "name": name,
        "memory_mib": memory_mib,
        "vcpus": vcpus,
        "boot_source": "import",
        "disks": [{"source": {"type": "new_volume", "pool": "default", "size_gib": 2}}],
        "networks": [],
        "graphics": {"type": "none"},
        "start": False,
    }
    return {"kind": "domain.define", "params": params, **extra}


@contextmanager
def running_fleet(tmp_path: Path, redis_server: str) -> Iterator[Fleet]:
    uris = {}
    for name, node in NODES.items():
        path = tmp_path / f"{name}.xml"
        path.write_text(node.xml(name, (tmp_path / "var" / "pools").resolve()))
        uris[name] = f"test://{path}"
    operator, user = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    tokens = {
        operator: ["hypervisors:admin", "jobs:read", "jobs:submit"],
        user: ["jobs:read", "jobs:submit"],
    }
    # test_stack takes the workers to start as ``hypervisors``: the declared ones come from the
    # environment, as an operator's ORCH_HYPERVISORS would.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ORCH_HYPERVISORS", json.dumps([DECLARED]))
        with test_stack(tmp_path, redis_server, uris, api_tokens=tokens, api_workers=2) as stack:
            url = stack.settings.resolved_api_url
            fleet = Fleet(stack, Caller(url, operator), Caller(url, user))
            fleet.until(
                lambda: set(fleet.user.hypervisors()) == {*NODES, "hv-spare"},
                "the recorder lists every hypervisor",
            )
            yield fleet


@pytest.fixture
def fleet(tmp_path: Path, redis_server: str) -> Iterator[Fleet]:
    """A fresh fleet for one test."""
    with running_fleet(tmp_path, redis_server) as running:
        yield running


@pytest.fixture(scope="module")
def module_fleet(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[Fleet]:
    """One fleet for a module's tests, which then run in order on what the earlier left."""
    with running_fleet(tmp_path_factory.mktemp("fleet"), redis_server) as running:
        yield running
