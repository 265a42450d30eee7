"""The hosts a fleet run talks to: plain frozen dataclasses, built from any inventory."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A host's name becomes a directory under a fetch destination, so it may not climb out of it.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@:-]{0,252}$")
_JUMP = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@)?(?P<host>[^@:\s]+)(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class JumpHost:
    """A bastion the target is reached through (``[user@]host[:port]`` in ``proxy_jump``)."""

    address: str
    port: int
    user: str | None


@dataclass(frozen=True)
class HostTarget:
    """One host of a fleet run: where it is, who to log in as, and how to become another user."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    password: str | None = field(default=None, repr=False)
    become: bool = False
    become_user: str = "root"
    become_password: str | None = field(default=None, repr=False)
    proxy_jump: str | None = None

    def __post_init__(self) -> None:
        if not _SAFE_NAME.match(self.name) or ".." in self.name:
            raise ValueError(
                f"host name {self.name!r} must be 1-253 letters, digits or _.@:- "
                "and not contain '..'"
            )
        if not self.address or any(c.isspace() for c in self.address):
            raise ValueError(f"host {self.name}: address must be a non-empty host name or IP")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"host {self.name}: port must be between 1 and 65535")
        if self.proxy_jump is not None:
            self.jump_host()  # validates the syntax early

    def jump_host(self) -> JumpHost | None:
        """The parsed ``proxy_jump``, or None when the host is reached directly."""
        if self.proxy_jump is None:
            return None
        match = _JUMP.match(self.proxy_jump)
        port = int(match["port"]) if match and match["port"] else 22
        if not match or not 1 <= port <= 65535:
            raise ValueError(f"host {self.name}: proxy_jump must look like [user@]host[:port]")
        return JumpHost(match["host"], port, match["user"])

    def secrets(self) -> tuple[str, ...]:
        """The passwords this target carries, so they can be redacted from every text."""
        return tuple(s for s in (self.password, self.become_password) if s)
