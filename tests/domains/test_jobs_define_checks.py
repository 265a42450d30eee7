"""``domain.define`` refusing bad input and cleaning up after failures, on the real libvirtd.

Bad names are refused by the API itself; what only the hypervisor knows (pools, files, networks,
its CPUs and memory) fails the job with a 422 problem before anything is created. A define that
fails after creating its disks (here: qemu cannot bind the VNC port) removes them again.
"""

from __future__ import annotations

import socket
import subprocess
from typing import Any

import pytest

from orchestrator.client import ApiError
from tests.domains import test_jobs_real_vm as real_vm
from tests.domains.test_jobs_real_vm import HV, VmPool, boot_spec, run_ok
from tests.support.services import RunningStack

# The real-VM module's fixtures: a stack for this module, a throwaway pool per test.
stack = real_vm.stack
vm_pool = real_vm.vm_pool
default_network = real_vm.default_network


# How a define's events name the changes it made (or undid); a refusal shows none of them.
CHANGE_STEPS = ("created ", "defined ", "built ", "started ", "removed ", "deleted ")


def assert_nothing_created(vm: VmPool, name: str) -> None:
    assert vm.volumes() == {"base.img"}
    assert name not in {d.name() for d in vm.conn.listAllDomains()}


def assert_refused_before_any_change(events: list[dict[str, Any]], error: dict[str, Any]) -> None:
    """The job's events, as ``GET /v1/jobs/<id>/events`` lists them: it ran, then failed with
    ``error`` as its last event, and no event between tells of a disk, seed or domain made."""
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert [e["state"] for e in events if e["state"]] == ["queued", "running", "failed"], events
    assert events[-1]["state"] == "failed"
    assert events[-1]["message"] == f"failed: {error['detail']}"
    changes = [e["message"] for e in events if e["message"].startswith(CHANGE_STEPS)]
    assert changes == [], changes


@pytest.mark.parametrize("bad", ["bad<name", "a&b", 'say"hi', "it's", "a/b", "-lead", "x" * 65])
def test_the_api_refuses_names_outside_libvirts_rules_with_422(
    stack: RunningStack, vm_pool: VmPool, bad: str
) -> None:
    with pytest.raises(ApiError) as refused:
        stack.submit("domain.define", HV, **boot_spec(vm_pool, bad))
    problem = refused.value.problem
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["params.name"]
    assert vm_pool.volumes() == {"base.img"}


def _refused_by_worker(stack: RunningStack, spec: dict[str, Any]) -> dict[str, Any]:
    """The finished job, failed with a 422 problem."""
    done = stack.run("domain.define", HV, **spec)
    assert done["state"] == "failed"
    assert done["error"]["status"] == 422, done["error"]
    return done


def test_what_the_hypervisor_lacks_is_a_422_before_anything_is_created(
    stack: RunningStack, vm_pool: VmPool, default_network: str
) -> None:
    name = vm_pool.domain_name("bad")
    cases: dict[str, dict[str, Any]] = {
        "params.disks.0.source.path": {
            "disks": [{"source": {"type": "path", "path": str(vm_pool.directory / "gone.img")}}]
        },
        "params.memory_mib": {"memory_mib": 16 * 1024 * 1024},
        "params.vcpus": {"vcpus": 512},
        "params.cdrom.path": {
            "boot_source": "cdrom",
            "cdrom": {"type": "path", "path": str(vm_pool.directory / "missing.iso")},
        },
        "params.networks.0.source": {"networks": [{"source": "no-such-net"}]},
    }
    for field, change in cases.items():
        done = _refused_by_worker(stack, {**boot_spec(vm_pool, name, default_network), **change})
        error = done["error"]
        assert [e["field"] for e in error["errors"]] == [field], error
        assert_refused_before_any_change(stack.api.events(done["id"]), error)
        assert_nothing_created(vm_pool, name)


def test_a_define_that_fails_after_creating_disks_removes_them(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("undo")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = boot_spec(
            vm_pool, name, graphics={"type": "vnc", "listen": "127.0.0.1", "port": port}
        )
        done = stack.run("domain.define", HV, **spec)
    assert done["state"] == "failed"
    assert "could not start" in done["error"]["detail"]
    messages = [e["message"] for e in stack.api.events(done["id"])]
    assert any(m.startswith(f"created disk {vm_pool.name}/{name}.qcow2") for m in messages)
    assert any(m.startswith(f"removed volume {vm_pool.name}/{name}.qcow2") for m in messages)
    assert_nothing_created(vm_pool, name)


def test_cloud_init_seed_and_os_variant_substitution_are_reported_and_removed_with_storage(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("seed")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx6T0Yq1Q2m0wq5n0u5m9Yb8QK3u3kq2mP6ZP3f7w9t test"
    spec = boot_spec(
        vm_pool,
        name,
        os_variant="rhel7",
        memory_mib=1024,
        start=False,
        cloud_init={"ssh_authorized_keys": [key]},
    )
    done = stack.run("domain.define", HV, **spec)
    assert done["state"] == "succeeded", done["error"]
    messages = [e["message"] for e in stack.api.events(done["id"])]
    assert "os variant rhel7 resolved to rhel7.0" in messages
    result = done["result"]
    assert result["state"] == "shutoff" and result["os_variant"] == "rhel7.0"
    seed = vm_pool.directory / f"{name}-cidata.iso"
    assert [d["path"] for d in result["disks"] if d["device"] == "cdrom"] == [str(seed)]
    header = subprocess.run(
        ["isoinfo", "-d", "-i", str(seed)], capture_output=True, text=True, check=True
    ).stdout
    assert "Volume id: cidata" in header
    listing = subprocess.run(
        ["isoinfo", "-R", "-f", "-i", str(seed)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(listing) == ["/meta-data", "/user-data"]

    removed = run_ok(stack, "domain.undefine", name=name, remove_storage=True)
    assert sorted(removed["removed_volumes"]) == sorted(
        [str(vm_pool.directory / f"{name}.qcow2"), str(seed)]
    )
    assert_nothing_created(vm_pool, name)
