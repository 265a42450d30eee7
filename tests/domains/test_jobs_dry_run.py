"""``POST /v1/jobs?dry_run=true`` for ``domain.define``: the XML and volumes, nothing changed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests

from orchestrator.domains.dryrun import dry_run, plan_define
from orchestrator.domains.spec import DomainSpec
from orchestrator.errors import InvalidInput
from tests.domains import test_jobs_real_vm as real_vm
from tests.domains.test_jobs_real_vm import HV, VmPool, boot_spec
from tests.support.services import RunningStack

stack = real_vm.stack
vm_pool = real_vm.vm_pool

SPEC: dict[str, Any] = {
    "name": "web1",
    "memory_mib": 1024,
    "boot_source": "import",
    "os_variant": "rhel7",
    "disks": [
        {"source": {"type": "new_volume", "pool": "vms", "size_gib": 8, "backing_volume": "b"}},
        {"source": {"type": "path", "path": "/srv/vms/data.raw", "size_gib": 1}, "format": "raw"},
    ],
    "graphics": {"type": "vnc", "password_file": "/srv/orchestrator/vnc.pw"},
    "cloud_init": {"ssh_authorized_keys": ["ssh-ed25519 AAAAC3Nza test"]},
}
DISPLAY_PASSWORD = "s3cret"
WITH_PASSWORD: dict[str, Any] = {**SPEC, "graphics": {"type": "vnc", "password": DISPLAY_PASSWORD}}
FACTS = {
    "cpu_mode": "qemu64,-svm",
    "pools": {"vms": "/srv/vms"},
    "capacity": {"cpus": 2, "memory_mib": 4096},
}


def test_a_dry_run_lists_the_volumes_and_renders_the_xml() -> None:
    plan = dry_run(SPEC, FACTS)
    assert [(v["pool"], v["name"], v["format"], v["capacity"]) for v in plan["volumes"]] == [
        ("vms", "web1.qcow2", "qcow2", 8 * 1024**3),
        ("vms", "data.raw", "raw", 1024**3),
    ]
    assert plan["volumes"][0]["backing_volume"] == "b"
    assert plan["volumes"][1]["only_if_missing"] is True
    assert plan["os_variant"] == {"requested": "rhel7", "resolved": "rhel7.0", "substituted": True}
    assert plan["cloud_init_seed"] == "/srv/vms/web1-cidata.iso"
    root = ET.fromstring(plan["xml"])
    assert root.findtext("name") == "web1"
    assert root.find("cpu/model") is not None and root.findtext("cpu/model") == "qemu64"
    # The password stays in its file on the hypervisor: the API never reads it.
    assert root.find("devices/graphics").get("passwd") is None  # type: ignore[union-attr]


def test_a_local_dry_run_of_a_spec_with_a_display_password_never_shows_it() -> None:
    """``orchestrator virt-install --dry-run ... --graphics vnc,password=...`` renders locally,
    so its spec carries the password itself."""
    spec = DomainSpec.model_validate(WITH_PASSWORD)
    assert spec.graphics.password is not None
    assert spec.graphics.password.get_secret_value() == DISPLAY_PASSWORD
    plan = plan_define(spec, FACTS)
    graphics = ET.fromstring(plan["xml"]).find("devices/graphics")
    assert graphics is not None and graphics.get("type") == "vnc"
    assert graphics.get("passwd") is None
    assert DISPLAY_PASSWORD not in json.dumps(plan)


def test_a_job_dry_run_refuses_a_display_password_without_echoing_it() -> None:
    with pytest.raises(InvalidInput) as refused:
        dry_run(WITH_PASSWORD, FACTS)
    problem = refused.value.to_problem()
    assert [e["field"] for e in problem["errors"]] == ["params.graphics.password"]
    assert DISPLAY_PASSWORD not in json.dumps(problem)


def test_a_dry_run_refuses_more_memory_than_the_heartbeat_reports() -> None:
    with pytest.raises(InvalidInput) as refused:
        dry_run({**SPEC, "memory_mib": 8192}, FACTS)
    assert refused.value.extra["errors"][0]["field"] == "params.memory_mib"


def test_the_api_answers_a_dry_run_with_200_and_creates_no_job_and_no_volume(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("dry")
    url = f"{stack.settings.resolved_api_url}/v1/jobs"
    before = len(stack.api.list_jobs({"limit": 500}))
    body = {"kind": "domain.define", "hypervisor": HV, "params": boot_spec(vm_pool, name)}
    answer = requests.post(url, params={"dry_run": "true"}, json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert ET.fromstring(plan["xml"]).findtext("name") == name
    assert [(v["pool"], v["name"]) for v in plan["volumes"]] == [(vm_pool.name, f"{name}.qcow2")]
    assert len(stack.api.list_jobs({"limit": 500})) == before
    assert vm_pool.volumes() == {"base.img"}

    secret = {**body, "params": {**body["params"], "graphics": WITH_PASSWORD["graphics"]}}
    refused = requests.post(url, params={"dry_run": "true"}, json=secret, timeout=10)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "params.graphics.password"
    assert DISPLAY_PASSWORD not in refused.text

    wrong = requests.post(
        url, params={"dry_run": "true"}, json={"kind": "ping", "params": {}}, timeout=10
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "kind"
