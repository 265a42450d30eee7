"""YAML inventories read as ansible-core's yaml plugin reads them; errors name file and line."""

from __future__ import annotations

import pytest

from orchestrator.errors import InvalidInput
from orchestrator.inventory import parse_inventory

TEXT = """\
all:
  vars:
    site: main
  children:
    web:
      hosts:
        web[1:2]:
          port_note: "2222"
        "web3:2200":
    db:
      hosts: db1
      children:
        replicas:
          hosts:
            db[2:3]:
monitoring:
  hosts:
    mon1:
    web1:
"""


def test_yaml_groups_hosts_and_string_forms() -> None:
    inv = parse_inventory(TEXT, "yaml")
    assert list(inv.hosts) == ["web1", "web2", "web3", "db1", "db2", "db3", "mon1"]
    assert inv.groups["db"].hosts == ("db1",)
    assert inv.groups["all"].children == ("ungrouped", "web", "db", "monitoring")
    assert inv.host_vars("web3") == {"site": "main", "ansible_port": 2200}
    assert inv.host_vars("web1") == {"site": "main", "port_note": "2222"}
    assert inv.group_hosts("db") == ["db1", "db2", "db3"]


def test_format_is_detected_from_the_text() -> None:
    assert "web1" in parse_inventory(TEXT).hosts
    assert list(parse_inventory("[g]\nh1\n").hosts) == ["h1"]
    assert list(parse_inventory("h1\nh2\n").hosts) == ["h1", "h2"]


def test_unknown_keys_are_skipped_with_ansibles_warning() -> None:
    inv = parse_inventory("g:\n  hosts: {h: }\n  extra: {a: 1}\n", "yaml")
    assert inv.warnings == (
        'Skipping unexpected key (extra) in group (g), only "vars", "children" and "hosts" '
        "are valid",
    )


@pytest.mark.parametrize(
    ("text", "line", "rule"),
    [
        (
            "g:\n  hosts:\n    - h1\n",
            2,
            'Invalid "hosts" entry for "g" group, requires a dictionary',
        ),
        ("g:\n  hosts:\n    5:\n", 3, "Host pattern 5 must be a string"),
        ("plugin: aws_ec2\n", 1, "Plugin configuration YAML file, not YAML inventory"),
        ("g:\n  hosts: {h1: [1]}\n", 2, "expected dictionary"),
        ("g:\n  hosts:\n    h1:\n\tvars: {}\n", 4, "invalid YAML"),
        ("g:\n  children:\n    g:\n", 3, "cannot be a child of itself"),
        ("- a\n", 1, "it should be a dictionary, got: list"),
        ("g:\n  hosts:\n    w[c:a]:\n", 3, "host range must have begin <= end"),
    ],
)
def test_bad_yaml_names_file_line_and_rule(text: str, line: int, rule: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_inventory(text, "yaml", source="inv.yml")
    assert caught.value.detail.startswith(f"inv.yml:{line}: "), caught.value.detail
    assert rule in caught.value.detail


def test_empty_yaml_is_rejected() -> None:
    with pytest.raises(InvalidInput, match=r"inv\.yml: Parsed empty YAML file"):
        parse_inventory("", "yaml", source="inv.yml")


def test_vault_values_are_refused_and_unsafe_is_text() -> None:
    inv = parse_inventory("g:\n  hosts:\n    h:\n      t: !unsafe '{{ x }}'\n", "yaml")
    assert inv.host_vars("h") == {"t": "{{ x }}"}
    with pytest.raises(InvalidInput, match="vault"):
        parse_inventory("g:\n  vars:\n    p: !vault |\n      abc\n", "yaml")
