"""Ansible-compatible inventories: INI and YAML files, group_vars/host_vars, host patterns.

Pure Python: reading an inventory never runs Ansible, SSH or any plugin code.
"""

from orchestrator.inventory.ansible_json import ansible_inventory_list, dump_ansible_json
from orchestrator.inventory.builtin import registry_domains, with_builtin_groups
from orchestrator.inventory.connection import HostConnection
from orchestrator.inventory.loader import load_inventory, parse_inventory
from orchestrator.inventory.model import Group, Host, Inventory
from orchestrator.inventory.patterns import HostSelection, select_hosts, split_host_pattern

__all__ = [
    "Group",
    "Host",
    "HostConnection",
    "HostSelection",
    "Inventory",
    "ansible_inventory_list",
    "dump_ansible_json",
    "load_inventory",
    "parse_inventory",
    "registry_domains",
    "select_hosts",
    "split_host_pattern",
    "with_builtin_groups",
]
