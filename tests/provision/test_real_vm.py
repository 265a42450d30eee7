"""``vm.provision`` through the API on the real libvirtd: a VM that boots the boot-sector base
image through a qcow2 overlay, with a cloud-init seed, on libvirt's ``default`` network; and
failures part-way that leave no volume, seed or domain behind.

The boot sector runs no DHCP client, so the VM gets no address: ``wait_for`` stays ``running``.
The stack and pools are the real-VM domain tests' (a worker for ``qemu:///system`` with the CPU
that nested KVM runs, a throwaway pool per test holding ``base.img``).
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest
import requests
import yaml

from orchestrator.client import ApiError
from orchestrator.local.bootsector import MARKER
from tests.domains import test_jobs_real_vm as real_vm
from tests.domains.test_jobs_define_checks import assert_nothing_created
from tests.domains.test_jobs_real_vm import HV, VmPool, virsh, wait_for_marker
from tests.support.services import RunningStack

stack = real_vm.stack
vm_pool = real_vm.vm_pool
default_network = real_vm.default_network

STEPS = ["check", "disks", "seed", "define", "start", "address"]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx6T0Yq1Q2m0wq5n0u5m9Yb8QK3u3kq2mP6ZP3f7w9t test"


def provision_params(vm: VmPool, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vcpus": 1,
        "memory_mib": 64,
        "disk": {"base_image": f"{vm.name}/base.img", "size": "1M"},
        "serials": [{"type": "file", "path": str(vm.serial_log(name))}],
        "cloud_init": {"user": "ops", "ssh_authorized_keys": [KEY], "hostname": "web-one"},
        **extra,
    }


def messages(stack: RunningStack, job_id: str) -> list[str]:
    return [e["message"] for e in stack.api.events(job_id)]


def step_events(stack: RunningStack, job_id: str) -> list[str]:
    """The steps the job reported done, in order."""
    return [m.split()[1] for m in messages(stack, job_id) if m.startswith("step ")]


def iso_file(iso: str, name: str) -> str:
    done = subprocess.run(
        ["isoinfo", "-R", "-i", iso, "-x", f"/{name}"], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_a_vm_boots_its_overlay_with_a_seed_and_shows_where_it_landed(
    stack: RunningStack, vm_pool: VmPool, default_network: str
) -> None:
    name = vm_pool.domain_name("prov")
    done = stack.run("vm.provision", HV, **provision_params(vm_pool, name))

    assert done["state"] == "succeeded", done["error"]
    assert done["attempt"] == 1
    result = done["result"]
    assert (result["hypervisor"], result["name"], result["state"]) == (HV, name, "running")
    assert wait_for_marker(vm_pool.serial_log(name)).startswith(MARKER)
    overlay = vm_pool.directory / f"{name}.qcow2"
    info = subprocess.run(
        ["qemu-img", "info", "-U", str(overlay)], capture_output=True, text=True, check=True
    )
    assert f"backing file: {vm_pool.directory / 'base.img'}" in info.stdout
    seed = vm_pool.directory / f"{name}-cidata.iso"
    user_data = iso_file(str(seed), "user-data")
    assert user_data.startswith("#cloud-config\n")
    added = yaml.safe_load(user_data)["users"][1]
    assert (added["name"], added["ssh_authorized_keys"]) == ("ops", [KEY])
    assert yaml.safe_load(iso_file(str(seed), "meta-data"))["local-hostname"] == "web-one"
    display = virsh("vncdisplay", name)  # "127.0.0.1:N"
    assert result["vnc"]["port"] == 5900 + int(display.rsplit(":", 1)[1])
    assert result["mac"] == virsh("domiflist", name).splitlines()[-1].split()[-1]
    assert (result["address"], result["readiness"]) == (None, "running")
    assert set(result["timings"]) == {"check", "disks", "seed", "define", "start", "address"}
    assert step_events(stack, done["id"]) == [
        "check",
        "disks",
        "seed",
        "define",
        "start",
        "address",
    ]

    shown = stack.api.get(f"/v1/domains/{HV}/{name}")
    assert (shown["state"], shown["address"], shown["readiness"]) == ("running", None, "running")
    assert shown["addresses"] == []
    assert [d["path"] for d in shown["disks"] if d["device"] == "disk"] == [str(overlay)]

    again = stack.run("vm.provision", HV, **provision_params(vm_pool, name))
    assert again["state"] == "succeeded", again["error"]
    assert again["result"]["changed"] is False
    assert vm_pool.volumes() == {"base.img", f"{name}.qcow2", f"{name}-cidata.iso"}


def test_the_inventorys_domains_group_lists_a_vm_once_provisioned(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("inv")
    params = provision_params(vm_pool, name, cloud_init=None)
    done = stack.run("vm.provision", HV, **{**params, "cloud_init": None})
    assert done["state"] == "succeeded", done["error"]
    api = stack.settings.resolved_api_url
    put = requests.put(f"{api}/v1/inventories/provisioned", json={"text": "[web]\n"}, timeout=10)
    assert put.status_code in (200, 201), put.text

    # The group is built from the heartbeats, which read the hypervisor every half second.
    deadline = time.monotonic() + 60
    while True:
        hosts = requests.get(
            f"{api}/v1/inventories/provisioned/hosts?pattern=domains&builtin_groups=true",
            timeout=10,
        ).json()["hosts"]
        if name in hosts or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert name in hosts


def test_a_start_that_fails_removes_the_disk_seed_and_domain_it_made(
    stack: RunningStack, vm_pool: VmPool, default_network: str
) -> None:
    name = vm_pool.domain_name("nostart")
    # qemu cannot open a serial log in a directory that does not exist: the start fails after
    # the disk, the seed and the definition were made.
    log = vm_pool.root / "no-such-dir" / "serial.log"
    params = provision_params(vm_pool, name, serials=[{"type": "file", "path": str(log)}])
    done = stack.run("vm.provision", HV, **params)

    assert done["state"] == "failed"
    assert "could not start" in done["error"]["detail"]
    seen = messages(stack, done["id"])
    assert f"defined domain {name} (kvm, pc)" in seen or f"defined domain {name} (qemu, pc)" in seen
    assert f"removed domain {name} after the failure" in seen
    assert f"removed volume {vm_pool.name}/{name}.qcow2 after the failure" in seen
    assert any(m.startswith("removed cloud-init seed") for m in seen)
    assert_nothing_created(vm_pool, name)
    assert not (vm_pool.directory / f"{name}-cidata.iso").exists()


def test_a_network_the_hypervisor_lacks_is_a_422_naming_network_and_nothing_is_made(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("nonet")
    done = stack.run("vm.provision", HV, **provision_params(vm_pool, name, network="orch-none"))

    assert done["state"] == "failed"
    assert done["error"]["status"] == 422
    assert [e["field"] for e in done["error"]["errors"]] == ["params.network"]
    assert_nothing_created(vm_pool, name)


def test_the_api_refuses_a_plain_password_before_any_job_exists(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("pw")
    params = provision_params(vm_pool, name)
    params["cloud_init"] = {"user": "ops", "password": "hunter2-secret"}
    with pytest.raises(ApiError) as refused:
        stack.submit("vm.provision", HV, **params)
    problem = refused.value.problem
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["params.cloud_init.password"]
    assert "hunter2-secret" not in str(problem)
