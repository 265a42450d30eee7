"""virt-install command lines read into domain specs; unsupported options refused by name."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domains.domxml import HostDefaults, fill_defaults, render_domain_xml
from orchestrator.domains.osinfo import resolve_os_variant
from orchestrator.domains.virtinstall import (
    cpu_from_setting,
    parse_virt_install,
    parse_virt_install_command,
)
from orchestrator.errors import InvalidInput
from tests.domains.corpus import SEED


def _seed(directory: Path, os_variant: str = "rhel7") -> str:
    for name in ("CentOS-7-x86_64-Minimal-1810.iso", "CentOS-7.3-x86_64.qcow2"):
        (directory / name).write_bytes(b"")
    return "virt-install " + SEED.format(d=directory).replace("rhel7.0", os_variant)


def _refused(command: str) -> dict[str, Any]:
    with pytest.raises(InvalidInput) as caught:
        parse_virt_install_command(command)
    problem = caught.value.to_problem()
    assert problem["status"] == 422
    return problem


def test_seed_command_parses(tmp_path: Path) -> None:
    spec, flags = parse_virt_install_command(_seed(tmp_path))
    assert (spec.name, spec.vcpus, spec.memory_mib, spec.virt_type) == ("c73", 1, 1024, "kvm")
    assert spec.boot_source == "cdrom"
    assert spec.cdrom is not None and spec.cdrom.type == "path"
    assert spec.cdrom.path == f"{tmp_path}/CentOS-7-x86_64-Minimal-1810.iso"
    (disk,) = spec.disks
    assert disk.source.type == "path" and disk.source.size_gib == 6
    assert disk.format == "qcow"
    assert [(n.type, n.source) for n in spec.networks] == [("network", "default")]
    assert spec.graphics.type == "vnc" and str(spec.graphics.listen) == "0.0.0.0"
    assert spec.os_variant == "rhel7"
    assert flags.noautoconsole and not flags.print_xml and not flags.dry_run
    notes = " ".join(flags.notes)
    assert "--os-type is deprecated" in notes
    assert "--ram/-r is deprecated" in notes
    assert "legacy QCOW version 1" in notes


def test_seed_with_rhel7_renders_as_rhel7_0(tmp_path: Path) -> None:
    xml = []
    for variant in ("rhel7", "rhel7.0"):
        spec, _ = parse_virt_install_command(_seed(tmp_path, variant))
        osinfo = resolve_os_variant(spec.os_variant or "").variant
        xml.append(render_domain_xml(fill_defaults(spec, osinfo, HostDefaults())))
    assert xml[0] == xml[1]
    assert '<libosinfo:os id="http://redhat.com/rhel/7.0" />' in xml[0]
    assert '<driver name="qemu" type="qcow" discard="unmap" />' in xml[0]


def test_equals_and_space_forms_read_the_same(tmp_path: Path) -> None:
    mixed = shlex.split(_seed(tmp_path))
    spaced = [part for token in mixed for part in _split_equals(token)]
    joined: list[str] = []
    for token in spaced:
        if joined and joined[-1].startswith("--") and not token.startswith("-"):
            joined[-1] += f"={token}"
        else:
            joined.append(token)
    assert len({tuple(mixed), tuple(spaced), tuple(joined)}) == 3
    assert parse_virt_install(mixed) == parse_virt_install(spaced) == parse_virt_install(joined)


def _split_equals(token: str) -> list[str]:
    return token.split("=", 1) if token.startswith("--") and "=" in token else [token]


def test_print_xml_and_dry_run_are_flags() -> None:
    _, flags = parse_virt_install(
        [
            "--name",
            "x",
            "--memory",
            "512",
            "--import",
            "--disk",
            "/a.img",
            "--print-xml",
            "--dry-run",
        ]
    )
    assert flags.print_xml and flags.dry_run


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("--location http://mirror/centos", "--location"),
        ("--connect qemu:///system", "--connect"),
        ("--hvm", "--hvm"),
        ("--memballoon none", "--memballoon"),
        ("--extra-args console=ttyS0", "--extra-args"),
        ("--disk /a.img,sparse=no", "--disk"),
        ("--graphics vnc,keymap=de", "--graphics"),
        ("--network user", "--network"),
        ("--vcpus 2,maxvcpus=4", "--vcpus"),
        ("--boot uefi", "--boot"),
        ("--os-variant detect=on", "--os-variant"),
        ("--cpu qemu64,+vmx", "--cpu"),
        ("--autostart=yes", "--autostart"),
        ("--name other", "--name"),
    ],
)
def test_unsupported_option_is_refused_by_name(command: str, option: str) -> None:
    problem = _refused(f"virt-install --name x --memory 512 --import --disk /b.img {command}")
    assert problem["errors"][0]["field"] == option
    assert option in str(problem["detail"])


@pytest.mark.parametrize(
    ("command", "option", "field"),
    [
        ("--name 'a<b' --memory 512 --import --disk /a", "--name", "name"),
        ("--name 'a&b' --memory 512 --import --disk /a", "--name", "name"),
        ("--name 'a\"b' --memory 512 --import --disk /a", "--name", "name"),
        ("--name a/b --memory 512 --import --disk /a", "--name", "name"),
        (
            "--name x --memory 512 --import --disk /a --os-variant rhel77",
            "--os-variant",
            "os_variant",
        ),
        (
            "--name x --memory 512 --import --disk /a --network network=default,mac=zz",
            "--network",
            "networks.0.mac",
        ),
    ],
)
def test_bad_values_name_the_option_and_the_field(command: str, option: str, field: str) -> None:
    problem = _refused(f"virt-install {command}")
    error = problem["errors"][0]
    assert (error["option"], error["field"]) == (option, field)


def test_unknown_variant_suggests_close_names() -> None:
    problem = _refused("virt-install --name x --memory 512 --import --disk /a --osinfo ubuntu22.4")
    assert "ubuntu22.04" in str(problem["detail"])


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("--name x --memory 512 --disk /a", "install method"),
        ("--name x --memory 512 --import --pxe --disk /a", "one install method"),
        ("--memory 512 --import --disk /a", "--name: is required"),
        ("--name x --import --disk /a", "--memory: is required"),
        ("--name x --memory 512 --import --disk pool=default", "needs size"),
        ("--name x --memory 512 --import --disk vol=nopool", "POOL/VOLUME"),
        ("--name x --memory 512 --import --disk /a,size=big", "not a number"),
        ("--name x --memory 512 --import --disk /a stray", "unexpected argument"),
        ("--name x --memory 512 --import --disk /a --cloud-init user-data=/u", "not sent"),
    ],
)
def test_incomplete_commands_say_what_is_missing(command: str, message: str) -> None:
    assert message in str(_refused(f"virt-install {command}")["detail"])


def test_cloud_init_files_come_with_the_request() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI ops@example\n"
    spec, _ = parse_virt_install(
        [
            "--name=ci",
            "--memory=512",
            "--import",
            "--disk=/a.qcow2",
            "--cloud-init",
            "meta-data=md.yaml,clouduser-ssh-key=id.pub",
        ],
        files={"md.yaml": "instance-id: ci\n", "id.pub": key},
    )
    assert spec.cloud_init is not None
    assert spec.cloud_init.meta_data == "instance-id: ci\n"
    assert spec.cloud_init.ssh_authorized_keys == (key.strip(),)


def test_bare_cloud_init_before_another_option() -> None:
    spec, _ = parse_virt_install(
        ["--name", "ci", "--memory", "512", "--cloud-init", "--import", "--disk", "/a"]
    )
    assert spec.cloud_init is not None and spec.boot_source == "import"


def test_sub_option_syntax_matches_virt_install() -> None:
    spec, _ = parse_virt_install_command(
        "virt-install --name k --memory 512 --vcpus 2,cpuset=1-3,^2 --cpu qemu64,-svm "
        "--boot kernel=/k,initrd=/i,kernel_args='console=ttyS0,115200 quiet' "
        "--disk vol=default/k.qcow2,bus=sata,cache=none,readonly=on "
        "--network bridge=br0,model.type=e1000,mac.address=52:54:00:00:00:02 "
        "--graphics spice,port=-1,password=pw --serial file,path=/var/log/k.log "
        "--autostart --noreboot"
    )
    assert spec.cpuset == "1-3,^2"
    assert spec.cpu is not None and spec.cpu.disabled_features == ("svm",)
    assert spec.kernel is not None and spec.kernel.cmdline == "console=ttyS0,115200 quiet"
    assert spec.boot_source == "kernel"
    disk = spec.disks[0]
    assert (disk.bus, disk.cache, disk.readonly) == ("sata", "none", True)
    assert spec.networks[0].model == "e1000" and spec.networks[0].mac == "52:54:00:00:00:02"
    assert spec.graphics.port is None
    assert spec.autostart and not spec.reboot_after_install


def test_hypervisor_cpu_setting_reads_like_the_cpu_option() -> None:
    nested = cpu_from_setting("qemu64,-svm")
    assert (nested.mode, nested.model, nested.disabled_features) == ("custom", "qemu64", ("svm",))
    assert cpu_from_setting("host-passthrough").mode == "host-passthrough"
    with pytest.raises(InvalidInput):
        cpu_from_setting("qemu64<")


def test_graphics_password_file_names_a_file_on_the_hypervisor() -> None:
    spec, _ = parse_virt_install(
        ["--name", "pw", "--memory", "512", "--pxe", "--graphics", "vnc,password_file=/etc/vnc.pw"]
    )
    assert spec.graphics.password_file == "/etc/vnc.pw" and spec.graphics.password is None
