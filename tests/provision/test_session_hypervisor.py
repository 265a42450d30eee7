"""Two real hypervisors on one machine: the system libvirtd (``qemu:///system``) and a private
session libvirtd (``qemu:///session``, see :mod:`tests.support.session_libvirt`), each served by
its own worker process. A VM placed on the session hypervisor boots there, and only there.

A session libvirtd has no ``default`` network, and an unprivileged daemon can make no bridge: the
session VMs have no NIC (``domain.define`` with ``networks: []``, ``vm.provision`` with
``network: none``); a provision that asks for the ``default`` network is refused there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from orchestrator.local.bootsector import MARKER
from tests.domains.test_jobs_real_vm import (
    HV,
    NESTED_SAFE_CPU,
    VM_ROOT,
    VmPool,
    boot_spec,
    pool_in,
    throwaway_pool,
    wait_for_marker,
)
from tests.provision.test_real_vm import provision_params
from tests.support import services
from tests.support.services import RunningStack
from tests.support.session_libvirt import SessionLibvirt, session_libvirtd

SESSION_HV = "kvm-session"


@pytest.fixture(scope="module")
def session(qemu_uri: str) -> Iterator[SessionLibvirt]:
    # Under /var/tmp, not pytest's private tmp: the daemon runs as another user.
    with session_libvirtd(VM_ROOT) as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    qemu_uri: str,
    session: SessionLibvirt,
    redis_server: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStack]:
    with services.test_stack(
        tmp_path_factory.mktemp("stack"),
        redis_server,
        {HV: qemu_uri, SESSION_HV: session.uri},
        cpu_mode=NESTED_SAFE_CPU,
        heartbeat_interval=0.5,
        heartbeat_ttl=20,
        pool_roots=[VM_ROOT],
        read_roots=[VM_ROOT],
    ) as running:
        yield running


@pytest.fixture(scope="module")
def session_pool(session: SessionLibvirt) -> Iterator[VmPool]:
    """A directory pool of the session daemon holding the boot-sector base image."""
    root = session.make_directory("vms")
    with pool_in(session.uri, root, owner=(session.uid, session.gid)) as vm:
        yield vm


def run_ok(stack: RunningStack, kind: str, **params: Any) -> dict[str, Any]:
    done = stack.run(kind, SESSION_HV, **params)
    assert done["state"] == "succeeded", done["error"]
    assert done["hypervisor"] == SESSION_HV
    result: dict[str, Any] = done["result"]
    return result


def domain_names(uri: str) -> set[str]:
    conn = libvirt.open(uri)
    try:
        return {domain.name() for domain in conn.listAllDomains()}
    finally:
        conn.close()


def test_both_hypervisors_are_up_each_on_its_own_libvirt(
    stack: RunningStack, session: SessionLibvirt, qemu_uri: str
) -> None:
    items = {hv["name"]: hv for hv in stack.api.get("/v1/hypervisors")["items"]}
    assert set(items) == {HV, SESSION_HV}
    assert all(hv["alive"] for hv in items.values()), items
    assert items[HV]["libvirt_uri"] == qemu_uri
    assert items[SESSION_HV]["libvirt_uri"] == session.uri


def test_a_vm_defined_on_the_session_hypervisor_boots_there_and_only_there(
    stack: RunningStack, session: SessionLibvirt, session_pool: VmPool, qemu_uri: str
) -> None:
    name = session_pool.domain_name("session")
    defined = run_ok(stack, "domain.define", **boot_spec(session_pool, name))

    assert (defined["changed"], defined["state"]) == (True, "running")
    assert wait_for_marker(session_pool.serial_log(name)).startswith(MARKER)
    assert name in domain_names(session.uri)
    assert name not in domain_names(qemu_uri)
    # The session daemon made the overlay, as its own unprivileged user.
    overlay = session_pool.directory / f"{name}.qcow2"
    assert overlay.stat().st_uid == session.uid
    listed = stack.api.get("/v1/domains")
    assert listed["unavailable"] == []
    assert [d["hypervisor"] for d in listed["items"] if d["name"] == name] == [SESSION_HV]
    assert stack.api.get(f"/v1/domains/{SESSION_HV}/{name}")["state"] == "running"

    assert run_ok(stack, "domain.destroy", name=name)["state"] == "shutoff"
    removed = run_ok(stack, "domain.undefine", name=name, remove_storage=True)
    assert removed["removed_volumes"] == [str(overlay)]
    assert name not in domain_names(session.uri)
    assert session_pool.volumes() == {"base.img"}


def test_provision_on_the_session_hypervisor_is_a_422_naming_network_for_want_of_one(
    stack: RunningStack, session_pool: VmPool
) -> None:
    name = session_pool.domain_name("prov")
    done = stack.run("vm.provision", SESSION_HV, **provision_params(session_pool, name))

    assert done["state"] == "failed"
    assert done["hypervisor"] == SESSION_HV
    assert done["error"]["status"] == 422, done["error"]
    assert [e["field"] for e in done["error"]["errors"]] == ["params.network"]
    assert session_pool.volumes() == {"base.img"}
    assert name not in {d.name() for d in session_pool.conn.listAllDomains()}


def test_a_vm_provisioned_without_a_nic_boots_on_the_session_hypervisor(
    stack: RunningStack, session: SessionLibvirt, session_pool: VmPool, qemu_uri: str
) -> None:
    name = session_pool.domain_name("nonic")
    params = provision_params(session_pool, name, network="none")
    done = stack.run("vm.provision", SESSION_HV, **params)

    assert done["state"] == "succeeded", done["error"]
    result = done["result"]
    assert (result["hypervisor"], result["name"], result["state"]) == (SESSION_HV, name, "running")
    assert (result["mac"], result["address"], result["readiness"]) == (None, None, "running")
    assert wait_for_marker(session_pool.serial_log(name)).startswith(MARKER)
    assert name in domain_names(session.uri)
    assert name not in domain_names(qemu_uri)


@pytest.fixture
def twin_pool(qemu_uri: str, session_pool: VmPool) -> Iterator[VmPool]:
    """A system pool of the same name as the session one, holding the same base image: a
    count request's overlays may go on either hypervisor."""
    with throwaway_pool(qemu_uri, session_pool.name) as twin:
        yield twin


def test_count_four_spreads_over_both_hypervisors_and_every_vm_boots(
    stack: RunningStack,
    session: SessionLibvirt,
    session_pool: VmPool,
    twin_pool: VmPool,
    qemu_uri: str,
) -> None:
    logs = session.make_directory(f"count-{uuid.uuid4().hex[:6]}")
    prefix = f"orch-t-count-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{index}" for index in range(1, 5)]
    session_pool.domains.extend(names)
    twin_pool.domains.extend(names)
    params = {
        "count": 4,
        "name": f"{prefix}-{{index}}",
        "memory_mib": 1024,
        "disk": {"base_image": f"{session_pool.name}/base.img", "size": "1M"},
        "network": "none",
        "graphics": "none",
        "serials": [{"type": "file", "path": f"{logs}/{prefix}-{{index}}.log"}],
    }

    # Placement goes by the heartbeats: wait until both report the pool and its base image.
    deadline = time.monotonic() + 60
    while not all(
        session_pool.name in ((hv["capacity"] or {}).get("pools") or {})
        for hv in stack.api.get("/v1/hypervisors")["items"]
    ):
        assert time.monotonic() < deadline, "the heartbeats never listed the pools"
        time.sleep(0.2)

    done = stack.run("vm.provision", None, **params)

    assert done["state"] == "succeeded", done["error"]
    assert done["children"]["succeeded"] == 4
    kids = stack.api.get(f"/v1/jobs?parent={done['id']}")["items"]
    where = {kid["params"]["name"]: kid["hypervisor"] for kid in kids}
    assert sorted(where) == names
    # Spread: both report this machine's memory; whichever holds less takes the next VM, so
    # once 1 GiB VMs outweigh what the system one already runs, they alternate.
    assert set(where.values()) == {HV, SESSION_HV}
    on_system, on_session = domain_names(qemu_uri), domain_names(session.uri)
    for name, hypervisor in where.items():
        assert wait_for_marker(logs / f"{name}.log").startswith(MARKER), name
        assert (name in on_session, name in on_system) == (
            hypervisor == SESSION_HV,
            hypervisor == HV,
        )
