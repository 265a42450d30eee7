"""``orchestrator inventory`` prints what ansible-inventory and ansible --list-hosts print."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from orchestrator.inventory.cli import inventory_command

DATA = Path(__file__).parent / "data"
BASIC = str(DATA / "ini_basic" / "hosts.ini")


def test_list_prints_the_ansible_inventory_document() -> None:
    result = CliRunner().invoke(inventory_command, ["-i", BASIC, "--list"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["prod"] == {"children": ["web", "db", "stage"]}
    assert document["_meta"]["hostvars"]["db-x"]["ansible_port"] == 5433
    assert result.stdout.startswith('{\n    "_meta": {')


def test_list_hosts_prints_a_header_and_indented_names() -> None:
    result = CliRunner().invoke(inventory_command, ["-i", BASIC, "--list-hosts", "db"])
    assert result.stdout == "  hosts (4):\n    db-a\n    db-b\n    db-c\n    db-x\n"


def test_limit_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "limit").write_text("db-b\ndb-x\n")
    args = ["-i", BASIC, "--list-hosts", "db", "--limit", f"@{tmp_path / 'limit'}"]
    result = CliRunner().invoke(inventory_command, args)
    assert result.stdout == "  hosts (2):\n    db-b\n    db-x\n"


def test_no_match_warns_and_a_limit_that_leaves_nothing_fails() -> None:
    result = CliRunner().invoke(inventory_command, ["-i", BASIC, "--list-hosts", "nosuch"])
    assert result.exit_code == 0
    assert result.stdout == "  hosts (0):\n"
    assert "[WARNING]: Could not match supplied host pattern, ignoring: nosuch" in result.stderr
    args = ["-i", BASIC, "--list-hosts", "db", "--limit", "web"]
    result = CliRunner().invoke(inventory_command, args)
    assert result.exit_code == 1
    assert "leaves us with no hosts to target" in result.stderr


def test_bad_inventory_is_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[web]\nh1\n[web:weird]\n")
    result = CliRunner().invoke(inventory_command, ["-i", str(bad), "--list"])
    assert result.exit_code == 1
    assert f"{bad}:3: Section [web:weird] has unknown type: weird" in result.stderr


def test_exactly_one_action_is_required() -> None:
    result = CliRunner().invoke(inventory_command, ["-i", BASIC])
    assert result.exit_code == 2
    assert "exactly one of --list or --list-hosts" in result.stderr
