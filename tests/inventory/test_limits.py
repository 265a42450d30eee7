"""Hostile inventories and host patterns are refused with the rule they break, or read in
bounded time and memory: YAML aliases, huge or repeated host ranges, too many hosts or groups,
and regular expressions that would backtrack without end."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.fleet.inventory_rules import MAX_INVENTORY_CHARS, parse_api_inventory
from orchestrator.inventory import parse_inventory, select_hosts
from orchestrator.inventory.limits import (
    MAX_ASSIGNMENTS,
    MAX_GROUPS,
    MAX_HOST_NAME_CHARS,
    MAX_HOSTS,
    MAX_PATTERN_CHARS,
    MAX_RANGE_HOSTS,
)


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs": each level lists the one before nine times (9**levels strings)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "all:\n  vars:\n" + "".join(f"    {line}\n" for line in lines)


def refusal(text: str, fmt: str | None = None) -> dict[str, object]:
    with pytest.raises(InvalidInput) as refused:
        parse_inventory(text, fmt, source="inv")  # type: ignore[arg-type]
    return refused.value.to_problem()


@pytest.mark.parametrize("fmt", [None, "yaml"])
def test_yaml_aliases_are_refused_before_they_expand(fmt: str | None) -> None:
    problem = refusal(alias_bomb(), fmt)

    assert "YAML aliases are not accepted in inventories" in str(problem["detail"])
    assert problem["errors"] == [
        {
            "field": "inventory",
            "file": "inv",
            "line": 4,
            "message": "YAML aliases are not accepted in inventories: write the value out "
            "where it is used (an alias can make a few bytes expand without end)",
        }
    ]


def test_an_alias_for_host_variables_is_refused_with_its_line() -> None:
    text = "web:\n  hosts:\n    w1: &common {role: web}\n    w2: *common\n"
    problem = refusal(text, "yaml")
    assert problem["detail"].startswith("inv:4: YAML aliases are not accepted")  # type: ignore[union-attr]


def test_a_merge_key_is_an_alias_too() -> None:
    text = "web:\n  vars: &v {a: 1}\ndb:\n  vars:\n    <<: *v\n"
    assert "YAML aliases" in str(refusal(text, "yaml")["detail"])


def test_an_anchor_that_is_never_used_is_harmless() -> None:
    inv = parse_inventory("web:\n  hosts:\n    w1: &unused {role: web}\n", "yaml")
    assert inv.host_vars("w1") == {"role": "web"}


@pytest.mark.parametrize(
    "text", ["[web]\nh[0:9999]\n", "web:\n  hosts:\n    h[0:9999]:\n      role: web\n"]
)
def test_a_range_of_as_many_hosts_as_the_cap_is_read(text: str) -> None:
    inv = parse_inventory(text)
    assert len(inv.hosts) == MAX_RANGE_HOSTS == 10_000
    assert inv.select("web[0]:web[-1]") == ["h0", "h9999"]
    assert inv.select("~h99[0-9]{2}$") == [f"h{n}" for n in range(9900, 10_000)]


@pytest.mark.parametrize(
    ("text", "line"),
    [("[web]\nh[0:99999]\n", 2), ("web:\n  hosts:\n    h[0:99999]:\n", 3)],
)
def test_a_range_past_the_cap_is_refused_before_it_expands(text: str, line: int) -> None:
    problem = refusal(text)
    rule = f"host range expands to 100000 hosts, more than the {MAX_RANGE_HOSTS} one entry may hold"
    assert problem["detail"] == f"inv:{line}: {rule}"


def test_ranges_multiply_and_the_product_is_capped() -> None:
    problem = refusal("[web]\nh[0:999]-[0:99]\n")
    assert "expands to 100000 hosts" in str(problem["detail"])


def test_an_empty_range_beside_a_huge_one_names_no_host_at_once() -> None:
    # Found by the property tests: the huge range was listed before the product was known.
    inv = parse_inventory("[web]\nv[0:46035081][9:1]\nw1\n", "ini")
    assert list(inv.hosts) == ["w1"]


def test_more_hosts_than_the_cap_in_total_are_refused() -> None:
    problem = refusal("[a]\na[0:5999]\n[b]\nb[0:5999]\n")
    assert problem["detail"] == f"inv:4: more than {MAX_HOSTS} hosts in one inventory"


def test_more_groups_than_the_cap_are_refused() -> None:
    text = "".join(f"[g{n}]\nh{n}\n" for n in range(MAX_GROUPS))
    problem = refusal(text)
    # "all" and "ungrouped" count: the cap is reached before the last section.
    assert problem["detail"] == f"inv:{2 * MAX_GROUPS - 3}: more than {MAX_GROUPS} groups"


def test_a_range_repeated_on_many_lines_is_refused_rather_than_read_for_minutes() -> None:
    lines = MAX_ASSIGNMENTS // MAX_RANGE_HOSTS + 1
    problem = refusal("[web]\n" + "h[0:9999]\n" * lines)
    assert f"more than {MAX_ASSIGNMENTS} host entries and variables" in str(problem["detail"])


def test_variables_given_to_every_host_of_a_range_are_counted() -> None:
    text = "[web]\nh[0:9999] " + " ".join(f"v{n}=1" for n in range(200)) + "\n"
    assert "host entries and variables" in str(refusal(text)["detail"])


def test_a_host_name_longer_than_the_cap_is_refused() -> None:
    problem = refusal(f"[web]\n{'h' * (MAX_HOST_NAME_CHARS + 1)}\n")
    assert f"longer than {MAX_HOST_NAME_CHARS} characters" in str(problem["detail"])


def test_a_long_prefix_on_a_range_is_refused_before_it_expands() -> None:
    problem = refusal(f"[web]\n{'h' * 500_000}[0:9999]\n")
    assert f"longer than {MAX_HOST_NAME_CHARS} characters" in str(problem["detail"])


NAMES = parse_inventory(
    "[web]\n" + "a" * 200 + "-\n" + "a" * 60 + "\nweb01.example.com\ndb1\n", "ini"
)


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("~(a+)+$", ["a" * 60]),
        ("~(a|aa)+$", ["a" * 60]),
        ("~(.*a){12}$", ["a" * 60]),
        ("~(\\w+\\d?)+!$", []),
    ],
)
def test_a_regex_pattern_matches_in_linear_time(pattern: str, hosts: list[str]) -> None:
    # Python's re needs about 2**200 steps to reject the first host name for each of these.
    assert NAMES.select(pattern) == hosts


def test_regex_patterns_keep_ansibles_meaning() -> None:
    assert NAMES.select("~web\\d+\\.example") == ["web01.example.com"]
    assert NAMES.select("~(?i)DB") == ["db1"]
    assert NAMES.select("~(?P<kind>web|db)[0-9]+") == ["web01.example.com", "db1"]
    assert NAMES.select("all:!~a{5}") == ["web01.example.com", "db1"]  # ~a+ would match "all"


@pytest.mark.parametrize(
    ("pattern", "feature"),
    [("~(?=web)w", "lookahead"), ("~(w)\\1", "backreference"), ("~(?<!x)db", "lookbehind")],
)
def test_regex_features_without_a_linear_time_match_are_refused(pattern: str, feature: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        select_hosts(NAMES, pattern)
    problem = refused.value.to_problem()
    assert problem["errors"][0]["field"] == "pattern"  # type: ignore[index]
    assert "lookarounds and backreferences are not supported" in str(problem["detail"])


def test_a_regex_whose_program_would_be_huge_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Invalid host list pattern"):
        select_hosts(NAMES, "~((a{100}){100}){100}")


@pytest.mark.parametrize("pattern", ["!", "&", "web,!"])
def test_a_bare_exclusion_or_intersection_is_refused(pattern: str) -> None:
    # Found by the property tests: ansible-core itself fails with an IndexError here.
    with pytest.raises(InvalidInput, match="must be followed by a pattern"):
        select_hosts(NAMES, pattern)


def test_a_pattern_longer_than_the_cap_is_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        select_hosts(NAMES, "web," * MAX_PATTERN_CHARS)
    assert f"longer than {MAX_PATTERN_CHARS} characters" in refused.value.detail


def test_an_inventory_as_large_as_a_request_body_is_read() -> None:
    # About 1 MiB (the API's body cap): 10,000 hosts with variables, in 100 groups.
    lines = []
    for group in range(100):
        lines.append(f"[g{group}]")
        lines += [
            f"web-{group}-{n}.example.com ansible_host=10.{group}.{n // 256}.{n % 256} "
            f"ansible_port=22 ansible_user=deploy rack=r{n % 7} zone=eu-west-1a"
            for n in range(100)
        ]
    text = "\n".join(lines) + "\n"
    assert len(text) > 1_000_000

    inv = parse_inventory(text)

    assert len(inv.hosts) == 10_000 and len(inv.groups) == 102
    assert inv.host_vars("web-99-99.example.com")["ansible_host"] == "10.99.0.99"
    assert len(inv.select("g7:&~.*-9[0-9]\\.example\\.com")) == 10


def test_the_largest_yaml_inventory_the_api_accepts_is_read() -> None:
    hosts = [
        f"        web-{n}.example.com: {{ansible_host: 10.0.{n // 256}.{n % 256}, rack: r{n % 7}}}"
        for n in range(MAX_INVENTORY_CHARS // 70)
    ]
    text = "\n".join(["all:", "  children:", "    web:", "      hosts:", *hosts]) + "\n"
    text = text[: text.rindex("\n", 0, MAX_INVENTORY_CHARS) + 1]

    inv = parse_api_inventory(text, None, "inv")

    assert inv.format == "yaml" and len(inv.hosts) == len(text.splitlines()) - 4 > 7000
    with pytest.raises(InvalidInput, match="YAML aliases"):
        parse_api_inventory(alias_bomb(), None, "inv")
