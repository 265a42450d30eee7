"""``vm.provision`` on a test-driver hypervisor, run by the worker's own job runner: every path of
the job (overlay or empty disk and ISO, the same request again, another spec under the name, a
volume left by an earlier attempt, a wait that times out or is cancelled, a network or pool the
hypervisor lacks) and what each leaves in libvirt."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from orchestrator.inventory import parse_inventory, registry_domains, with_builtin_groups
from orchestrator.kinds.provision import ProvisionParams
from orchestrator.local.sshd_hosts import SshdHost, missing_parts
from tests.provision.conftest import BASE, BASE_SIZE, ISO, POOL, DriverHypervisor
from tests.storage.conftest import WorkerJobs
from tests.support.sshd import start_same_port
from workers.heartbeat import Heartbeat

STEPS = ["check", "disks", "define", "start", "address"]


def overlay(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vcpus": 2,
        "memory_mib": 512,
        "disk": {"base_image": f"{POOL}/{BASE}"},
        **extra,
    }


def conn_of(jobs: WorkerJobs) -> libvirt.virConnect:
    """The worker's own connection: the test driver's state lives in this process."""
    return jobs.runtime.connector()


def volumes(jobs: WorkerJobs) -> set[str]:
    return set(conn_of(jobs).storagePoolLookupByName(POOL).listVolumes())


def domains(jobs: WorkerJobs) -> set[str]:
    return {d.name() for d in conn_of(jobs).listAllDomains()}


def step_events(jobs: WorkerJobs, job_id: str) -> list[str]:
    """The steps the job reported done, in order."""
    return [m.split()[1] for m in jobs.messages(job_id) if m.startswith("step ")]


def test_an_overlay_vm_is_defined_started_and_reports_where_it_landed_and_its_address(
    jobs: WorkerJobs, test_hypervisor: DriverHypervisor
) -> None:
    job = jobs.submit("vm.provision", overlay("web1"))

    assert job.state == "succeeded", job.error
    result = job.result
    assert result["hypervisor"] == "storage-test"
    assert (result["name"], result["state"], result["changed"]) == ("web1", "running", True)
    assert (result["vcpus"], result["memory_mib"]) == (2, 512)
    domain = conn_of(jobs).lookupByName("web1")
    assert domain.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    # The address libvirt reports for the NIC: the test driver's stand-in for a DHCP lease.
    assert result["address"] == test_hypervisor.guest_address
    assert result["addresses"][0]["source"] == "lease"
    assert result["readiness"] == "address"
    mac = ET.fromstring(domain.XMLDesc(0)).find("devices/interface/mac")
    assert mac is not None and result["mac"] == mac.get("address")
    assert result["vnc"] is not None
    assert [d["path"] for d in result["disks"]] == [f"/{POOL}/web1.qcow2"]
    overlay_xml = ET.fromstring(
        conn_of(jobs).storagePoolLookupByName(POOL).storageVolLookupByName("web1.qcow2").XMLDesc()
    )
    # No size given: the overlay is as large as its base.
    assert int(overlay_xml.findtext("capacity") or 0) == BASE_SIZE
    assert overlay_xml.findtext("backingStore/path") == f"/{POOL}/{BASE}"
    assert set(result["timings"]) == set(STEPS)
    assert all(seconds >= 0 for seconds in result["timings"].values())
    assert step_events(jobs, job.id) == STEPS
    assert job.messages.index("started domain web1") < job.messages.index(
        f"domain web1 has address {test_hypervisor.guest_address} (lease)"
    )


def test_the_same_request_again_changes_nothing_and_another_spec_is_a_conflict(
    jobs: WorkerJobs,
) -> None:
    first = jobs.run("vm.provision", overlay("web1"))
    conn_of(jobs).lookupByName("web1").destroy()  # stopped since: the request starts it again

    again = jobs.submit("vm.provision", overlay("web1"))
    assert again.state == "succeeded", again.error
    assert again.result["changed"] is True
    assert again.result["uuid"] == first["uuid"]
    assert again.result["volumes"] == []
    assert "domain web1 is already defined from this spec; its disks are kept" in again.messages
    assert jobs.run("vm.provision", overlay("web1"))["changed"] is False

    error = jobs.fail("vm.provision", overlay("web1", memory_mib=1024), "conflict", "memory_mib")
    assert [d["field"] for d in error["differences"]] == ["memory_mib"]
    assert conn_of(jobs).lookupByName("web1").info()[1] == 512 * 1024
    assert volumes(jobs) == {BASE, ISO, "web1.qcow2"}


def test_a_new_attempt_after_the_worker_vanished_mid_job_starts_what_it_had_defined(
    jobs: WorkerJobs,
) -> None:
    # What attempt 1 left when its worker died between define and start: the overlay and the
    # stopped domain, defined from the same spec (domain.define makes exactly that).
    spec = ProvisionParams.model_validate(overlay("web1")).domain_spec()
    jobs.run("domain.define", {**spec.model_dump(mode="json"), "start": False})
    job_id = "job-vanished-worker"
    jobs.live.claim(job_id, 1, "storage-test/gone", "vanished-instance")

    second = jobs.run_next_attempt(job_id, "vm.provision", overlay("web1"))

    assert (second.attempt, second.state) == (2, "succeeded"), second.error
    assert second.result["changed"] is True
    assert second.result["volumes"] == []
    assert "started domain web1" in second.messages
    assert conn_of(jobs).lookupByName("web1").state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert volumes(jobs) == {BASE, ISO, "web1.qcow2"}


def test_a_disk_left_by_an_earlier_attempt_is_taken_and_kept_when_the_job_fails(
    jobs: WorkerJobs,
) -> None:
    made = jobs.run(
        "volume.create",
        {"pool": POOL, "name": "web1.qcow2", "backing": f"{POOL}/{BASE}", "capacity": BASE_SIZE},
    )
    assert made["changed"] is True

    job = jobs.submit("vm.provision", overlay("web1", wait_for="ssh", wait_timeout=0.5))

    assert job.state == "failed"
    assert f"volume {POOL}/web1.qcow2 already exists as asked" in job.messages
    # The domain this attempt defined is gone again; the disk it did not make stays.
    assert "web1" not in domains(jobs)
    assert volumes(jobs) == {BASE, ISO, "web1.qcow2"}


def test_an_empty_disk_and_an_iso_boot_the_installer_then_the_disk(jobs: WorkerJobs) -> None:
    params = {
        "name": "inst1",
        "memory_mib": 1024,
        "disk": {"pool": POOL, "size": "10G"},
        "cdrom": f"{POOL}/{ISO}",
        "graphics": "none",
    }
    result = jobs.run("vm.provision", params)

    volume = conn_of(jobs).storagePoolLookupByName(POOL).storageVolLookupByName("inst1.qcow2")
    assert volume.info()[1] == 10 * 1024**3
    assert result["vnc"] is None
    domain = conn_of(jobs).lookupByName("inst1")
    running = ET.fromstring(domain.XMLDesc(0))
    assert [b.get("dev") for b in running.iterfind("os/boot")] == ["cdrom", "hd"]
    assert running.find("on_reboot") is not None and running.findtext("on_reboot") == "destroy"
    # The definition the next start boots: the disk, the ISO's drive emptied.
    final = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert [b.get("dev") for b in final.iterfind("os/boot")] == ["hd"]
    assert final.find("devices/disk[@device='cdrom']/source") is None


def test_a_wait_that_times_out_removes_the_domain_and_disk_the_job_made(
    jobs: WorkerJobs, test_hypervisor: DriverHypervisor
) -> None:
    # Nothing listens on port 22 of the address: the wait fails at its timeout.
    error = jobs.fail(
        "vm.provision",
        overlay("web1", wait_for="ssh", wait_timeout=1),
        "job-failed",
        f"did not reach port 22 accepting connections within 1s; "
        f"it has address {test_hypervisor.guest_address}",
    )
    assert error["status"] == 500
    assert "web1" not in domains(jobs)
    assert volumes(jobs) == {BASE, ISO}
    messages = jobs.messages()
    assert "removed domain web1 after the failure" in messages
    assert f"removed volume {POOL}/web1.qcow2 after the failure" in messages


def test_a_cancel_during_the_wait_ends_the_job_and_removes_what_it_made(jobs: WorkerJobs) -> None:
    job_id = "job-cancel-wait"

    def cancel_once_waiting() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(m.startswith("waiting up to") for m in jobs.messages(job_id)):
                jobs.live.request_cancel(job_id)
                return
            time.sleep(0.02)

    canceller = threading.Thread(target=cancel_once_waiting)
    canceller.start()
    job = jobs.submit("vm.provision", overlay("web1", wait_for="ssh", wait_timeout=120), job_id)
    canceller.join()

    assert job.state == "failed"
    assert job.error is not None and job.error["detail"].startswith("cancelled while waiting")
    assert "web1" not in domains(jobs)
    assert volumes(jobs) == {BASE, ISO}


@pytest.fixture
def guest_sshd(test_hypervisor: DriverHypervisor, tmp_path: Path) -> Iterator[SshdHost]:
    """A real sshd on port 22 of the address the test hypervisor gives its guests."""
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    host = SshdHost("guest", test_hypervisor.guest_address, tmp_path / "sshd", tmp_path / "keys")
    host.prepare()
    host.start()  # on a free port first, which writes its configuration
    host.stop()
    config = host.dir / "sshd_config"
    config.write_text(config.read_text().replace(f":{host.port}\n", ":22\n", 1), encoding="utf-8")
    host.port = 22
    start_same_port(host)
    yield host
    host.stop()


def test_wait_for_ssh_succeeds_once_port_22_of_the_address_accepts(
    jobs: WorkerJobs, guest_sshd: SshdHost
) -> None:
    result = jobs.run("vm.provision", overlay("web1", wait_for="ssh", wait_timeout=60))

    assert result["readiness"] == "ssh"
    assert result["address"] == guest_sshd.address


def test_what_the_hypervisor_lacks_fails_naming_the_parameter_before_anything_is_made(
    jobs: WorkerJobs,
) -> None:
    cases = {
        "params.network": overlay("web1", network="nosuchnet"),
        "params.disk": overlay("web1", disk={"base_image": f"{POOL}/missing.qcow2"}),
        "params.memory_mib": overlay("web1", memory_mib=64 * 1024),
        # The test driver's pools are no directory here: the seed ISO has nowhere to go.
        "params.cloud_init": overlay("web1", cloud_init={"hostname": "web1"}),
    }
    for field, params in cases.items():
        job = jobs.submit("vm.provision", params)
        assert job.state == "failed", field
        assert job.error is not None
        assert [e["field"] for e in job.error["errors"]] == [field], job.error
        assert not any(m.startswith(("created ", "defined ")) for m in job.messages)
    missing_pool = jobs.fail(
        "vm.provision", overlay("web1", disk={"pool": "nopool", "size": "1G"}), "not-found"
    )
    assert "nopool" in missing_pool["detail"]
    assert "web1" not in domains(jobs)
    assert volumes(jobs) == {BASE, ISO}


def test_a_provisioned_vm_joins_the_inventorys_domains_group_at_its_address(
    jobs: WorkerJobs, test_hypervisor: DriverHypervisor
) -> None:
    jobs.run("vm.provision", overlay("web1"))
    runtime = jobs.runtime
    beat = Heartbeat(runtime.settings, runtime.live, runtime.instance, runtime.connector)
    beat.refresh_capacity()
    beat.beat()

    hypervisors = runtime.live.hypervisors()
    inventory = with_builtin_groups(
        parse_inventory("", "ini", source="job"), hypervisors, registry_domains(hypervisors)
    )

    assert "web1" in inventory.groups["domains"].hosts
    assert inventory.hosts["web1"].vars["ansible_host"] == test_hypervisor.guest_address
    assert inventory.hosts["web1"].vars["hypervisor"] == "storage-test"
