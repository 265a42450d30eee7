"""Bad domain specs are refused with a 422 naming the field and the rule; good ones keep values."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domains.cloudinit import nocloud_files
from orchestrator.domains.spec import DomainSpec, parse_domain_spec
from orchestrator.errors import InvalidInput

DISK = {"source": {"type": "path", "path": "/srv/a.qcow2"}}


def _raw(**fields: Any) -> dict[str, Any]:
    return {"name": "vm1", "memory_mib": 512, "boot_source": "import", "disks": [DISK], **fields}


def _errors(raw: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_domain_spec(raw)
    problem = caught.value.to_problem()
    assert problem["status"] == 422
    return problem["errors"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "must not be empty"),
        ("a" * 65, "at most 64"),
        ("a/b", "'/'"),
        ("a\nb", "control characters"),
        ("a<b", "XML markup"),
        ("a&b", "XML markup"),
        ('a"b', "XML markup"),
        ("a'b", "XML markup"),
        ("a b", "may only contain"),
        ("vm\u00e9", "may only contain"),
        ("-vm", "must not start"),
        (".vm", "must not start"),
    ],
)
def test_name_outside_the_rules_is_refused_naming_name(name: str, rule: str) -> None:
    errors = _errors(_raw(name=name))
    assert errors[0]["field"] == "name"
    assert rule in errors[0]["message"]


@pytest.mark.parametrize("name", ["vm1", "web_01.example", "a+b-c", "A" * 64])
def test_names_within_the_rules_are_kept(name: str) -> None:
    assert parse_domain_spec(_raw(name=name)).name == name


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ({"cpuset": "3-1"}, "cpuset", "ascending"),
        ({"cpuset": "1,^1"}, "cpuset", "at least one CPU"),
        ({"cpuset": "1;2"}, "cpuset", "is not N"),
        ({"memory_mib": 8}, "memory_mib", "greater than or equal"),
        ({"vcpus": 0}, "vcpus", "greater than or equal"),
        ({"networks": [{"mac": "01:00:5e:00:00:01"}]}, "networks.0", "unicast"),
        ({"networks": [{"mac": "52:54:00:zz:00:01"}]}, "networks.0.mac", "six hex pairs"),
        ({"networks": [{"type": "bridge", "source": "a-very-long-bridge"}]}, "networks.0", "15"),
        ({"graphics": {"type": "vnc", "password": "123456789"}}, "graphics", "8 characters"),
        ({"graphics": {"type": "none", "port": 5901}}, "graphics", "takes no"),
        ({"graphics": {"type": "none", "password_file": "/pw"}}, "graphics", "takes no"),
        ({"graphics": {"password_file": "pw.txt"}}, "graphics.password_file", "absolute"),
        (
            {"graphics": {"password": "a", "password_file": "/pw"}},
            "graphics",
            "password or password_file, not both",
        ),
        ({"cloud_init": {"user_data": "x" * 262145}}, "cloud_init.user_data", "at most"),
        ({"graphics": {"port": 80}}, "graphics.port", "greater than or equal"),
        ({"serials": [{"type": "file"}]}, "serials.0", "needs path"),
        ({"cpu": {"mode": "custom"}}, "cpu", "needs model"),
        ({"cpu": {"mode": "custom", "model": "qemu64<"}}, "cpu.model", "letters"),
        ({"boot_source": "cdrom"}, "", "needs cdrom"),
        ({"boot_source": "kernel"}, "", "kernel is given"),
        ({"disks": []}, "", "at least one disk"),
        (
            {"disks": [{"source": {"type": "path", "path": "rel/a.img"}}]},
            "disks.0.source",
            "absolute",
        ),
        ({"disks": [{"source": {"type": "path", "path": "/a/../etc/x"}}]}, "disks.0.source", ".."),
        (
            {"disks": [{"source": {"type": "volume", "pool": "p", "volume": "a<b"}}]},
            "disks.0",
            "markup",
        ),
        ({"disks": [{"source": {"type": "nfs"}}]}, "disks.0.source", "does not match"),
        ({"disks": [{**DISK, "bus": "xen"}]}, "disks.0.bus", "virtio"),
        ({"os_variant": "debain11"}, "os_variant", "debian11"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        (
            {"cloud_init": {"ssh_authorized_keys": ["not a key"]}},
            "cloud_init.ssh_authorized_keys",
            "OpenSSH",
        ),
    ],
)
def test_broken_rule_is_reported_on_its_field(
    fields: dict[str, Any], field: str, rule: str
) -> None:
    errors = _errors(_raw(**fields))
    assert any(e["field"].startswith(field) and rule in e["message"] for e in errors), errors


def test_password_is_secret_in_every_representation() -> None:
    spec = parse_domain_spec(_raw(graphics={"type": "vnc", "password": "s3cr3t"}))
    assert "s3cr3t" not in repr(spec)
    assert "s3cr3t" not in spec.model_dump_json()
    assert spec.graphics.password is not None
    assert spec.graphics.password.get_secret_value() == "s3cr3t"


def test_cloud_init_keys_become_a_cloud_config() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI ops@example"
    spec = DomainSpec.model_validate(_raw(cloud_init={"ssh_authorized_keys": [key]}))
    files = nocloud_files(spec)
    assert files["user-data"] == f"#cloud-config\nssh_authorized_keys:\n- {key}\n"
    assert files["meta-data"] == "instance-id: vm1\nlocal-hostname: vm1\n"
    assert "network-config" not in files


def test_cloud_init_given_files_are_used_verbatim() -> None:
    spec = DomainSpec.model_validate(
        _raw(
            uuid="8f0d3a52-6f0e-4a54-9a3b-0d6e2b9b1a11",
            cloud_init={"user_data": "#!/bin/sh\necho hi\n", "network_config": "version: 2\n"},
        )
    )
    files = nocloud_files(spec)
    assert files["user-data"] == "#!/bin/sh\necho hi\n"
    assert files["network-config"] == "version: 2\n"
    assert files["meta-data"].startswith("instance-id: 8f0d3a52-6f0e-4a54-9a3b-0d6e2b9b1a11\n")
    # Plain configuration, not a secret: job parameters keep it as given.
    assert spec.model_dump(mode="json")["cloud_init"]["user_data"] == "#!/bin/sh\necho hi\n"


def test_cloud_init_keys_and_user_data_together_are_refused() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI ops@example"
    errors = _errors(
        _raw(cloud_init={"user_data": "#cloud-config\n", "ssh_authorized_keys": [key]})
    )
    assert errors[0]["field"] == "cloud_init"


def test_no_cloud_init_means_no_seed_files() -> None:
    assert nocloud_files(DomainSpec.model_validate(_raw())) == {}
