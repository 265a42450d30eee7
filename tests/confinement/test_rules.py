"""The pure path rules of confinement: system directories, roots, var_dir, and the messages that
name the rule and the setting. No filesystem: the paths are given as already resolved."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.confinement import Confinement, is_within, refuse_system_path, system_directory
from orchestrator.errors import Forbidden
from orchestrator.settings import Settings


@pytest.mark.parametrize(
    ("path", "system"),
    [
        ("/", "/"),
        ("/etc", "/etc"),
        ("/etc/cron.d", "/etc"),
        ("/root/.ssh/authorized_keys", "/root"),
        ("/boot/vmlinuz", "/boot"),
        ("/usr/lib/x", "/usr"),
        ("/lib64/ld.so", "/lib64"),
        ("/libx32", "/libx32"),
        ("/proc/self/mem", "/proc"),
        ("/dev/sda", "/dev"),
        ("/var/run/libvirt", "/var/run"),
        ("/var/lib/libvirt/qemu/domain-1/monitor.sock", "/var/lib/libvirt/qemu"),
        ("/var/spool/cron/crontabs", "/var/spool"),
        ("/var/lib/libvirt", "/var/lib/libvirt"),
        ("/home", "/home"),
        ("/tmp", "/tmp"),
        ("/home/alice/.ssh", "/home/alice/.ssh"),
        ("/srv/vms/.ssh/x", "/srv/vms/.ssh"),
    ],
)
def test_system_directories_and_what_lies_in_them_are_named(path: str, system: str) -> None:
    assert system_directory(path) == system


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/libvirt/images",
        "/var/lib/libvirt/images/vm.qcow2",
        "/var/lib/libvirt/boot/vmlinuz",
        "/home/alice/vms",
        "/tmp/ci/pool",
        "/srv/vms",
        "/etcetera/pool",  # a prefix of a system directory's name is not that directory
    ],
)
def test_ordinary_directories_are_no_system_directory(path: str) -> None:
    assert system_directory(path) is None


def test_every_top_level_lib_directory_counts() -> None:
    # /lib, /lib32, /lib64, /libx32 and whatever a distribution adds next.
    assert system_directory("/library/pool") == "/library"


def test_within_is_by_whole_components() -> None:
    assert is_within("/var/lib/libvirt/images/a", "/var/lib/libvirt/images")
    assert not is_within("/var/lib/libvirt/images2/a", "/var/lib/libvirt/images")
    assert not is_within("/var/lib/libvirt/images", "/var/lib/libvirt/images")
    assert is_within("/var/lib/libvirt/images", "/var/lib/libvirt/images", allow_equal=True)
    assert is_within("/x", "/")


def test_a_system_refusal_is_a_403_naming_the_field_and_where_a_symlink_led() -> None:
    with pytest.raises(Forbidden) as refused:
        refuse_system_path("params.path", "/srv/pool", "/etc/cron.d")
    problem = refused.value.to_problem()
    assert problem["status"] == 403
    assert problem["rule"] == "system-directory"
    assert problem["detail"] == (
        "params.path /srv/pool (resolving to /etc/cron.d) is inside /etc, a system directory, "
        "never allowed"
    )
    assert problem["errors"] == [
        {"field": "params.path", "message": problem["detail"].removeprefix("params.path ")}
    ]


def _rules(tmp_path: Path, **settings: object) -> Confinement:
    return Confinement.from_settings(Settings(var_dir=tmp_path / "var", **settings))  # type: ignore[arg-type]


def test_pool_roots_are_the_setting_and_var_dir_pools_and_refusals_name_them(
    tmp_path: Path,
) -> None:
    rules = _rules(tmp_path, pool_roots=[tmp_path / "images"])
    var = tmp_path.resolve() / "var"
    rules.check_pool_dir("params.path", f"{tmp_path}/images", f"{tmp_path}/images")
    rules.check_pool_dir("params.path", f"{var}/pools/a", f"{var}/pools/a")
    with pytest.raises(Forbidden) as refused:
        rules.check_pool_dir("params.path", "/srv/x", "/srv/x")
    problem = refused.value.to_problem()
    assert problem["detail"] == (
        f"params.path /srv/x is outside the pool roots (ORCH_POOL_ROOTS: {tmp_path}/images, "
        f"{var}/pools)"
    )
    assert (problem["rule"], problem["setting"]) == ("pool-roots", "ORCH_POOL_ROOTS")


def test_a_pool_root_in_a_system_directory_allows_nothing_there(tmp_path: Path) -> None:
    rules = _rules(tmp_path, pool_roots=[Path("/etc")])
    with pytest.raises(Forbidden, match="a system directory, never allowed"):
        rules.check_pool_dir("params.path", "/etc/cron.d", "/etc/cron.d")
    assert not rules.is_pool_dir("/etc/cron.d")


def test_var_dir_is_off_limits_except_its_pools_images_and_consoles(tmp_path: Path) -> None:
    var = tmp_path.resolve() / "var"
    rules = _rules(tmp_path, pool_roots=[tmp_path], read_roots=[tmp_path])
    for inside in ("orchestrator.db", "ssh/id_ed25519", "spool/x"):
        with pytest.raises(Forbidden, match="inside the orchestrator's var_dir") as refused:
            rules.check_read("params.kernel.kernel", f"{var}/{inside}", f"{var}/{inside}", [])
        assert refused.value.to_problem()["setting"] == "ORCH_VAR_DIR"
    rules.check_read("params.kernel.kernel", f"{var}/images/k", f"{var}/images/k", [])
    rules.check_console("params.serials.0.path", f"{var}/consoles/c", f"{var}/consoles/c")
    assert rules.is_pool_dir(f"{var}/pools/p")
    assert not rules.is_pool_dir(str(var))


def test_reads_come_from_the_read_roots_or_a_managed_pool(tmp_path: Path) -> None:
    rules = _rules(tmp_path, read_roots=[Path("/srv/boot")])
    rules.check_read("params.kernel.kernel", "/srv/boot/k", "/srv/boot/k", [])
    rules.check_read("params.kernel.kernel", "/srv/vms/k", "/srv/vms/k", ["/srv/vms"])
    with pytest.raises(Forbidden) as refused:
        rules.check_read("params.kernel.kernel", "/srv/other/k", "/srv/other/k", ["/srv/vms"])
    problem = refused.value.to_problem()
    assert (
        "outside the read roots and managed pools (ORCH_READ_ROOTS: /srv/boot, "
        in (problem["detail"])
    )
    assert (problem["rule"], problem["setting"]) == ("read-roots", "ORCH_READ_ROOTS")


def test_consoles_are_written_under_var_dir_consoles_or_the_pool_roots(tmp_path: Path) -> None:
    rules = _rules(tmp_path, pool_roots=[Path("/srv/vms")])
    rules.check_console("params.serials.0.path", "/srv/vms/a.log", "/srv/vms/a.log")
    with pytest.raises(Forbidden) as refused:
        rules.check_console("params.serials.0.path", "/srv/boot/a.log", "/srv/boot/a.log")
    assert refused.value.to_problem()["rule"] == "console-roots"
    assert "var_dir/consoles and ORCH_POOL_ROOTS" in refused.value.detail


def test_a_file_outside_the_managed_pools_names_them_and_the_setting(tmp_path: Path) -> None:
    rules = _rules(tmp_path, pool_roots=[Path("/srv/vms")])
    managed = {"vms": "/srv/vms/a"}
    rules.check_in_pools("params.source", "/srv/vms/a/x.img", "/srv/vms/a/x.img", managed)
    with pytest.raises(Forbidden) as refused:
        rules.check_in_pools("params.source", "/srv/vms/a/l.img", "/srv/other/x.img", managed)
    detail = refused.value.detail
    assert detail.startswith(
        "params.source /srv/vms/a/l.img (resolving to /srv/other/x.img) is outside the managed "
        "pools (vms: /srv/vms/a), the pools whose directory lies in the pool roots "
        "(ORCH_POOL_ROOTS: /srv/vms, "
    )
