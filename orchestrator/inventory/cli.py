"""``orchestrator inventory``: print an inventory as ``ansible-inventory --list`` or the hosts of
a pattern as ``ansible PATTERN --list-hosts`` does, so both can be compared with Ansible."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.errors import OrchestratorError
from orchestrator.inventory.ansible_json import ansible_inventory_list, dump_ansible_json
from orchestrator.inventory.loader import load_inventory
from orchestrator.inventory.patterns import select_hosts, split_host_pattern

EMPTY_INVENTORY = (
    "provided hosts list is empty, only localhost is available. "
    "Note that the implicit localhost does not match 'all'"
)
NO_HOSTS = "Specified inventory, host pattern and/or --limit leaves us with no hosts to target."


@click.command("inventory")
@click.option(
    "-i",
    "--inventory",
    "source",
    required=True,
    type=click.Path(exists=True, dir_okay=True, path_type=Path),
    help="Inventory file (INI or YAML) or directory of inventory files.",
)
@click.option(
    "--list", "as_list", is_flag=True, help="Print the inventory as ansible-inventory --list."
)
@click.option(
    "--list-hosts", "pattern", metavar="PATTERN", help="Print the hosts matching PATTERN."
)
@click.option("-l", "--limit", help="Further limit hosts to this pattern (@FILE reads names).")
def inventory_command(source: Path, as_list: bool, pattern: str | None, limit: str | None) -> None:
    """Show an Ansible inventory the way Ansible reads it."""
    if as_list == (pattern is not None):
        raise click.UsageError("use exactly one of --list or --list-hosts PATTERN")
    try:
        inventory = load_inventory(source)
        limit_patterns = _limit_patterns(limit)
        _warn(inventory.warnings)
        if as_list:
            click.echo(dump_ansible_json(ansible_inventory_list(inventory, limit_patterns)))
            return
        selection = select_hosts(inventory, pattern or "all", limit_patterns)
    except OrchestratorError as exc:
        raise click.ClickException(exc.detail) from None
    _warn(selection.warnings)
    if not inventory.hosts:
        _warn((EMPTY_INVENTORY,))
    elif not selection.hosts:
        if limit_patterns is not None:
            raise click.ClickException(NO_HOSTS)
        _warn(("No hosts matched, nothing to do",))
    click.echo(f"  hosts ({len(selection.hosts)}):")
    for host in selection.hosts:
        click.echo(f"    {host}")


def _limit_patterns(limit: str | None) -> list[str] | None:
    """``--limit`` split like Ansible's, with ``@FILE`` entries replaced by the file's lines."""
    if limit is None:
        return None
    patterns: list[str] = []
    for item in split_host_pattern(limit):
        if item.startswith("@"):
            path = Path(item[1:])
            if not path.is_file():
                raise click.ClickException(f"Unable to find limit file {path}")
            patterns.extend(line.strip() for line in path.read_text().split("\n"))
        else:
            patterns.append(item)
    return patterns


def _warn(warnings: tuple[str, ...]) -> None:
    for warning in warnings:
        click.echo(f"[WARNING]: {warning}", err=True)
