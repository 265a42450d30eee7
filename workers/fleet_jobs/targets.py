"""From a job's parameters to the executor's inputs: the inventory (loaded on the worker, where
passwords may live), the selected hosts as ``HostTarget``s with the worker's secrets bound to
the operator's own host entries, and a call and options whose local paths point into their
areas of the worker's ``fleet-files/`` directory (see :mod:`orchestrator.fleet.files`)."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import InvalidInput
from orchestrator.fleet.calls import AnyCall, CopyCall, FetchCall, ScriptCall
from orchestrator.fleet.files import (
    FILES_AREA,
    KEYS_AREA,
    KNOWN_HOSTS_AREA,
    check_path_component,
    fetch_area,
    resolve_config_path,
    resolve_in_area,
)
from orchestrator.fleet.options import FleetOptions
from orchestrator.fleet.secret_binding import BoundHosts, bind_worker_secrets
from orchestrator.fleet.target import HostTarget
from orchestrator.inventory import (
    HostConnection,
    Inventory,
    load_inventory,
    parse_inventory,
    registry_domains,
    with_builtin_groups,
)
from orchestrator.kinds.fleet import FleetTargetParams


@dataclass(frozen=True)
class JobInventory:
    """The inventory a job runs on, and the operator's inventory its secrets come from."""

    inventory: Inventory
    operator: Inventory | None  # None: the job reads no file of the operator's
    operator_wrote_job: bool  # the job's inventory is the operator's file (inventory_path)

    def bind(self, hosts: list[str]) -> BoundHosts:
        """The connections of ``hosts`` with the worker's secrets bound to the operator's
        own host entries (InvalidInput when the job moves one of them)."""
        return bind_worker_secrets(
            self.inventory,
            self.operator,
            hosts,
            login_user=getpass.getuser(),
            operator_wrote_job=self.operator_wrote_job,
        )


def job_inventory(
    params: FleetTargetParams, files: Path, hypervisors: list[dict[str, Any]] | None
) -> JobInventory:
    """The inventory a job names; ``hypervisors`` (registry entries) fill the built-in group."""
    if params.inventory_path is not None:
        path = resolve_config_path(files, params.inventory_path, "inventory_path")
        own = load_inventory(path)
        found = JobInventory(own, own, operator_wrote_job=True)
    elif params.inventory is not None:
        base = _vars_dir(params.vars_dir, files) if params.vars_dir is not None else None
        inventory = parse_inventory(
            params.inventory, params.inventory_format, source=_source(params), base_dir=base
        )
        operator = load_inventory(base) if base is not None else None
        found = JobInventory(inventory, operator, operator_wrote_job=False)
    else:
        raise InvalidInput(
            f"inventory {params.inventory_name!r} was not resolved: submit the job through the API",
            errors=[{"field": "inventory_name", "message": "must be resolved by the API"}],
        )
    if hypervisors is None:
        return found
    builtin = with_builtin_groups(found.inventory, hypervisors, registry_domains(hypervisors))
    return JobInventory(builtin, found.operator, found.operator_wrote_job)


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


def localized_call(call: AnyCall, files: Path, job_id: str) -> AnyCall:
    """``call`` with its local paths resolved in their areas: what copy and script send in
    ``files/``, where fetch writes in the job's own ``fetched/<job id>/``."""
    if isinstance(call, CopyCall):
        return call.model_copy(update={"src": _in_files_area(files, call.src, "call.src")})
    if isinstance(call, ScriptCall):
        return call.model_copy(update={"path": _in_files_area(files, call.path, "call.path")})
    if isinstance(call, FetchCall):
        area = fetch_area(files, job_id)
        dest = resolve_in_area(area.parent, area.name, call.dest, "call.dest")
        return call.model_copy(update={"dest": str(dest)})
    return call


def check_fetch_host_names(targets: list[HostTarget]) -> None:
    """InvalidInput naming each host whose name cannot be its directory in a fetch area."""
    problems = []
    for target in targets:
        try:
            check_path_component(target.name)
        except ValueError as exc:
            problems.append(f"host {target.name}: {exc}")
    if problems:
        raise InvalidInput(
            "fetch puts each host's files in a directory named after it: " + "; ".join(problems),
            errors=[{"field": "inventory", "message": p} for p in problems],
        )


def localized_options(options: FleetOptions, files: Path) -> FleetOptions:
    """``options`` with the known_hosts store resolved in ``known_hosts/`` and relative
    known_hosts files among the operator's configuration (absolute ones are read as they
    are: they are only read)."""
    store = options.known_hosts_store
    # "~" is the worker's home: options arrive as the submitter wrote them.
    known = [os.path.expanduser(p) for p in options.known_hosts_files]
    update: dict[str, Any] = {
        "known_hosts_files": tuple(
            p
            if os.path.isabs(p)
            else str(resolve_config_path(files, p, "known_hosts_files", allow=KNOWN_HOSTS_AREA))
            for p in known
        )
    }
    if store is not None:
        update["known_hosts_store"] = str(
            resolve_in_area(files, KNOWN_HOSTS_AREA, store, "known_hosts_store")
        )
    return options.model_copy(update=update)


def _vars_dir(relative: str, files: Path) -> Path:
    path = resolve_config_path(files, relative, "vars_dir")
    if not path.is_dir():
        message = f"{relative} is not a directory in the worker's fleet-files/"
        raise InvalidInput.of("vars_dir", f"vars_dir {message}")
    return path


def _in_files_area(files: Path, value: str, field: str) -> str:
    # A trailing '/' on a directory means "its contents" to copy; resolving drops it.
    resolved = str(resolve_in_area(files, FILES_AREA, value, field))
    return resolved + ("/" if value.endswith("/") else "")


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
        # Only the operator's own files get here with one: API inventories may not name one.
        return path
    return str(resolve_in_area(files, KEYS_AREA, path, "ansible_private_key_file"))


def _reveal(secret: Any) -> str | None:
    return None if secret is None else str(secret.get_secret_value())
