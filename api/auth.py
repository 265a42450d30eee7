"""Bearer tokens with scopes. ``app.config["API_TOKENS"]`` maps each token to its scopes
(``{"t0k3n": ["read", "fleet:run"]}``); when it is empty, as on an unconfigured single machine,
every request is allowed. A missing or unknown token is 401, a token without the scope 403.

Scopes used: ``read`` (inventories), ``inventory:write`` (store inventories) and
``fleet:run`` (submit or relaunch fleet jobs, which run commands on hosts).
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from flask import current_app, request

from orchestrator.errors import OrchestratorError

F = TypeVar("F", bound=Callable[..., Any])


class Unauthenticated(OrchestratorError):
    """Raised when a request needs a bearer token and has none, or an unknown one."""

    status = 401
    title = "Unauthenticated"


class Forbidden(OrchestratorError):
    """Raised when the request's token lacks the scope the operation needs."""

    status = 403
    title = "Forbidden"


def require_scope(scope: str) -> Callable[[F], F]:
    """View decorator: the request must carry a token granting ``scope`` (when tokens are
    configured)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check_scope(scope)
            return view(*args, **kwargs)

        return checked  # type: ignore[return-value]

    return decorate


def check_scope(scope: str) -> None:
    """Raise Unauthenticated or Forbidden unless the request's token grants ``scope``."""
    tokens: Mapping[str, Iterable[str]] = current_app.config.get("API_TOKENS") or {}
    if not tokens:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise Unauthenticated(f"this operation needs a bearer token with scope {scope!r}")
    scopes = _scopes_of(tokens, presented.strip())
    if scopes is None:
        raise Unauthenticated("the bearer token is not known")
    if scope not in scopes:
        raise Forbidden(f"the bearer token lacks scope {scope!r}")


def _scopes_of(tokens: Mapping[str, Iterable[str]], presented: str) -> set[str] | None:
    # Compare against every token in constant time, so timing does not reveal a prefix.
    found: set[str] | None = None
    for token, scopes in tokens.items():
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = set(scopes)
    return found
