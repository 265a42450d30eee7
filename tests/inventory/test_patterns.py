"""Host patterns select hosts as Ansible does: unions, intersections, exclusions, slices."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.inventory import parse_inventory, select_hosts, split_host_pattern

INV = parse_inventory(
    """\
bastion
[web]
web[1:4]
[db]
db[1:2]
web4
[prod:children]
web
db
""",
    "ini",
)


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("all", ["bastion", "web1", "web2", "web3", "web4", "db1", "db2"]),
        ("*", ["bastion", "web1", "web2", "web3", "web4", "db1", "db2"]),
        ("db:web", ["db1", "db2", "web4", "web1", "web2", "web3"]),
        ("db,bastion", ["db1", "db2", "web4", "bastion"]),
        ("web:&db", ["web4"]),
        ("prod:!web", ["db1", "db2"]),
        ("!web", ["bastion", "db1", "db2"]),
        ("web*", ["web1", "web2", "web3", "web4"]),
        ("~(web|db)[13]", ["web1", "web3", "db1"]),
        ("web[0]", ["web1"]),
        ("web[-1]", ["web4"]),
        ("web[1:2]", ["web2", "web3"]),
        ("web[2:]", ["web3", "web4"]),
        ("prod[3:4]:&db", ["web4", "db1"]),
        ("web1:web1:web[0]", ["web1"]),
    ],
)
def test_patterns_select_hosts_in_ansible_order(pattern: str, hosts: list[str]) -> None:
    assert INV.select(pattern) == hosts


def test_limit_applies_on_top_of_the_pattern() -> None:
    assert INV.select("prod", limit="db*:bastion") == ["web4", "db1", "db2"]
    assert INV.select("prod", limit=["web[0:1]", "!web1"]) == ["web2"]


def test_a_pattern_that_matches_nothing_is_empty_with_ansibles_warning() -> None:
    selection = select_hosts(INV, "web:nosuch")
    assert selection.hosts == ("web1", "web2", "web3", "web4")
    assert selection.warnings == ("Could not match supplied host pattern, ignoring: nosuch",)


def test_a_subscript_past_the_end_selects_nothing() -> None:
    selection = select_hosts(INV, "db[7]")
    assert selection.hosts == ()
    assert selection.warnings == ("No hosts matched the subscripted pattern 'db[7]'",)


def test_an_invalid_regex_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="Invalid host list pattern"):
        select_hosts(INV, "~web(")


def test_splitting_keeps_ranges_and_ipv6_whole() -> None:
    assert split_host_pattern("a:b[1:2]:&c") == ["a", "b[1:2]", "&c"]
    assert split_host_pattern(" a , b[1:2] ") == ["a", "b[1:2]"]
    assert split_host_pattern("2001:db8::1") == ["2001:db8::1"]


def test_grandchild_groups_follow_declaration_order() -> None:
    # Ansible walks groups two or more levels down in Python set order (which follows memory
    # addresses); declaration order is used here, and equals Ansible's whenever one group per
    # level has children.
    inv = parse_inventory("[p:children]\nx\n[q:children]\ny\n[x]\nhx\n[y]\nhy\n", "ini")
    assert inv.select("all") == ["hx", "hy"]
