"""Domain jobs where a driver or host differs from the plain case: an installer boot that also
starts (its final definition keeps the domain's UUID), undefining on a driver that refuses the
NVRAM flag, and starting a domain whose CPU mode the worker saw failing to boot.

The test-driver cases run through the worker's own job runner on a private hypervisor (the
provision tests' fixtures); the others on the real libvirtd, through the real-VM module's stack.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.errors import InvalidInput
from tests.domains import test_jobs_real_vm as real_vm
from tests.domains.test_jobs_real_vm import (
    HV,
    VmPool,
    boot_spec,
    libvirt_state,
    run_ok,
    wait_for_marker,
)
from tests.provision.conftest import ISO, POOL, jobs, test_hypervisor
from tests.storage.conftest import WorkerJobs
from tests.support.services import RunningStack
from workers.domains import lifecycle
from workers.domains.cpu_probe import probe_domain_xml
from workers.domains.host import HostFactsCache

# The provision tests' fixtures: a test-driver hypervisor with a pool, an ISO and a network.
__all__ = ["jobs", "test_hypervisor"]
# Where libvirtd keeps a qemu:///system domain's managed save image.
MANAGED_SAVE_DIR = Path("/var/lib/libvirt/qemu/save")


def conn_of(jobs: WorkerJobs) -> libvirt.virConnect:
    """The worker's own connection: the test driver's state lives in this process."""
    return jobs.runtime.connector()


def installer(name: str, boot_source: str) -> dict[str, Any]:
    """A domain that boots an installer (the pool's ISO, or the network) onto a new disk."""
    spec: dict[str, Any] = {
        "name": name,
        "memory_mib": 512,
        "boot_source": boot_source,
        "disks": [{"source": {"type": "new_volume", "pool": POOL, "size_gib": 1}}],
        "graphics": {"type": "none"},
    }
    if boot_source == "cdrom":
        spec["cdrom"] = {"type": "volume", "pool": POOL, "volume": ISO}
    return spec


def boot_devices(xml: str) -> list[str | None]:
    return [b.get("dev") for b in ET.fromstring(xml).iterfind("os/boot")]


@pytest.mark.parametrize(
    ("boot_source", "installer_device"), [("cdrom", "cdrom"), ("pxe", "network")]
)
def test_an_installer_boot_that_starts_defines_its_final_form_under_the_same_uuid(
    jobs: WorkerJobs, boot_source: str, installer_device: str
) -> None:
    result = jobs.run("domain.define", installer("inst1", boot_source))

    domain = conn_of(jobs).lookupByName("inst1")
    assert (result["state"], result["changed"]) == ("running", True)
    assert result["uuid"] == domain.UUIDString()
    assert boot_devices(domain.XMLDesc(0))[0] == installer_device
    final = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert ET.fromstring(final).findtext("uuid") == result["uuid"]
    assert boot_devices(final) == ["hd"]
    assert [d.name() for d in conn_of(jobs).listAllDomains()].count("inst1") == 1


def test_undefine_on_a_driver_without_the_nvram_flag_removes_the_domain_and_its_disk(
    jobs: WorkerJobs,
) -> None:
    defined = jobs.run("domain.define", {**installer("inst1", "pxe"), "start": False})
    assert defined["state"] == "shutoff"

    removed = jobs.run("domain.undefine", {"name": "inst1", "remove_storage": True})

    assert removed == {
        "name": "inst1",
        "changed": True,
        "removed_volumes": [f"/{POOL}/inst1.qcow2"],
    }
    assert "inst1" not in {d.name() for d in conn_of(jobs).listAllDomains()}
    assert "inst1.qcow2" not in conn_of(jobs).storagePoolLookupByName(POOL).listVolumes()
    assert jobs.run("domain.undefine", {"name": "inst1"})["changed"] is False


# The real libvirtd: a stack whose worker learned at start which guest CPUs boot, and a
# throwaway pool per test (the real-VM module's fixtures).
stack = real_vm.stack
vm_pool = real_vm.vm_pool


def domain_with_cpu(conn: libvirt.virConnect, name: str, cpu: str) -> str:
    """A tiny diskless domain whose guest CPU is ``cpu`` (a ``--cpu`` value)."""
    facts = HostFactsCache().get(conn)
    root = ET.fromstring(probe_domain_xml(facts.domain_type, facts.arch, cpu))
    name_element = root.find("name")
    assert name_element is not None
    name_element.text = name
    return ET.tostring(root, encoding="unicode")


def refused_cpu(stack: RunningStack) -> str:
    """A guest CPU the worker saw failing to boot here; skips where every candidate boots."""
    refused = stack.api.get(f"/v1/hypervisors/{HV}")["cpu_probe"]["refused"]
    if not refused:
        pytest.skip("every candidate CPU boots on this hypervisor: nothing to refuse")
    return str(next(iter(refused)))


def test_lifecycle_start_refuses_a_domain_whose_cpu_does_not_boot_here_before_starting_it(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    cpu = refused_cpu(stack)
    name = vm_pool.domain_name("cpu")
    domain = vm_pool.conn.defineXML(domain_with_cpu(vm_pool.conn, name, cpu))
    # What the stack's worker learned at start, read back from its var_dir as a restarted
    # worker reads it.
    facts_cache = HostFactsCache()
    modes = facts_cache.learn_cpu_modes(vm_pool.conn, stack.settings.var_dir)
    assert modes.cached is True

    with pytest.raises(InvalidInput) as refused:
        lifecycle.start(domain, facts_cache.get(vm_pool.conn))

    problem = refused.value.to_problem()
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "params.name"
    assert f"domain {name}: cpu {cpu} does not boot on this hypervisor" in problem["detail"]
    assert f"CPUs that boot here, best first: {', '.join(modes.boots)}" in problem["detail"]
    assert libvirt_state(vm_pool.conn, name) == libvirt.VIR_DOMAIN_SHUTOFF


def test_starting_a_domain_whose_cpu_does_not_boot_here_is_a_422_naming_the_cpus_that_do(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    cpu = refused_cpu(stack)
    boots = stack.api.get(f"/v1/hypervisors/{HV}")["cpu_probe"]["boots"]
    name = vm_pool.domain_name("cpu")
    vm_pool.conn.defineXML(domain_with_cpu(vm_pool.conn, name, cpu))

    done = stack.run("domain.start", HV, name=name)

    assert done["state"] == "failed"
    problem = done["error"]
    assert problem["status"] == 422, problem
    assert [e["field"] for e in problem["errors"]] == ["params.name"]
    assert f"domain {name}: cpu {cpu} does not boot on this hypervisor" in problem["detail"]
    assert f"CPUs that boot here, best first: {', '.join(boots)}" in problem["detail"]
    assert "Assertion" not in problem["detail"]
    assert libvirt_state(vm_pool.conn, name) == libvirt.VIR_DOMAIN_SHUTOFF


def test_undefine_on_the_real_libvirtd_removes_the_domains_managed_save_too(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("saved")
    assert run_ok(stack, "domain.define", **boot_spec(vm_pool, name))["state"] == "running"
    wait_for_marker(vm_pool.serial_log(name))
    domain = vm_pool.conn.lookupByName(name)
    domain.managedSave(0)
    assert domain.hasManagedSaveImage(0) == 1
    save_image = MANAGED_SAVE_DIR / f"{name}.save"
    assert save_image.exists()

    removed = run_ok(stack, "domain.undefine", name=name, remove_storage=True)

    assert removed["changed"] is True
    assert name not in {d.name() for d in vm_pool.conn.listAllDomains()}
    assert not save_image.exists()
    assert vm_pool.volumes() == {"base.img"}
