"""Host entries and ranges expand to the names Ansible gives them."""

from __future__ import annotations

import pytest

from orchestrator.inventory.ranges import RangeError, expand_host_range, split_host_entry


@pytest.mark.parametrize(
    ("entry", "names"),
    [
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("n[1:10:3]", ["n1", "n4", "n7", "n10"]),
        ("n[:2]", ["n0", "n1", "n2"]),
        ("r[1:2]-[x:y]", ["r1-x", "r1-y", "r2-x", "r2-y"]),
        ("n[08:10]", ["n08", "n09", "n10"]),
        ("n[8:10]", ["n8", "n9", "n10"]),
        ("x[A:C]", ["xA", "xB", "xC"]),
        ("plain", ["plain"]),
    ],
)
def test_ranges_expand_in_order_with_padding(entry: str, names: list[str]) -> None:
    assert expand_host_range(entry) == names


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("n[01:100]", "equal-length begin and end"),
        ("n[c:a]", "begin <= end"),
        ("n[1:]", "must specify end value"),
        ("n[1:2:3:4]", "begin:end or begin:end:step"),
        ("n[1:x]", "not a number"),
        ("n[1:5:0]", "step must be a positive number"),
    ],
)
def test_bad_ranges_name_the_rule(entry: str, rule: str) -> None:
    with pytest.raises(RangeError, match=rule):
        expand_host_range(entry)


@pytest.mark.parametrize(
    ("entry", "names", "port"),
    [
        ("db1:2200", ["db1"], 2200),
        ("10.0.0.5:2201", ["10.0.0.5"], 2201),
        ("[2001:db8::1]:2222", ["2001:db8::1"], 2222),
        ("2001:db8::1", ["2001:db8::1"], None),
        ("web[1:2]:22", ["web1", "web2"], 22),
        ("odd/name", ["odd/name"], None),
    ],
)
def test_host_entries_split_into_names_and_port(
    entry: str, names: list[str], port: int | None
) -> None:
    assert split_host_entry(entry) == (names, port)
