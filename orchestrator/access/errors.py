"""Refusals of the API's access rules, rendered as RFC 9457 problems."""

from __future__ import annotations

from orchestrator.errors import OrchestratorError


class AccessError(OrchestratorError):
    """Raised when a request may not do what it asks."""

    status = 403
    title = "Forbidden"


class Unauthenticated(AccessError):
    """Raised when a request needs a bearer token and has none, or one that is unknown,
    expired or revoked."""

    status = 401
    title = "Unauthenticated"


class Forbidden(AccessError):
    """Raised when the request's token lacks the scope the operation needs."""

    status = 403
    title = "Forbidden"


class RefusedToServe(AccessError):
    """Raised when the API must not start with these settings: beyond loopback with no token
    configured, or a bootstrap token with an unknown scope."""

    status = 500
    title = "Refusing to serve"
