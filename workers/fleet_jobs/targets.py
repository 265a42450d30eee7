"""From a job's parameters to the executor's inputs: the inventory (loaded on the worker, where
passwords may live), the selected hosts as ``HostTarget``s, and a call and options whose local
paths point into the worker's ``fleet-files/`` directory."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

from orchestrator.errors import InvalidInput
from orchestrator.fleet.calls import AnyCall
from orchestrator.fleet.files import resolve_fleet_file
from orchestrator.fleet.options import FleetOptions
from orchestrator.fleet.target import HostTarget
from orchestrator.inventory import (
    HostConnection,
    Inventory,
    load_inventory,
    parse_inventory,
    registry_domains,
    with_builtin_groups,
)
from orchestrator.kinds.fleet import FleetTargetParams, local_paths


def job_inventory(
    params: FleetTargetParams, files: Path, hypervisors: list[dict[str, Any]] | None
) -> Inventory:
    """The inventory a job names; ``hypervisors`` (registry entries) fill the built-in group."""
    if params.inventory_path is not None:
        path = resolve_fleet_file(files, params.inventory_path, "inventory_path")
        inventory = load_inventory(path)
    elif params.inventory is not None:
        base = (
            resolve_fleet_file(files, params.vars_dir, "vars_dir")
            if params.vars_dir is not None
            else None
        )
        inventory = parse_inventory(
            params.inventory, params.inventory_format, source=_source(params), base_dir=base
        )
    else:
        raise InvalidInput(
            f"inventory {params.inventory_name!r} was not resolved: submit the job through the API",
            errors=[{"field": "inventory_name", "message": "must be resolved by the API"}],
        )
    if hypervisors is not None:
        inventory = with_builtin_groups(inventory, hypervisors, registry_domains(hypervisors))
    return inventory


def host_target(connection: HostConnection, files: Path) -> HostTarget:
    """The executor's view of one host; passwords leave their ``SecretStr`` only here."""
    if connection.transport not in ("ssh", "paramiko"):
        message = f"ansible_connection={connection.transport} is not supported (only ssh)"
        raise InvalidInput(
            f"host {connection.name}: {message}",
            errors=[{"field": "inventory", "message": f"host {connection.name}: {message}"}],
        )
    try:
        return HostTarget(
            name=connection.name,
            address=connection.address,
            port=connection.port,
            # Ansible logs in as the local user when the inventory names none.
            user=connection.user or getpass.getuser(),
            key_file=_key_file(connection.key_file, files),
            password=_reveal(connection.password),
            become=connection.become,
            become_user=connection.become_user or "root",
            become_password=_reveal(connection.become_password),
            proxy_jump=connection.proxy_jump,
        )
    except ValueError as exc:
        raise InvalidInput(str(exc), errors=[{"field": "inventory", "message": str(exc)}]) from None


def localized_call(call: AnyCall, files: Path) -> AnyCall:
    """``call`` with its local paths resolved inside ``files``."""
    update = {
        # A trailing '/' on a directory means "its contents" to copy; resolving drops it.
        field: str(resolve_fleet_file(files, value, f"call.{field}"))
        + ("/" if value.endswith("/") else "")
        for field, value in local_paths(call).items()
    }
    return call.model_copy(update=update) if update else call


def localized_options(options: FleetOptions, files: Path) -> FleetOptions:
    """``options`` with a relative known_hosts store and relative known_hosts files resolved
    inside ``files`` (absolute known_hosts files are read as they are: they are only read)."""
    store = options.known_hosts_store
    # "~" is the worker's home: options arrive as the submitter wrote them.
    known = [os.path.expanduser(p) for p in options.known_hosts_files]
    update: dict[str, Any] = {
        "known_hosts_files": tuple(
            p if os.path.isabs(p) else str(resolve_fleet_file(files, p, "known_hosts_files"))
            for p in known
        )
    }
    if store is not None:
        update["known_hosts_store"] = str(resolve_fleet_file(files, store, "known_hosts_store"))
    return options.model_copy(update=update)


def _source(params: FleetTargetParams) -> str:
    if params.inventory_name is None:
        return "<inline inventory>"
    version = f" v{params.inventory_version}" if params.inventory_version else ""
    return f"inventory {params.inventory_name}{version}"


def _key_file(path: str | None, files: Path) -> str | None:
    if path is None:
        return None
    path = os.path.expanduser(path)
    if os.path.isabs(path):
        return path  # keys stay on the worker and are named by path (design rule 5)
    return str(resolve_fleet_file(files, path, "ansible_private_key_file"))


def _reveal(secret: Any) -> str | None:
    return None if secret is None else str(secret.get_secret_value())
