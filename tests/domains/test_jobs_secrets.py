"""Secrets of ``domain.define`` stay on the hypervisor: a display password comes from a file the
worker reads and reaches only libvirt, never the job's parameters, events, result or SQL rows; a
literal password in a job is refused at the API. cloud-init user_data is plain configuration and
reaches the seed ISO exactly as given.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt
import pytest
import requests
from click.testing import CliRunner

from orchestrator.client import ApiError
from orchestrator.domains.cli import virt_install_command
from orchestrator.models import Job
from tests.domains import test_jobs_real_vm as real_vm
from tests.domains.test_jobs_define_checks import assert_nothing_created
from tests.domains.test_jobs_real_vm import HV, VmPool, boot_spec, run_ok
from tests.support.services import RunningStack

stack = real_vm.stack
vm_pool = real_vm.vm_pool

SECRET = "Pw4-vnc!"  # 8 characters: the VNC maximum


def _password_file(vm: VmPool, content: str) -> Path:
    path = vm.root / "display.pw"
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    return path


def _sql_text(stack: RunningStack) -> str:
    """Every row of the job database, as SQL statements."""
    path = stack.settings.resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return "\n".join(db.iterdump())


def _job_as_the_api_shows_it(stack: RunningStack, job_id: str) -> str:
    return json.dumps([stack.api.job(job_id), stack.api.events(job_id)])


def _vnc_security_types(port: int) -> list[int]:
    """The RFB 3.8 security types the VNC server offers (2: VNC password, 1: none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as vnc:
        assert vnc.recv(12).startswith(b"RFB ")
        vnc.sendall(b"RFB 003.008\n")
        count = vnc.recv(1)[0]
        return list(vnc.recv(count))


def test_a_password_file_reaches_libvirt_and_no_job_record(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("pwfile")
    path = _password_file(vm_pool, SECRET + "\n")
    graphics = {"type": "vnc", "listen": "127.0.0.1", "password_file": str(path)}
    spec = boot_spec(vm_pool, name, graphics=graphics)

    done = stack.run("domain.define", HV, **spec)
    assert done["state"] == "succeeded", done["error"]
    domain = vm_pool.conn.lookupByName(name)
    secure = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_SECURE))
    assert secure.find("devices/graphics").get("passwd") == SECRET  # type: ignore[union-attr]
    assert SECRET not in domain.XMLDesc(0)  # the stored spec keeps only the file's path
    assert _vnc_security_types(done["result"]["vnc"]["port"]) == [2]

    assert done["params"]["graphics"]["password_file"] == str(path)
    assert done["params"]["graphics"]["password"] is None
    stack.wait_recorded(done["id"], "succeeded")
    assert SECRET not in _job_as_the_api_shows_it(stack, done["id"])
    stored = _sql_text(stack)
    assert str(path) in stored and SECRET not in stored

    again = run_ok(stack, "domain.define", **spec)
    assert again["changed"] is False


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (None, "No such file or directory"),
        ("123456789\n", "at most 8 characters"),
        ("\n", "non-empty"),
    ],
)
def test_a_bad_password_file_fails_the_job_with_422_and_creates_nothing(
    stack: RunningStack, vm_pool: VmPool, content: str | None, rule: str
) -> None:
    name = vm_pool.domain_name("badpw")
    path = vm_pool.root / "missing.pw" if content is None else _password_file(vm_pool, content)
    graphics = {"type": "vnc", "listen": "127.0.0.1", "password_file": str(path)}

    done = stack.run("domain.define", HV, **boot_spec(vm_pool, name, graphics=graphics))
    assert done["state"] == "failed"
    error: dict[str, Any] = done["error"]
    assert error["status"] == 422, error
    assert [e["field"] for e in error["errors"]] == ["params.graphics.password_file"]
    assert rule in error["detail"] and str(path) in error["detail"]
    if content and content.strip():
        assert content.strip() not in json.dumps(error)
    assert_nothing_created(vm_pool, name)


def test_a_literal_password_in_a_job_is_a_422_and_nothing_is_stored(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("litpw")
    graphics = {"type": "vnc", "listen": "127.0.0.1", "password": SECRET}
    params = boot_spec(vm_pool, name, graphics=graphics)
    body = {"kind": "domain.define", "hypervisor": HV, "params": params}
    before = len(stack.api.list_jobs({"limit": 500}))

    with pytest.raises(ApiError) as refused:
        stack.api.submit(body)
    problem = refused.value.problem
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["params.graphics.password"]
    assert "password_file" in problem["errors"][0]["message"]
    url = f"{stack.settings.resolved_api_url}/v1/jobs"
    dry = requests.post(url, params={"dry_run": "true"}, json=body, timeout=10)
    assert dry.status_code == 422
    assert dry.json()["errors"][0]["field"] == "params.graphics.password"

    assert len(stack.api.list_jobs({"limit": 500})) == before
    assert SECRET not in _sql_text(stack)
    assert_nothing_created(vm_pool, name)


def test_virt_install_refuses_a_password_for_a_job_but_prints_xml_with_it(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("cli-pw")
    env = {"ORCH_API_URL": stack.settings.resolved_api_url}
    args = ["--name", name, "--memory", "64", "--import", "--network", "none"]
    args += ["--disk", f"pool={vm_pool.name},size=0.001,backing_store=base.img"]
    args += ["--graphics", f"vnc,password={SECRET}"]
    before = len(stack.api.list_jobs({"limit": 500}))

    refused = CliRunner().invoke(virt_install_command, ["--hypervisor", HV, *args], env=env)
    assert refused.exit_code == 1
    assert "--graphics" in refused.output and "password_file=PATH" in refused.output
    assert len(stack.api.list_jobs({"limit": 500})) == before

    shown = CliRunner().invoke(
        virt_install_command, ["--hypervisor", HV, *args, "--print-xml"], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert ET.fromstring(shown.stdout).find("devices/graphics") is not None
    assert SECRET not in shown.stdout  # shown XML leaves the password out
    assert_nothing_created(vm_pool, name)


def test_user_data_reaches_the_seed_iso_as_given(stack: RunningStack, vm_pool: VmPool) -> None:
    name = vm_pool.domain_name("udata")
    user_data = (
        "#cloud-config\n"
        "users:\n"
        "  - name: ops\n"
        "    passwd: $6$rounds=4096$salt$hashedvalue\n"
        "runcmd: [\"echo 'a<b & c>d' > /tmp/marker\"]\n"
    )
    spec = boot_spec(vm_pool, name, start=False, cloud_init={"user_data": user_data})

    done = stack.run("domain.define", HV, **spec)
    assert done["state"] == "succeeded", done["error"]
    seed = vm_pool.directory / f"{name}-cidata.iso"
    assert [d["path"] for d in done["result"]["disks"] if d["device"] == "cdrom"] == [str(seed)]
    extracted = subprocess.run(
        ["isoinfo", "-R", "-x", "/user-data", "-i", str(seed)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert extracted == user_data
    # Kept in the job record like any parameter, unmasked.
    assert done["params"]["cloud_init"]["user_data"] == user_data
    with stack.session() as session:
        row = session.get(Job, done["id"])
        assert row is not None and row.params["cloud_init"]["user_data"] == user_data
