"""API tokens: made, listed and revoked by the operator, verified on every request.

A secret is ``orch_`` and 32 random bytes (base64url). Only its SHA-256 is stored: with 256
bits of entropy there is nothing for a slow password hash to protect against, and a fast one
keeps verification to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from orchestrator.access.scopes import checked_scopes
from orchestrator.errors import Conflict, InvalidInput, NotFound
from orchestrator.models import ApiToken

SECRET_PREFIX = "orch_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's name and scopes."""

    name: str
    scopes: frozenset[str]
    token_id: int | None = None  # None for a bootstrap token from the settings


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def bootstrap_name(secret: str) -> str:
    """The name a token from ``ORCH_API_TOKENS`` acts under: not secret, yet tells them apart."""
    return f"env:{secret_digest(secret)[:6]}"


def create_token(
    session: Session, name: str, scopes: list[str], expires_in: timedelta | None = None
) -> tuple[ApiToken, str]:
    """Store a new token; returns the row and the secret, which exists nowhere else."""
    _check_name(name)
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"a token named {name!r} already exists (names are never reused)")
    secret = new_secret()
    now = utcnow()
    row = ApiToken(
        name=name,
        secret_sha256=secret_digest(secret),
        scopes=checked_scopes(scopes, "scope"),
        created_at=now,
        expires_at=now + expires_in if expires_in else None,
    )
    session.add(row)
    session.commit()
    return row, secret


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def revoke_token(session: Session, name: str) -> ApiToken:
    row = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if row is None:
        raise NotFound(f"no token named {name!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def any_token_exists(session: Session) -> bool:
    """Whether a token was ever made; revoked ones count, so revoking all keeps tokens on."""
    try:
        return session.scalar(select(ApiToken.id).limit(1)) is not None
    except (OperationalError, ProgrammingError):
        session.rollback()
        if inspect(session.connection()).has_table(ApiToken.__tablename__):
            raise
        return False  # a schema from before tokens existed: none was ever made in it


def token_document(row: ApiToken) -> dict[str, Any]:
    """What ``tokens list`` shows; never the secret, nor its hash."""
    return {
        "name": row.name,
        "scopes": list(row.scopes),
        "created_at": _iso(row.created_at),
        "expires_at": _iso(row.expires_at),
        "last_used_at": _iso(row.last_used_at),
        "revoked_at": _iso(row.revoked_at),
    }


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s`` or ``2w``."""
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise InvalidInput.of("expires", f"{text!r} is not a duration such as 30d, 12h or 90m")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return as_utc(value).isoformat() if value else None


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        message = (
            "must be 1-64 letters, digits, '_', '.', '@' or '-', starting with one of the first two"
        )
        raise InvalidInput.of("name", f"token name {name!r} {message}")
