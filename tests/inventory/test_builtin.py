"""The hypervisors and domains groups are generated from registry entries."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.inventory import ansible_inventory_list, load_inventory, parse_inventory
from orchestrator.inventory import with_builtin_groups as add

HYPERVISORS = [{"name": "hv1", "address": "192.0.2.1"}, {"name": "hv2"}]
DOMAINS = [
    {"name": "vm1", "hypervisor": "hv1", "address": "192.0.2.101"},
    {"name": "vm2", "hypervisor": "hv2", "state": "running"},
]


def test_builtin_groups_hold_registry_hosts_with_their_vars() -> None:
    inv = add(parse_inventory("[web]\nw1\n", "ini"), HYPERVISORS, DOMAINS)
    assert inv.groups["all"].children == ("ungrouped", "web", "hypervisors", "domains")
    assert inv.select("hypervisors") == ["hv1", "hv2"]
    assert inv.select("domains") == ["vm1", "vm2"]
    assert inv.host_vars("vm1") == {"ansible_host": "192.0.2.101", "hypervisor": "hv1"}
    assert inv.connection("hv1").address == "192.0.2.1"
    assert inv.connection("hv2").address == "hv2"
    listed = ansible_inventory_list(inv)
    assert listed["domains"] == {"hosts": ["vm1", "vm2"]}


def test_inventory_definitions_of_builtin_groups_are_kept(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(
        "hv1 ansible_host=10.9.9.9\n[hypervisors]\n[hypervisors:vars]\nansible_user=root\n"
    )
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "domains.yml").write_text("ansible_user: cloud\n")
    inv = add(load_inventory(tmp_path / "hosts"), HYPERVISORS, DOMAINS)
    assert inv.connection("hv1").address == "10.9.9.9"
    assert inv.connection("hv1").user == "root"
    assert inv.connection("vm2").user == "cloud"
    assert inv.groups["ungrouped"].hosts == ()


@pytest.mark.parametrize(
    ("hypervisors", "domains", "field"),
    [
        ([{"address": "x"}], [], "hypervisors.0.name"),
        ([{"name": "bad name"}], [], "hypervisors.0.name"),
        ([], [{"name": "vm1"}], "domains.0.hypervisor"),
        ([], [{"name": "vm,1", "hypervisor": "hv1"}], "domains.0.name"),
    ],
)
def test_bad_registry_entries_are_invalid_input(
    hypervisors: list[dict[str, str]], domains: list[dict[str, str]], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        add(parse_inventory("h\n", "ini"), hypervisors, domains)
    assert caught.value.to_problem()["errors"][0]["field"] == field
