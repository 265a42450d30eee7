"""Rules for inventories that pass through the API (stored versions and inline job
parameters): they must parse, they must not hold passwords, because the API keeps them in SQL
and hands them to workers through Redis, and they may name key files only inside the worker's
``fleet-files/keys/``. Passwords belong in files on the worker: an ``inventory_path`` file, or
the operator's inventory directory named as a job's ``vars_dir``."""

from __future__ import annotations

from typing import Literal

from orchestrator.errors import InvalidInput
from orchestrator.fleet.files import check_relative_path
from orchestrator.inventory import Inventory, parse_inventory

InventoryFormat = Literal["ini", "yaml"]

MAX_INVENTORY_CHARS = 512 * 1024

# Every variable ansible-core reads a password or passphrase from.
SECRET_VARS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
        "ansible_sudo_password",
        "ansible_ssh_private_key_passphrase",
    }
)

# Every variable ansible-core reads a private key file from.
KEY_FILE_VARS = frozenset({"ansible_private_key_file", "ansible_ssh_private_key_file"})
# What the worker keeps for the operator's own hosts (see orchestrator.fleet.secret_binding).
WORKER_SECRET_VARS = SECRET_VARS | KEY_FILE_VARS


def parse_api_inventory(
    text: str, format: InventoryFormat | None, source: str, field: str = "inventory"
) -> Inventory:
    """Parse inventory text received through the API; InvalidInput, its errors naming
    ``field``, when it does not parse or breaks a cap of :mod:`orchestrator.inventory.limits`,
    when a host or group sets a password variable, or names a key file outside the keys area.

    Bounded: the text is capped here, and reading it is bounded by those caps (YAML aliases
    refused, ranges and hosts capped, no backtracking regex), so the API may read it in its
    request thread."""
    try:
        if len(text) > MAX_INVENTORY_CHARS:
            raise InvalidInput(
                f"{source}: inventory is longer than {MAX_INVENTORY_CHARS} characters",
                errors=[{"field": field, "message": f"at most {MAX_INVENTORY_CHARS} characters"}],
            )
        inventory = parse_inventory(text, format, source=source)
        refuse_secrets(inventory)
        refuse_key_paths(inventory)
    except InvalidInput as exc:
        raise _naming(exc, field) from None
    return inventory


def refuse_secrets(inventory: Inventory) -> None:
    """InvalidInput naming each host or group that sets a password in the inventory text."""
    found = [
        f"{kind} {name}: {var}"
        for kind, entries in (("group", inventory.groups), ("host", inventory.hosts))
        for name, entry in entries.items()
        for var in sorted(SECRET_VARS & set(entry.vars))
    ]
    if not found:
        return
    rule = (
        "passwords must not be sent through the API (they would be stored); put them in "
        "host_vars/ or group_vars/ on the worker (vars_dir) or use key files"
    )
    raise InvalidInput(
        f"{inventory.source}: {rule}: {', '.join(found)}",
        errors=[{"field": "inventory", "message": f"{where} sets a password"} for where in found],
    )


def refuse_key_paths(inventory: Inventory) -> None:
    """InvalidInput naming each host or group whose key file is not a plain relative path:
    through the API a key is named inside the worker's ``fleet-files/keys/``, never by an
    absolute, ``~`` or ``..`` path that could reach any file on the worker."""
    found = [
        f"{kind} {name}: {var}={entry.vars[var]}"
        for kind, entries in (("group", inventory.groups), ("host", inventory.hosts))
        for name, entry in entries.items()
        for var in sorted(KEY_FILE_VARS & set(entry.vars))
        if _key_path_problem(entry.vars[var])
    ]
    if not found:
        return
    rule = (
        "a key file named through the API must be a path relative to the worker's "
        "fleet-files/keys/ directory (no '/' or '~' at the start, no '..')"
    )
    raise InvalidInput(
        f"{inventory.source}: {rule}: {', '.join(found)}",
        errors=[{"field": "inventory", "message": f"{where}: {rule}"} for where in found],
    )


def _naming(exc: InvalidInput, field: str) -> InvalidInput:
    """``exc`` with each error naming ``field``, the name the caller knows the text by."""
    errors = [{**error, "field": field} for error in exc.extra.get("errors", [])]
    return InvalidInput(exc.detail, **{**exc.extra, "errors": errors})


def _key_path_problem(value: object) -> str | None:
    try:
        check_relative_path(str(value))
    except ValueError as exc:
        return str(exc)
    return None
