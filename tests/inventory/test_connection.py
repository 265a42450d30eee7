"""Connection settings come from the merged variables; secrets never show."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.inventory import HostConnection, load_inventory, parse_inventory
from orchestrator.inventory.connection import proxy_jump_from_args

DATA = Path(__file__).parent / "data"


def test_defaults_use_the_host_name_and_port_22() -> None:
    conn = parse_inventory("h1\n", "ini").connection("h1")
    assert conn == HostConnection(name="h1", address="h1")
    assert conn.port == 22 and conn.user is None and not conn.has_password


def test_connection_variables_from_a_real_inventory_file() -> None:
    inv = load_inventory(DATA / "ini_connection" / "hosts.ini")
    gw = inv.connection("gw1")
    assert (gw.address, gw.port, gw.user, gw.key_file) == ("203.0.113.1", 22, "ops", "/keys/gw")
    app = inv.connection("app2")
    assert app.has_password and app.password and app.password.get_secret_value() == "s3cret"
    assert app.become and app.become_user == "root"
    assert app.become_password and app.become_password.get_secret_value() == "topsecret"
    assert app.proxy_jump == "ops@gw1:22"
    old = inv.connection("old1")
    assert (old.address, old.port, old.proxy_jump) == ("198.51.100.7", 2022, "jump@bastion")
    assert inv.connection("2001:db8::10").port == 2222


def test_secrets_are_masked_in_repr_and_dumps() -> None:
    app = load_inventory(DATA / "ini_connection" / "hosts.ini").connection("app1")
    for text in (repr(app), str(app), app.model_dump_json()):
        assert "s3cret" not in text and "topsecret" not in text


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        ("-o ProxyJump=user@bastion:22", "user@bastion:22"),
        ("-o StrictHostKeyChecking=no -J bastion", "bastion"),
        ("-Jops@b1,ops@b2", "ops@b1,ops@b2"),
        ("-oProxyJump=b", "b"),
        ('-o "ProxyJump b"', "b"),
        ("-o 'ProxyCommand=ssh -W %h:%p -q -p 2200 admin@bastion'", "admin@bastion:2200"),
        ("-o ProxyJump=none", None),
        ("-o ProxyCommand='nc -X 5 proxy %h %p'", None),
        ("-o ServerAliveInterval=5", None),
        ("", None),
    ],
)
def test_proxy_jump_is_extracted_from_ssh_args(args: str, jump: str | None) -> None:
    assert proxy_jump_from_args(args) == jump


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("h ansible_port=ssh", "ansible_port must be a number"),
        ("h ansible_port=70000", "ansible_port must be a number"),
        ("h ansible_become=maybe", "ansible_become must be a boolean"),
        ("h ansible_host='{{ ip }}'", "Jinja2 template"),
    ],
)
def test_bad_connection_variables_are_invalid_input(line: str, rule: str) -> None:
    with pytest.raises(InvalidInput, match=rule):
        parse_inventory(line + "\n", "ini").connection("h")


def test_ssh_host_alias_wins_as_in_ansible() -> None:
    inv = parse_inventory("h ansible_host=a ansible_ssh_host=b ansible_become=no\n", "ini")
    assert inv.connection("h").address == "b"
    assert inv.connection("h").become is False
