"""``vm.provision`` parameters as the API validates them, the domain spec they make, the seed
they put in it, and what they ask of placement."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from orchestrator.domains.cloudinit import nocloud_files
from orchestrator.errors import Forbidden, InvalidInput
from orchestrator.kinds import get_kind, parse_params
from orchestrator.kinds.provision import ProvisionParams, provision_field
from orchestrator.placement import PlacementRequest, Resources

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ci"
HASH = (
    "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/"
    "jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"
)


def params(**changes: Any) -> dict[str, Any]:
    return {
        "name": "web1",
        "memory_mib": 512,
        "disk": {"base_image": "images/base.qcow2"},
        **changes,
    }


def parse(raw: dict[str, Any]) -> ProvisionParams:
    parsed = parse_params(get_kind("vm.provision"), raw)
    assert isinstance(parsed, ProvisionParams)
    return parsed


def refused_fields(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as refused:
        parse(raw)
    return [e["field"] for e in refused.value.extra["errors"]]


def test_an_overlay_on_a_base_image_boots_it_through_a_new_qcow2_in_its_pool() -> None:
    spec = parse(params(disk={"base_image": "images/base.qcow2", "size": "20G"})).domain_spec()

    assert spec.boot_source == "import"
    (disk,) = spec.disks
    assert disk.source.type == "new_volume"
    assert (disk.source.pool, disk.source.backing_volume) == ("images", "base.qcow2")
    assert disk.source.size_gib == 20
    assert [(n.type, n.source) for n in spec.networks] == [("network", "default")]
    assert spec.graphics.type == "vnc"
    assert spec.cloud_init is None


def test_an_empty_disk_boots_its_iso_or_else_the_network() -> None:
    with_iso = parse(params(disk={"pool": "vms", "size": "8G"}, cdrom="isos/debian.iso"))
    spec = with_iso.domain_spec()
    assert spec.boot_source == "cdrom"
    assert spec.cdrom is not None and (spec.cdrom.pool, spec.cdrom.volume) == ("isos", "debian.iso")
    assert spec.disks[0].source.backing_volume is None  # type: ignore[union-attr]

    assert parse(params(disk={"pool": "vms", "size": "8G"})).domain_spec().boot_source == "pxe"


@pytest.mark.parametrize(
    ("disk", "field"),
    [
        ({"base_image": "no-slash"}, "params.disk.base_image"),
        ({"base_image": "pool/../etc"}, "params.disk.base_image"),
        ({"pool": "vms"}, "params.disk"),
        ({"size": "8G"}, "params.disk"),
        ({"base_image": "a/b", "pool": "vms"}, "params.disk"),
        ({"pool": "vms", "size": "8 G"}, "params.disk.size"),
    ],
)
def test_a_disk_is_an_overlay_or_a_sized_empty_disk(disk: dict[str, Any], field: str) -> None:
    assert refused_fields(params(disk=disk)) == [field]


def test_bad_names_waits_and_variants_are_refused_naming_the_field() -> None:
    assert refused_fields(params(name="a/b")) == ["params.name"]
    assert refused_fields(params(network="net<1>")) == ["params.network"]
    assert refused_fields(params(wait_for="pingable")) == ["params.wait_for"]
    assert refused_fields(params(wait_timeout=0)) == ["params.wait_timeout"]
    assert refused_fields(params(os_variant="nosuchos99")) == ["params.os_variant"]
    assert refused_fields(params(unknown=1)) == ["params.unknown"]


def test_a_plain_password_is_refused_and_a_hash_needs_a_user() -> None:
    with pytest.raises(InvalidInput) as plain:
        parse(params(cloud_init={"user": "ops", "password": "hunter2"}))
    (error,) = plain.value.extra["errors"]
    assert error["field"] == "params.cloud_init.password"
    assert "password_hash" in error["message"]
    assert "hunter2" not in str(plain.value.to_problem())

    assert refused_fields(params(cloud_init={"password_hash": HASH})) == ["params.cloud_init"]
    assert refused_fields(params(cloud_init={"user": "ops", "password_hash": "plain"})) == [
        "params.cloud_init.password_hash"
    ]
    assert refused_fields(params(cloud_init={"user": "Bad User"})) == ["params.cloud_init.user"]
    assert refused_fields(params(cloud_init={"hostname": "-bad"})) == ["params.cloud_init.hostname"]
    assert refused_fields(params(cloud_init={"ssh_authorized_keys": ["not a key"]})) == [
        "params.cloud_init.ssh_authorized_keys"
    ]


def test_a_serial_log_in_a_system_directory_is_forbidden() -> None:
    with pytest.raises(Forbidden) as refused:
        parse(params(serials=[{"type": "file", "path": "/etc/cron.d/evil"}]))
    assert refused.value.extra["errors"][0]["field"] == "params.serials.0.path"


def test_cloud_init_adds_the_user_with_keys_and_hash_and_names_the_host() -> None:
    spec = parse(
        params(
            cloud_init={
                "user": "ops",
                "ssh_authorized_keys": [KEY],
                "hostname": "web1.example.test",
                "password_hash": HASH,
            }
        )
    ).domain_spec()

    files = nocloud_files(spec)
    assert files["user-data"].startswith("#cloud-config\n")
    config = yaml.safe_load(files["user-data"])
    assert config["users"][0] == "default"
    assert config["users"][1] == {
        "name": "ops",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "shell": "/bin/bash",
        "ssh_authorized_keys": [KEY],
        "lock_passwd": False,
        "passwd": HASH,
    }
    assert config["ssh_pwauth"] is True
    assert yaml.safe_load(files["meta-data"]) == {
        "instance-id": "web1",
        "local-hostname": "web1.example.test",
    }


def test_keys_without_a_user_go_to_the_images_default_user() -> None:
    spec = parse(params(cloud_init={"ssh_authorized_keys": [KEY]})).domain_spec()

    files = nocloud_files(spec)
    assert yaml.safe_load(files["user-data"]) == {"ssh_authorized_keys": [KEY]}
    assert yaml.safe_load(files["meta-data"])["local-hostname"] == "web1"


def test_placement_reads_the_vms_size_its_pool_and_base_image() -> None:
    sized = parse(params(vcpus=4, memory_mib=2048, disk={"base_image": "images/b", "size": "10G"}))
    assert sized.needs() == Resources(4, 2048, {"images": 10 * 1024**3})
    assert sized.placement_request() == PlacementRequest(
        vcpus=4,
        memory_mib=2048,
        disk_bytes={"images": 10 * 1024**3},
        pool="images",
        base_image="b",
    )
    empty = parse(params(disk={"pool": "vms", "size": "1G"}))
    assert empty.placement_request().base_image is None
    assert empty.needs().disk_bytes == {"vms": 1024**3}
    # An overlay without size is as large as its base, which only the hypervisor knows.
    assert parse(params()).needs().disk_bytes == {"images": 0}


def test_errors_about_the_spec_name_the_provision_parameter() -> None:
    assert provision_field("params.networks.0.source") == "params.network"
    assert provision_field("params.disks.0.source.pool") == "params.disk.source.pool"
    assert provision_field("params.disks") == "params.disk"
    assert provision_field("params.cloud_init") == "params.cloud_init"


def test_network_none_makes_a_vm_without_a_nic_that_needs_something_else_to_boot() -> None:
    spec = parse(params(network="none")).domain_spec()
    assert spec.networks == ()

    assert refused_fields(params(network="none", wait_for="address")) == ["params"]
    empty = {"pool": "vms", "size": "8G"}
    assert refused_fields(params(network="none", disk=empty)) == ["params"]
    with_iso = parse(params(network="none", disk=empty, cdrom="isos/debian.iso"))
    assert with_iso.domain_spec().boot_source == "cdrom"


def test_count_members_are_named_by_the_pattern_and_checked_one_by_one() -> None:
    parsed = parse(
        params(
            count=3,
            name="web-{index:02d}",
            cloud_init={"hostname": "web-{index}.lab"},
            serials=[{"type": "file", "path": "/srv/logs/web-{index}.log"}],
        )
    )
    members = parsed.members()
    assert [m.name for m in members] == ["web-01", "web-02", "web-03"]
    assert [m.cloud_init.hostname for m in members if m.cloud_init] == [
        "web-1.lab",
        "web-2.lab",
        "web-3.lab",
    ]
    assert [m.serials[0].path for m in members] == [f"/srv/logs/web-{i}.log" for i in (1, 2, 3)]
    assert {m.count for m in members} == {None}
    # A single VM is its own only member.
    assert parse(params()).members()[0].name == "web1"

    assert refused_fields(params(count=2, name="web")) == ["params.name"]
    assert refused_fields(params(count=2, name="web-{index:c}")) == ["params.name"]
    assert refused_fields(params(count=2, name="web-{host}")) == ["params.name"]
    assert refused_fields(
        params(count=2, name="w{index}", cloud_init={"hostname": "a_{index}"})
    ) == ["params"]
    serial = [{"type": "file", "path": "/srv/logs/same.log"}]
    assert refused_fields(params(count=2, name="w{index}", serials=serial)) == ["params"]
    assert refused_fields(params(name="w{index}", cloud_init={"hostname": "h{index}"})) == [
        "params.name"
    ]
