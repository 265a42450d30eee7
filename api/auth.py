"""Deny by default: every route declares what it needs, and a hook enforces it for every request.

A view is marked ``@requires("jobs:read")`` (several scopes: any one of them will do) or
``@public``; a route that declares nothing is refused, whatever the token. Once tokens are
configured (``ORCH_API_TOKENS``, or any made by ``orchestrator tokens create``) a request without
a live bearer token is 401 and one whose token lacks the scope is 403. Without tokens, as on one
machine with the API on loopback, every declared route is open and the submitter is whatever
``X-Submitter`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request

from orchestrator.access.errors import Forbidden, Unauthenticated
from orchestrator.access.scopes import ADMIN, grants_any
from orchestrator.access.tokens import Principal
from orchestrator.access.verifier import TokenVerifier

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class AccessRule:
    """What a route declared: the scopes that let a caller in, or that it is public."""

    scopes: tuple[str, ...] = ()
    public: bool = False


def requires(*scopes: str) -> Callable[[F], F]:
    """Declare that the view needs a token holding one of ``scopes`` (``admin`` holds all)."""
    if not scopes:
        raise ValueError("requires() needs at least one scope; use @public for none")

    def declare(view: F) -> F:
        view.access_rule = AccessRule(scopes=scopes)  # type: ignore[attr-defined]
        return view

    return declare


def public(view: F) -> F:
    """Declare that the view answers without a token (health, the OpenAPI document)."""
    view.access_rule = AccessRule(public=True)  # type: ignore[attr-defined]
    return view


def declared_rule(view: Callable[..., Any]) -> AccessRule | None:
    rule: AccessRule | None = getattr(view, "access_rule", None)
    return rule


def init_app(app: Flask) -> None:
    sessions = app.extensions["orchestrator"].sessions
    app.extensions["access"] = TokenVerifier(sessions, app.config.get("API_TOKENS") or {})
    app.before_request(_enforce)
    app.after_request(_challenge)


def verifier() -> TokenVerifier:
    found: TokenVerifier = current_app.extensions["access"]
    return found


def tokens_on() -> bool:
    return verifier().tokens_configured()


def authenticate() -> Principal:
    """The request's principal; Unauthenticated without a live bearer token. Verified once."""
    if "access_principal" not in g:
        try:
            g.access_principal = verifier().verify(_presented_token())
        except Unauthenticated as exc:
            g.access_principal, g.access_refusal = None, exc
    if g.access_principal is None:
        refusal: Unauthenticated = g.access_refusal
        raise refusal
    principal: Principal = g.access_principal
    return principal


def current_principal() -> Principal | None:
    """The principal when the request carries a live token, else None; never raises for a bad
    token. What rate limits and the audit trail key on."""
    try:
        return authenticate()
    except Unauthenticated:
        return None


def actor_name() -> str:
    """The token's name for the audit trail; "anonymous" without a live token or tokens off."""
    if "Authorization" not in request.headers or not tokens_on():
        return "anonymous"
    principal = current_principal()
    return principal.name if principal else "anonymous"


def check_scope(*scopes: str) -> None:
    """Inside a view: Forbidden unless the token holds one of ``scopes`` (tokens on)."""
    if tokens_on():
        _require(authenticate(), scopes)


def submitter_name() -> str:
    """Who a job is recorded as submitted by: the token's name when tokens are on (whatever
    ``X-Submitter`` claims); without tokens, ``X-Submitter`` or "anonymous", as before."""
    if tokens_on():
        return authenticate().name
    return request.headers.get("X-Submitter", "anonymous")[:128]


def acts_on_any_domain() -> bool:
    """Whether the caller may act on domains other tokens' jobs made: tokens off, or admin."""
    return not tokens_on() or ADMIN in authenticate().scopes


def check_owner(submitter: str, action: str) -> None:
    """Forbidden unless the token submitted the job or holds ``admin`` (tokens on)."""
    if not tokens_on():
        return
    principal = authenticate()
    if principal.name != submitter and ADMIN not in principal.scopes:
        raise Forbidden(
            f"the bearer token {principal.name!r} may {action} only jobs it submitted; "
            f"this one is {submitter!r}'s, which needs scope {ADMIN!r}",
            required_scopes=[ADMIN],
        )


def _enforce() -> None:
    if request.routing_exception is not None:  # 404 or 405: say so only to a token holder
        if tokens_on():
            authenticate()
        return
    rule = declared_rule(current_app.view_functions[request.endpoint or ""])
    if rule is None:
        raise Forbidden(f"route {request.url_rule} declares no scope; refused by default")
    if rule.public or not tokens_on():
        return
    _require(authenticate(), rule.scopes)


def _require(principal: Principal, scopes: tuple[str, ...]) -> None:
    if not grants_any(principal.scopes, scopes):
        needed = " or ".join(repr(scope) for scope in scopes)
        raise Forbidden(
            f"the bearer token {principal.name!r} lacks scope {needed}",
            required_scopes=list(scopes),
        )


def _presented_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("this operation needs a bearer token (Authorization: Bearer ...)")
    return token.strip()


def _challenge(response: Response) -> Response:
    if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
        invalid = ', error="invalid_token"' if "Authorization" in request.headers else ""
        response.headers["WWW-Authenticate"] = f'Bearer realm="orchestrator"{invalid}'
    return response
