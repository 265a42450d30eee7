"""The rules that bind a worker's secrets to the operator's host entries, and the path rules of
the fleet-files areas, on inventories read from a temporary directory (no service needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.fleet.files import check_config_path, check_path_component, resolve_in_area
from orchestrator.fleet.secret_binding import (
    BoundHosts,
    bind_worker_secrets,
    require_known_host_keys,
)
from orchestrator.inventory import Inventory, load_inventory, parse_inventory, with_builtin_groups


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The operator's inventory directory: web1 and web2 in group web, whose vars hold a
    password; db1 in group db, with its own become password."""
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "hosts.ini").write_text(
        "[web]\nweb1 ansible_host=10.0.0.1\nweb2 ansible_host=10.0.0.2 ansible_port=2222\n"
        "[db]\ndb1 ansible_host=10.0.0.9 ansible_user=pg\n"
    )
    (tmp_path / "group_vars" / "web.yml").write_text(
        "ansible_user: deploy\nansible_password: web-secret\nansible_private_key_file: web.key\n"
    )
    (tmp_path / "host_vars" / "db1.yml").write_text(
        "ansible_become: true\nansible_become_password: db-secret\n"
    )
    return tmp_path


def bind(
    text: str, site: Path
) -> tuple[dict[str, dict[str, str | None]], dict[str, tuple[str, ...]]]:
    job = parse_inventory(text, base_dir=site)
    bound = _bind(job, load_inventory(site))
    shown = {
        name: {
            "address": c.address,
            "user": c.user,
            "password": c.password.get_secret_value() if c.password else None,
            "become_password": (
                c.become_password.get_secret_value() if c.become_password else None
            ),
            "key_file": c.key_file,
        }
        for name, c in bound.connections.items()
    }
    return shown, bound.withheld


def _bind(job: Inventory, operator: Inventory | None) -> BoundHosts:
    return bind_worker_secrets(
        job, operator, list(job.hosts), login_user="root", operator_wrote_job=False
    )


def test_a_host_the_operator_did_not_declare_gets_the_group_vars_but_not_their_secrets(
    site: Path,
) -> None:
    shown, withheld = bind("[web]\nweb1 ansible_host=10.0.0.1\nintruder\n", site)

    assert shown["web1"]["password"] == "web-secret"
    assert shown["web1"]["key_file"] == "web.key"
    assert shown["intruder"] == {
        "address": "intruder",
        "user": "deploy",  # not a secret: it still applies
        "password": None,
        "become_password": None,
        "key_file": None,
    }
    assert withheld == {"intruder": ("ansible_password", "ansible_private_key_file")}


def test_an_operators_host_gets_its_own_secrets_whatever_group_the_job_puts_it_in(
    site: Path,
) -> None:
    # web1 moved into db, whose host db1 has a become password: web1 gets web's, not db1's.
    shown, withheld = bind("[db]\nweb1 ansible_host=10.0.0.1 ansible_user=deploy\n", site)

    assert shown["web1"]["password"] == "web-secret"
    assert shown["web1"]["become_password"] is None
    assert withheld == {}


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("web1 ansible_host=10.6.6.6", "deploy@10.6.6.6:22"),
        ("web2 ansible_host=10.0.0.2", "deploy@10.0.0.2:22"),  # its port is 2222
        ("web1 ansible_host=10.0.0.1 ansible_user=root", "root@10.0.0.1:22"),
        ("db1 ansible_host=10.0.0.9", "deploy@10.0.0.9:22"),  # its entry logs in as pg
        (
            "web1 ansible_host=10.0.0.1 ansible_ssh_common_args='-J evil@10.6.6.6'",
            "deploy@10.0.0.1:22 via evil@10.6.6.6",
        ),
    ],
)
def test_moving_a_host_that_has_secrets_is_refused_naming_the_host_and_the_rule(
    site: Path, line: str, where: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        bind(f"[web]\n{line}\n", site)

    name = line.split()[0]
    assert f"host {name}: the job sends it to {where}, its entry has " in refused.value.detail
    assert "may not change the address, port, login user or jump host" in refused.value.detail
    assert "web-secret" not in refused.value.detail and "db-secret" not in refused.value.detail


def test_a_host_without_secrets_may_be_reached_anywhere(tmp_path: Path) -> None:
    (tmp_path / "hosts.ini").write_text("plain ansible_host=10.0.0.1\n")
    job = parse_inventory("plain ansible_host=10.7.7.7\n", base_dir=tmp_path)

    bound = _bind(job, load_inventory(tmp_path))

    assert bound.connections["plain"].address == "10.7.7.7"


def test_the_operators_own_inventory_gives_builtin_hosts_no_secret(site: Path) -> None:
    # Group all's vars in the operator's file would reach every host, hypervisors included.
    (site / "group_vars" / "all.yml").write_text("ansible_password: everyone\n")
    own = load_inventory(site)
    job = with_builtin_groups(own, [{"name": "hv1", "address": "10.1.1.1"}], [])

    bound = bind_worker_secrets(
        job, own, ["web1", "hv1"], login_user="root", operator_wrote_job=True
    )

    assert bound.connections["web1"].password is not None
    assert bound.connections["hv1"].password is None
    assert bound.withheld == {"hv1": ("ansible_password",)}


def test_sending_a_password_needs_strict_host_key_checking(site: Path) -> None:
    job = parse_inventory("[web]\nweb1 ansible_host=10.0.0.1\n[ops]\nplain\n", base_dir=site)
    connections = _bind(job, load_inventory(site)).connections

    require_known_host_keys(connections, "strict", "options.host_key_policy")
    require_known_host_keys({"plain": connections["plain"]}, "off", "options.host_key_policy")
    with pytest.raises(InvalidInput) as refused:
        require_known_host_keys(connections, "accept-new", "options.host_key_policy")
    assert refused.value.detail.startswith(
        "host_key_policy 'accept-new' is refused: hosts web1 would be sent a password"
    )


@pytest.mark.parametrize(
    "path", [".", "keys/id", "files", "fetched/123/x", "known_hosts/store", "../site"]
)
def test_inventories_and_vars_dirs_are_refused_in_the_areas(path: str) -> None:
    with pytest.raises(ValueError):
        check_config_path(path)


@pytest.mark.parametrize("name", ["group_vars", "HOST_VARS", "keys", "fetched", ".hidden", "a/b"])
def test_reserved_or_unsafe_names_cannot_be_a_hosts_directory(name: str) -> None:
    with pytest.raises(ValueError):
        check_path_component(name)


def test_a_link_out_of_an_area_is_refused(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id").write_text("key")
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "link").symlink_to(tmp_path / "keys" / "id")

    assert resolve_in_area(tmp_path, "keys", "id", "f") == (tmp_path / "keys" / "id").resolve()
    with pytest.raises(InvalidInput, match="leads outside the worker's fleet-files/files/"):
        resolve_in_area(tmp_path, "files", "link", "call.src")
