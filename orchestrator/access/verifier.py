"""Checking a presented bearer token, cheaply enough to do on every request."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.access.errors import Unauthenticated
from orchestrator.access.scopes import checked_scopes
from orchestrator.access.tokens import (
    Principal,
    any_token_exists,
    as_utc,
    bootstrap_name,
    digests_match,
    secret_digest,
    utcnow,
)
from orchestrator.errors import InvalidInput
from orchestrator.models import ApiToken

# How long "no token exists yet" is believed: a first token made by the CLI takes effect within
# this. "Some token exists" is believed for good, as token rows are revoked, never deleted.
NO_TOKENS_TTL = 2.0
# How long a token SQL vouched for is believed without asking again: revoking one takes effect
# in every API process within this. Expiry is checked on every request.
RECHECK_INTERVAL = 2.0
# last_used_at is a hint for the operator, not a log: one write per token per minute at most.
LAST_USED_INTERVAL = 60.0

_ROW = select(
    ApiToken.id,
    ApiToken.name,
    ApiToken.secret_sha256,
    ApiToken.scopes,
    ApiToken.expires_at,
    ApiToken.revoked_at,
)


class TokenVerifier:
    """Tokens from the settings (bootstrap) and from SQL, turned into principals."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        bootstrap: Mapping[str, Iterable[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._bootstrap = bootstrap_principals(bootstrap)
        self._clock = clock
        self._sql_tokens_seen = False
        self._no_tokens_until = -1.0
        self._checked: dict[str, _Checked] = {}
        self._last_touched: dict[int, float] = {}

    def tokens_configured(self) -> bool:
        """Whether requests need a token: some bootstrap token, or any token ever made."""
        if self._bootstrap or self._sql_tokens_seen:
            return True
        now = self._clock()
        if now < self._no_tokens_until:
            return False
        with self._sessions() as session:
            self._sql_tokens_seen = any_token_exists(session)
        self._no_tokens_until = now + NO_TOKENS_TTL
        return self._sql_tokens_seen

    def verify(self, secret: str) -> Principal:
        """The principal of a presented secret; Unauthenticated when it is not a live token."""
        digest = secret_digest(secret)
        principal = self._bootstrap.get(digest)
        if principal is not None:
            return principal
        now = self._clock()
        checked = self._checked.get(digest)
        if checked is None or now - checked.checked_at >= RECHECK_INTERVAL:
            checked = self._look_up(digest, now)
        if checked.expires_at is not None and checked.expires_at <= utcnow():
            raise Unauthenticated(f"the bearer token {checked.principal.name!r} has expired")
        self._touch(checked.principal, now)
        return checked.principal

    def _look_up(self, digest: str, now: float) -> _Checked:
        self._checked.pop(digest, None)
        with self._sessions() as session:
            row = session.execute(_ROW.where(ApiToken.secret_sha256 == digest)).one_or_none()
        if row is None or not digests_match(row.secret_sha256, digest):
            raise Unauthenticated("the bearer token is not known")
        if row.revoked_at is not None:
            raise Unauthenticated(f"the bearer token {row.name!r} was revoked")
        principal = Principal(row.name, frozenset(row.scopes), row.id)
        expires_at = as_utc(row.expires_at) if row.expires_at else None
        checked = self._checked[digest] = _Checked(principal, expires_at, now)
        return checked

    def _touch(self, principal: Principal, now: float) -> None:
        token_id = principal.token_id
        if token_id is None:  # a bootstrap token has no row
            return
        if now - self._last_touched.get(token_id, -LAST_USED_INTERVAL) < LAST_USED_INTERVAL:
            return
        self._last_touched[token_id] = now
        with self._sessions() as session:
            session.execute(
                update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow())
            )
            session.commit()


@dataclass(frozen=True)
class _Checked:
    """A token as SQL last said, and when (on the verifier's clock)."""

    principal: Principal
    expires_at: datetime | None
    checked_at: float


def bootstrap_principals(tokens: Mapping[str, Iterable[str]]) -> dict[str, Principal]:
    """ORCH_API_TOKENS by digest; ValueError naming the token when a scope is unknown."""
    principals = {}
    for secret, scopes in tokens.items():
        name = bootstrap_name(secret)
        try:
            checked = checked_scopes(scopes, "api_tokens")
        except InvalidInput as exc:
            raise ValueError(f"ORCH_API_TOKENS: token {name}: {exc.detail}") from None
        principals[secret_digest(secret)] = Principal(name, frozenset(checked))
    return principals
