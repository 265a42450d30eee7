"""Whether the API may start: bootstrap tokens must name known scopes, and it listens beyond
loopback only with tokens, or when the operator says so explicitly (``api_insecure``)."""

from __future__ import annotations

import ipaddress

from sqlalchemy.exc import SQLAlchemyError

from orchestrator.access.errors import RefusedToServe
from orchestrator.access.tokens import any_token_exists
from orchestrator.access.verifier import bootstrap_principals
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.settings import Settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_api_settings(settings: Settings) -> None:
    """Raise RefusedToServe, with a one-line reason, unless the API may start as configured."""
    try:
        bootstrap_principals(settings.api_tokens)
    except ValueError as exc:
        raise RefusedToServe(str(exc)) from None
    if is_loopback(settings.api_host) or settings.api_insecure or settings.api_tokens:
        return
    if _sql_token_exists(settings):
        return
    raise RefusedToServe(
        f"refusing to listen on {settings.api_host}: no API token is configured, so anyone who "
        "reaches it could do anything; create one with `orchestrator tokens create`, set "
        "ORCH_API_TOKENS, listen on 127.0.0.1, or set ORCH_API_INSECURE=true"
    )


def _sql_token_exists(settings: Settings) -> bool:
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_sessionmaker(engine)() as session:
            return any_token_exists(session)
    except SQLAlchemyError:
        return False  # no schema yet, or no database: no token either
    finally:
        engine.dispose()
