"""Secrets kept on a worker (passwords, become passwords, key files) go only to the operator's
own host entries, at the place the operator gave them.

The operator's inventory is the one the worker reads from its own files: the ``inventory_path``
file or directory, or, for an inventory sent through the API, the inventory files inside the job's
``vars_dir`` (an Ansible inventory directory: hosts files beside ``group_vars/`` and
``host_vars/``). A host of the job gets the secrets the operator's inventory gives the host of
that name, and only when the job reaches it at the same address, port, login user and jump
host; a job that moves such a host elsewhere is refused. Any other host gets no secret from
the worker's files, whatever groups the job's inventory puts it in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orchestrator.errors import InvalidInput
from orchestrator.fleet.inventory_rules import WORKER_SECRET_VARS
from orchestrator.fleet.options import HostKeyPolicy
from orchestrator.inventory import HostConnection, Inventory

# The connection fields that carry a secret, by the variable an operator sets them with.
_SECRET_FIELDS = {
    "password": "ansible_password",
    "become_password": "ansible_become_password",
    "key_file": "ansible_private_key_file",
}


@dataclass(frozen=True)
class BoundHosts:
    """Each selected host's connection with the worker's secrets bound, and, per host, the
    secret variables its job inventory would have handed it but that were withheld."""

    connections: dict[str, HostConnection]
    withheld: dict[str, tuple[str, ...]]


def bind_worker_secrets(
    job: Inventory,
    operator: Inventory | None,
    hosts: list[str],
    *,
    login_user: str,
    operator_wrote_job: bool,
) -> BoundHosts:
    """The connections of ``hosts`` in the ``job`` inventory, with the worker's secrets taken
    from the ``operator`` inventory alone.

    ``operator_wrote_job`` says the job's inventory text is the operator's file too
    (``inventory_path``), so its own variables are also the worker's secrets; otherwise only
    its ``group_vars``/``host_vars`` files are. ``login_user`` is who the worker logs in as
    when an inventory names no user. Raises InvalidInput naming every host the job would
    send elsewhere than the operator's inventory says.
    """
    public = without_worker_secrets(job, source_vars=operator_wrote_job)
    connections: dict[str, HostConnection] = {}
    withheld: dict[str, tuple[str, ...]] = {}
    moved: list[str] = []
    for name in hosts:
        conn = public.connection(name)
        own = operator.connection(name) if operator and name in operator.hosts else None
        if own is not None and _secrets_of(own):
            if _place(conn, login_user) != _place(own, login_user):
                moved.append(_moved(name, conn, own, login_user))
                continue
            conn = conn.model_copy(
                update={
                    "password": own.password,
                    "become_password": own.become_password,
                    "key_file": conn.key_file or own.key_file,
                }
            )
        connections[name] = conn
        lost = _secrets_of(job.connection(name)) - _secrets_of(conn)
        if lost:
            withheld[name] = tuple(sorted(_SECRET_FIELDS[f] for f in lost))
    if moved:
        raise _moved_error(moved, operator)
    return BoundHosts(connections, withheld)


def without_worker_secrets(inventory: Inventory, *, source_vars: bool) -> Inventory:
    """``inventory`` without the secret variables read from the worker's files: those of
    ``group_vars``/``host_vars``, and also the inventory's own when ``source_vars``."""

    def strip(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k not in WORKER_SECRET_VARS}

    def clean(entry: Any) -> Any:
        return replace(
            entry,
            file_vars=strip(entry.file_vars),
            vars=strip(entry.vars) if source_vars else entry.vars,
        )

    return replace(
        inventory,
        hosts={name: clean(host) for name, host in inventory.hosts.items()},
        groups={name: clean(group) for name, group in inventory.groups.items()},
    )


def password_hosts(connections: dict[str, HostConnection]) -> list[str]:
    """The hosts a run would send a password to: an SSH password, or a become password."""
    return [
        name
        for name, conn in connections.items()
        if conn.password is not None or (conn.become and conn.become_password is not None)
    ]


def require_known_host_keys(
    connections: dict[str, HostConnection], policy: HostKeyPolicy, field: str
) -> None:
    """InvalidInput unless ``policy`` is strict whenever a host would be sent a password: a
    password goes only to a host whose key is already known, never to a first-seen or
    unchecked key."""
    hosts = password_hosts(connections)
    if policy == "strict" or not hosts:
        return
    shown = ", ".join(hosts[:10]) + (f" and {len(hosts) - 10} more" if len(hosts) > 10 else "")
    message = (
        f"host_key_policy {policy!r} is refused: hosts {shown} would be sent a password kept "
        "on the worker, and a password goes only to a host whose key is already known; use "
        "host_key_policy 'strict' (add the keys to a known_hosts file first, or record them "
        "with an accept-new job whose inventory gives these hosts no password)"
    )
    raise InvalidInput(message, errors=[{"field": field, "message": message}])


def _secrets_of(conn: HostConnection) -> set[str]:
    return {field for field in _SECRET_FIELDS if getattr(conn, field) is not None}


def _place(conn: HostConnection, login_user: str) -> tuple[str, int, str, str | None]:
    return (conn.address, conn.port, conn.user or login_user, conn.proxy_jump)


def _moved(name: str, job: HostConnection, own: HostConnection, login_user: str) -> str:
    def where(conn: HostConnection) -> str:
        user, address, port = conn.user or login_user, conn.address, conn.port
        jump = f" via {conn.proxy_jump}" if conn.proxy_jump else ""
        return f"{user}@{address}:{port}{jump}"

    secrets = ", ".join(sorted(_SECRET_FIELDS[f] for f in _secrets_of(own)))
    return f"host {name}: the job sends it to {where(job)}, its entry has {where(own)} ({secrets})"


def _moved_error(moved: list[str], operator: Inventory | None) -> InvalidInput:
    source = operator.source if operator is not None else "the worker"
    rule = (
        f"secrets kept on the worker go only to the operator's own host entries ({source}), "
        "so a job may not change the address, port, login user or jump host of a host that "
        "has them"
    )
    return InvalidInput(
        f"{rule}: {'; '.join(moved)}",
        errors=[{"field": "inventory", "message": f"{line}: {rule}"} for line in moved],
    )
