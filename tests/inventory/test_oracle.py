"""Oracle tests: our reading of each test inventory equals what ansible-core itself reports.

``--list`` JSON must be equal; for every pattern the selected hosts must be the same, in the same
order, with the same "Could not match" warnings.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.inventory import ansible_inventory_list, load_inventory, select_hosts
from orchestrator.inventory.cli import inventory_command
from tests.inventory.ansible_oracle import Ansible

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ansible") is None, reason="ansible-core is not installed in this venv"
)

DATA = Path(__file__).parent / "data"
COMMON = [
    "all", "*", "ungrouped", "nomatch", "all:!nomatch", "!ungrouped", "&all", "all[0]",
    "all[-1]", "all[1:3]", "all[2:]", "all[0:0]", "*[1]", "~.*[0-9]$", "all:&~^[a-m]",
]  # fmt: skip
PATTERNS: dict[str, list[str]] = {
    "ini_basic/hosts.ini": [
        "web", "prod", "web:db", "web,db", "prod:!db", "prod:&web", "web*", "*.example.com",
        "~web\\d+", "~db-[ab]", "prod[0]", "prod[-1]", "prod[1:3]", "prod[5:]", "web[0:9]",
        "web:nomatch", "db-a", "10.0.0.5", "empty", "lonely", "cache[9]", "web[1-2]",
        "all:!prod", "db-?:cache*", "stage:web:&prod:!web0[12]*", "prod:!~.*example.com",
    ],
    "ini_vars_dirs/hosts": [
        "web", "prod", "a_team", "a_team:&b_team", "*_team", "prod:!web2*", "db[1]",
        "app1:web1.example.com", "*1*", "~^db", "prod[0:1]:app",
    ],
    "yaml_nested/inventory.yml": [
        "dc1", "compute", "gpu", "storage", "dc2", "monitoring", "dc1:!gpu", "compute:&monitoring",
        "node*", "node00[13]", "~node00[2-4]", "dc1[3:5]", "compute[-1]", "*.example.com",
        "dc*", "osd3:gpub:solo.example.com", "node004", "edge2.dc1.example.com",
    ],
    "yaml_priority/hosts.yaml": [
        "alpha", "beta", "gamma", "zeta", "alpha:beta", "alpha:&beta", "zeta:!h1", "?eta",
        "~h[23]", "gamma[1]",
    ],
    "json_inv/inventory.json": ["web", "db", "web:db:!w2", "w*", "ungrouped:web", "db[0]"],
    "dir_inventory": ["web", "canary", "db", "web:!canary", "w?", "web[-1]"],
    "ini_connection/hosts.ini": [
        "edge", "internal", "legacy", "192.0.2.10", "2001:db8::10", "internal:&app2",
        "app[1:2]", "~^app", "192.0.2.*", "internal[0:1],legacy",
    ],
}  # fmt: skip
LIMITS: dict[str, list[tuple[str, str]]] = {
    "ini_basic/hosts.ini": [
        ("all", "web"), ("prod", "db*:cache"), ("web", "~web0[12].*"), ("all", "nomatch"),
        ("prod", "!web"), ("web[0:2]", "web[1:]"),
    ],
    "yaml_nested/inventory.yml": [("dc1", "compute:!gpu"), ("all", "monitoring,dc2")],
    "ini_vars_dirs/hosts": [("all", "a_team")],
}  # fmt: skip


def _queries(inventory: str) -> list[tuple[str, str | None]]:
    return [(p, None) for p in COMMON + PATTERNS[inventory]] + list(LIMITS.get(inventory, []))


@pytest.fixture(scope="module")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ansible]:
    yield Ansible(tmp_path_factory.mktemp("ansible"))


@pytest.fixture(scope="module")
def probed(ansible: Ansible) -> dict[tuple[str, str, str | None], dict[str, Any]]:
    """Ansible's answer to every query, one probe process per inventory, two at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = dict(
            zip(
                PATTERNS,
                pool.map(lambda inv: ansible.probe(DATA / inv, _queries(inv)), PATTERNS),
                strict=True,
            )
        )
    return {
        (inv, pattern, limit): answer
        for inv in PATTERNS
        for (pattern, limit), answer in zip(_queries(inv), answers[inv], strict=True)
    }


@pytest.mark.parametrize("inventory", list(PATTERNS))
def test_list_json_equals_ansible_inventory_list(ansible: Ansible, inventory: str) -> None:
    expected = ansible.inventory_list(DATA / inventory)
    assert ansible_inventory_list(load_inventory(DATA / inventory)) == expected


@pytest.mark.parametrize(("inventory", "limit"), [("ini_basic/hosts.ini", "prod:!db")])
def test_list_json_with_limit_equals_ansible(ansible: Ansible, inventory: str, limit: str) -> None:
    expected = ansible.inventory_list(DATA / inventory, limit)
    assert ansible_inventory_list(load_inventory(DATA / inventory), limit) == expected


@pytest.mark.parametrize(
    ("inventory", "pattern", "limit"),
    [(inv, p, lim) for inv in PATTERNS for p, lim in _queries(inv)],
)
def test_pattern_selects_the_hosts_ansible_selects(
    probed: dict[tuple[str, str, str | None], dict[str, Any]],
    inventory: str,
    pattern: str,
    limit: str | None,
) -> None:
    answer = probed[(inventory, pattern, limit)]
    selection = select_hosts(load_inventory(DATA / inventory), pattern, limit)
    if "error" in answer:
        # Ansible refuses a --limit that leaves no host; we return no host.
        assert selection.hosts == ()
        return
    assert list(selection.hosts) == answer["hosts"]
    mismatch = "Could not match supplied host pattern"
    assert {w for w in selection.warnings if w.startswith(mismatch)} == {
        w for w in answer["warnings"] if w.startswith(mismatch)
    }


@pytest.mark.parametrize(
    ("inventory", "pattern", "limit"),
    [
        ("ini_basic/hosts.ini", "prod:!db", None),
        ("ini_basic/hosts.ini", "web*", "~.*0[24].*"),
        ("yaml_nested/inventory.yml", "all", None),
        ("ini_connection/hosts.ini", "nomatch", None),
    ],
)
def test_cli_list_hosts_prints_what_ansible_prints(
    ansible: Ansible, inventory: str, pattern: str, limit: str | None
) -> None:
    expected = ansible.list_hosts(DATA / inventory, pattern, limit)
    args = ["-i", str(DATA / inventory), "--list-hosts", pattern]
    if limit:
        args += ["--limit", limit]
    result = CliRunner().invoke(inventory_command, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == expected
