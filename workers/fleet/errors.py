"""Errors of the fleet executor. Each docstring is the error's default message."""

from __future__ import annotations


class FleetError(Exception):
    """Raised when a fleet operation cannot be done."""

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or (self.__doc__ or "").strip()
        super().__init__(self.detail)


class HostUnreachable(FleetError):
    """Raised when a host cannot be connected to, logged in to, or trusted."""


class ConnectFailed(HostUnreachable):
    """Raised when the TCP connection or SSH handshake fails or times out."""


class AuthenticationFailed(HostUnreachable):
    """Raised when the host refuses every credential offered."""


class HostKeyRejected(HostUnreachable):
    """Raised when the host's key is unknown or differs from the recorded one."""


class CommandTimedOut(FleetError):
    """Raised when a remote command runs past the command timeout."""


class ModuleFailed(FleetError):
    """Raised when a module cannot do its work on a host it is connected to."""
