"""INI inventories read as ansible-core reads them, and bad ones rejected with file and line."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.inventory import ansible_inventory_list, parse_inventory

TEXT = """\
loose ansible_port=2222 name='quoted value' n=5 f=1.5 ok=True l="[1, 'a']" s="'22'" z=05
[web]
web[1:2] role=web

[web:vars]
http_port=8080
debug=False
motd=hello world
quoted='with spaces'

[site:children]
web
later

[later]
late1
"""


def test_host_line_values_are_python_literals() -> None:
    inv = parse_inventory(TEXT, "ini")
    assert inv.host_vars("loose") == {
        "ansible_port": 2222, "name": "quoted value", "n": 5, "f": 1.5, "ok": True,
        "l": [1, "a"], "s": "22", "z": "05",
    }  # fmt: skip


def test_vars_section_values_are_read_like_ansible_core() -> None:
    # ansible-core literal-evaluates :vars values too: 8080 is an int, False a bool.
    assert parse_inventory(TEXT, "ini").host_vars("web1") == {
        "role": "web", "http_port": 8080, "debug": False, "motd": "hello world",
        "quoted": "with spaces",
    }  # fmt: skip


def test_groups_children_and_implicit_groups() -> None:
    inv = parse_inventory(TEXT, "ini")
    assert list(inv.hosts) == ["loose", "web1", "web2", "late1"]
    assert inv.groups["site"].children == ("web", "later")
    assert inv.groups["all"].children == ("ungrouped", "site")
    assert inv.groups["ungrouped"].hosts == ("loose",)
    assert inv.group_hosts("all") == ["loose", "web1", "web2", "late1"]
    assert inv.hosts["web1"].groups == ("all", "site", "web")


def test_host_in_a_group_leaves_ungrouped() -> None:
    inv = parse_inventory("h1\nh2\n[g]\nh1\n", "ini")
    assert inv.groups["ungrouped"].hosts == ("h2",)
    assert ansible_inventory_list(inv)["g"] == {"hosts": ["h1"]}


def test_port_is_taken_from_the_first_mention_only() -> None:
    inv = parse_inventory("[a]\nh:2200\n[b]\nh:2300\n", "ini")
    assert inv.host_vars("h") == {"ansible_port": 2200}


@pytest.mark.parametrize(
    ("text", "line", "rule"),
    [
        ("[web]\nh1\n[web:hosts2]\n", 3, "Section [web:hosts2] has unknown type: hosts2"),
        ("[p:children]\nmissing\n", 2, "Section [p:children] includes undefined group 'missing'."),
        ("[g:vars]\nx=1\n", 1, "Section [g:vars] not valid for undefined group 'g'."),
        ("[g]\nh1 novalue\n", 2, "Expected key=value host variable assignment, got: novalue"),
        ("[g]\nh1 x='open\n", 2, "Error parsing host definition"),
        ("\n[g]\n[bad name]\n", 3, "Invalid section entry: '[bad name]'"),
        ("[g]\nh1\n[g:vars]\njust-a-word\n", 4, "Expected key=value, got: just-a-word"),
        ("[g]\nweb[01:100]\n", 2, "equal-length begin and end"),
        ("[g]\nhost:\n", 2, "ending in ':' is not allowed"),
        ("---\n", 1, "'---' is normally a sign this is a YAML file"),
        ("[a:children]\nb\n[b:children]\na\n", 4, "recursive dependency loop"),
        ("[g:vars]\nansible_group_priority=high\n[g]\n", 2, "must be an integer"),
    ],
)
def test_bad_ini_names_file_line_and_rule(text: str, line: int, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_inventory(text, "ini", source="site.ini")
    assert caught.value.detail.startswith(f"site.ini:{line}: ")
    assert rule in caught.value.detail
    assert caught.value.to_problem()["errors"][0]["line"] == line


def test_undeclared_vars_group_declared_later_is_fine() -> None:
    inv = parse_inventory("[g:vars]\nx=1\n[g]\nh\n", "ini")
    assert inv.host_vars("h") == {"x": 1}
