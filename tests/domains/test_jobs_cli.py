"""``orchestrator virt-install``: virt-install options defined and started through the API."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from click.testing import CliRunner

from orchestrator.domains.cli import virt_install_command
from tests.domains import test_jobs_real_vm as real_vm
from tests.domains.test_jobs_real_vm import HV, VmPool, virsh, wait_for_marker
from tests.support.services import RunningStack

stack = real_vm.stack
vm_pool = real_vm.vm_pool


def _args(vm: VmPool, name: str, *extra: str) -> list[str]:
    return [
        "--name", name,
        "--memory", "64",
        "--vcpus", "1",
        "--import",
        "--disk", f"pool={vm.name},size=0.001,backing_store=base.img",
        "--network", "none",
        "--graphics", "vnc,listen=127.0.0.1",
        "--serial", f"file,path={vm.serial_log(name)}",
        *extra,
    ]  # fmt: skip


def test_print_xml_shows_the_domain_and_changes_nothing(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("cli-xml")
    env = {"ORCH_API_URL": stack.settings.resolved_api_url}
    shown = CliRunner().invoke(
        virt_install_command, ["--hypervisor", HV, *_args(vm_pool, name, "--print-xml")], env=env
    )
    assert shown.exit_code == 0, shown.output
    root = ET.fromstring(shown.stdout)
    assert root.findtext("name") == name
    assert root.find("devices/disk/source").get("pool") == vm_pool.name  # type: ignore[union-attr]
    assert vm_pool.volumes() == {"base.img"}


def test_noautoconsole_returns_once_the_vm_runs_and_prints_its_vnc_port(
    stack: RunningStack, vm_pool: VmPool
) -> None:
    name = vm_pool.domain_name("cli")
    env = {"ORCH_API_URL": stack.settings.resolved_api_url}
    ran = CliRunner().invoke(
        virt_install_command,
        ["--hypervisor", HV, *_args(vm_pool, name, "--noautoconsole")],
        env=env,
    )
    assert ran.exit_code == 0, ran.output
    port = 5900 + int(virsh("vncdisplay", name).rsplit(":", 1)[1])
    assert f"Domain {name} is running on {HV}; VNC 127.0.0.1:{port}" in ran.stdout
    wait_for_marker(vm_pool.serial_log(name))


def test_an_unsupported_option_is_refused_by_name(stack: RunningStack) -> None:
    refused = CliRunner().invoke(virt_install_command, ["--name", "x", "--location", "http://x"])
    assert refused.exit_code == 1
    assert "--location" in refused.output
