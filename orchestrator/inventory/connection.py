"""SSH connection settings of one host, read from its merged Ansible variables.

Names follow ansible-core's ssh connection and sudo become plugins; where several names exist
(``ansible_host`` / ``ansible_ssh_host``) the one Ansible lists last wins, as in Ansible.
Passwords are kept as ``SecretStr`` so that they never show in a repr, a log or a dump.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from orchestrator.inventory.problems import inventory_error

_NAMES: dict[str, tuple[str, ...]] = {
    "address": ("ansible_host", "ansible_ssh_host"),
    "port": ("ansible_port", "ansible_ssh_port"),
    "user": ("ansible_user", "ansible_ssh_user"),
    "key_file": ("ansible_private_key_file", "ansible_ssh_private_key_file"),
    "password": ("ansible_password", "ansible_ssh_pass", "ansible_ssh_password"),
    "become": ("ansible_become",),
    "become_user": ("ansible_become_user",),
    "become_password": ("ansible_become_password", "ansible_become_pass"),
    "transport": ("ansible_connection",),
}
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f", ""})
_PROXY_COMMAND_SSH = re.compile(r"^ssh\s(?:.*\s)?-W\s*%h:%p(?:\s.*)?$")


class HostConnection(BaseModel):
    """Where and as whom to connect to a host; secrets are ``SecretStr`` (masked in repr)."""

    model_config = ConfigDict(frozen=True)

    name: str
    address: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None
    password: SecretStr | None = None
    become: bool = False
    become_user: str | None = None
    become_password: SecretStr | None = None
    proxy_jump: str | None = None
    transport: str = "ssh"

    @property
    def has_password(self) -> bool:
        return self.password is not None


def connection_for(name: str, host_vars: dict[str, Any], source: str) -> HostConnection:
    """Build the ``HostConnection`` of host ``name`` from its merged variables."""
    found = {field: _last(host_vars, names) for field, names in _NAMES.items()}
    for field, value in found.items():
        if isinstance(value, str) and "{{" in value:
            raise inventory_error(
                source,
                None,
                f"host {name}: {_NAMES[field][0]} is a Jinja2 template, "
                "which is not evaluated here",
            )
    args = " ".join(
        str(host_vars[v])
        for v in ("ansible_ssh_common_args", "ansible_ssh_extra_args")
        if host_vars.get(v)
    )
    return HostConnection(
        name=name,
        address=str(found["address"] or name),
        port=_port(found["port"], name, source),
        user=_text(found["user"]),
        key_file=_text(found["key_file"]),
        password=_secret(found["password"]),
        become=_boolean(found["become"], name, source),
        become_user=_text(found["become_user"]),
        become_password=_secret(found["become_password"]),
        proxy_jump=proxy_jump_from_args(args),
        transport=str(found["transport"] or "ssh"),
    )


def proxy_jump_from_args(args: str) -> str | None:
    """The jump host of SSH arguments: ``-J host``, ``-o ProxyJump=host`` or a plain
    ``-o ProxyCommand="ssh -W %h:%p host"``; ``None`` when there is none."""
    try:
        tokens = shlex.split(args)
    except ValueError:
        return None
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token == "-J":
            return following or None
        if token.startswith("-J"):
            return token[2:]
        option = following if token == "-o" else token[2:] if token.startswith("-o") else None
        jump = _jump_from_option(option) if option else None
        if jump:
            return jump
    return None


def _jump_from_option(option: str) -> str | None:
    key, _, value = option.partition("=")
    if not _:
        key, _, value = option.partition(" ")
    key, value = key.strip().lower(), value.strip()
    if key == "proxyjump" and value.lower() != "none":
        return value or None
    if key == "proxycommand" and _PROXY_COMMAND_SSH.match(value):
        return _jump_from_proxy_command(value)
    return None


def _jump_from_proxy_command(command: str) -> str | None:
    tokens = shlex.split(command)[1:]
    user, port, host = None, None, None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("-W", "-l", "-p", "-i", "-o", "-F") and i + 1 < len(tokens):
            user = tokens[i + 1] if token == "-l" else user
            port = tokens[i + 1] if token == "-p" else port
            i += 2
            continue
        if not token.startswith("-"):
            host = token
        i += 1
    if not host:
        return None
    if user and "@" not in host:
        host = f"{user}@{host}"
    return f"{host}:{port}" if port else host


def _last(host_vars: dict[str, Any], names: tuple[str, ...]) -> Any:
    value = None
    for name in names:
        if host_vars.get(name) is not None:
            value = host_vars[name]
    return value


def _port(value: Any, name: str, source: str) -> int:
    if value is None:
        return 22
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise inventory_error(
            source,
            None,
            f"host {name}: ansible_port must be a number from 1 to 65535, got {value!r}",
        )
    return port


def _boolean(value: Any, name: str, source: str) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE or value in (1, 1.0):
        return True
    if text in _FALSE or value in (0, 0.0):
        return False
    raise inventory_error(
        source, None, f"host {name}: ansible_become must be a boolean, got {value!r}"
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _secret(value: Any) -> SecretStr | None:
    return None if value is None else SecretStr(str(value))
