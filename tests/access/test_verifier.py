"""Tokens and the audit trail on SQLite and PostgreSQL: what is stored, when tokens turn on,
how rarely last use is written, and how the trail is filtered and paged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.access import audit
from orchestrator.access.errors import Unauthenticated
from orchestrator.access.scopes import checked_scopes, grants, grants_any
from orchestrator.access.tokens import (
    create_token,
    parse_duration,
    revoke_token,
    token_document,
)
from orchestrator.access.verifier import (
    LAST_USED_INTERVAL,
    NO_TOKENS_TTL,
    RECHECK_INTERVAL,
    TokenVerifier,
)
from orchestrator.db import make_engine, make_sessionmaker, upgrade
from orchestrator.errors import InvalidInput
from orchestrator.models import ApiToken


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def test_only_the_digest_is_stored(sessions: sessionmaker[Session]) -> None:
    with sessions() as session:
        row, secret = create_token(session, "ci", ["jobs:submit", "jobs:read"])
    with sessions() as session:
        stored = session.scalars(select(ApiToken)).one()
        columns = [str(getattr(stored, c.key)) for c in ApiToken.__table__.columns]
    assert stored.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in value for value in columns)
    assert stored.scopes == ["jobs:read", "jobs:submit"]  # canonical order
    assert "secret_sha256" not in token_document(row)


def test_tokens_turn_on_once_one_exists_and_stay_on(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    verifier = TokenVerifier(sessions, {}, clock)
    assert not verifier.tokens_configured()
    with sessions() as session:
        create_token(session, "first", ["admin"])
    assert not verifier.tokens_configured()  # believed for a moment: no SQL read per request
    clock.now += NO_TOKENS_TTL
    assert verifier.tokens_configured()
    with sessions() as session:
        revoke_token(session, "first")
    # Revoking the last token must not open the API again.
    assert TokenVerifier(sessions, {}, clock).tokens_configured()


def test_a_schema_from_before_tokens_has_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    engine = make_engine(url)
    try:
        assert not TokenVerifier(make_sessionmaker(engine), {}, Clock()).tokens_configured()
    finally:
        engine.dispose()


def test_last_use_is_written_at_most_once_a_minute(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    verifier = TokenVerifier(sessions, {}, clock)
    with sessions() as session:
        _, secret = create_token(session, "ci", ["jobs:read"])

    def last_used() -> object:
        with sessions() as session:
            return session.scalars(select(ApiToken.last_used_at)).one()

    assert verifier.verify(secret).name == "ci"
    first = last_used()
    assert first is not None
    clock.now += LAST_USED_INTERVAL - 1
    verifier.verify(secret)
    assert last_used() == first
    clock.now += 1
    verifier.verify(secret)
    assert last_used() != first


def test_a_revoked_token_is_refused_once_sql_is_asked_again(
    sessions: sessionmaker[Session],
) -> None:
    clock = Clock()
    verifier = TokenVerifier(sessions, {}, clock)
    with sessions() as session:
        _, secret = create_token(session, "ci", ["jobs:read"])
    assert verifier.verify(secret).name == "ci"
    with sessions() as session:
        revoke_token(session, "ci")
    assert verifier.verify(secret).name == "ci"  # no SQL read on every request
    clock.now += RECHECK_INTERVAL
    with pytest.raises(Unauthenticated, match="was revoked"):
        verifier.verify(secret)


def test_unknown_revoked_and_expired_tokens_are_refused(sessions: sessionmaker[Session]) -> None:
    verifier = TokenVerifier(sessions, {}, Clock())
    with sessions() as session:
        _, revoked = create_token(session, "gone", ["admin"])
        revoke_token(session, "gone")
        _, expired = create_token(session, "old", ["admin"], timedelta(seconds=-1))
    for secret, reason in [
        ("orch_nope", "the bearer token is not known"),
        (revoked, "the bearer token 'gone' was revoked"),
        (expired, "the bearer token 'old' has expired"),
    ]:
        with pytest.raises(Unauthenticated) as refused:
            verifier.verify(secret)
        assert refused.value.detail == reason


def test_bootstrap_tokens_act_under_a_name_from_their_digest(
    sessions: sessionmaker[Session],
) -> None:
    verifier = TokenVerifier(sessions, {"s3cr3t": ["fleet:exec"]}, Clock())
    principal = verifier.verify("s3cr3t")
    assert principal.name == "env:" + hashlib.sha256(b"s3cr3t").hexdigest()[:6]
    assert principal.scopes == {"fleet:exec"} and verifier.tokens_configured()
    with pytest.raises(ValueError, match=r"unknown scope\(s\) fleet:run"):
        TokenVerifier(sessions, {"s3cr3t": ["fleet:run"]}, Clock())


def test_the_trail_filters_by_actor_outcome_and_pages(sessions: sessionmaker[Session]) -> None:
    statuses = [202, 401, 403, 422, 429, 200]
    with sessions() as session:
        for i, status in enumerate(statuses):
            actor = "ci" if i % 2 else "ops"
            audit.record(session, audit.AuditRecord(actor, "POST", "/v1/jobs", "/v1/jobs", status))

    def page(**filters: object) -> tuple[list[int], str | None]:
        with sessions() as session:
            rows, cursor = audit.list_entries(session, **filters)  # type: ignore[arg-type]
            return [row.status for row in rows], cursor

    assert page()[0] == list(reversed(statuses))
    assert page(outcome="refused")[0] == [429, 403, 401]
    assert page(outcome="ok")[0] == [200, 202]
    assert page(outcome="failed")[0] == [422]
    assert page(actor="ci")[0] == [200, 422, 401]
    first, cursor = page(limit=4)
    rest, end = page(limit=4, cursor=cursor)
    assert first + rest == list(reversed(statuses)) and end is None
    assert page(since=audit.parse_since("1h"))[0] == list(reversed(statuses))
    assert page(since=audit.parse_since("2999-01-01T00:00:00+00:00"))[0] == []


def test_scopes_admin_holds_every_one() -> None:
    assert grants({"admin"}, "fleet:exec") and grants({"jobs:read"}, "jobs:read")
    assert not grants({"jobs:submit"}, "fleet:exec")
    assert grants_any({"fleet:exec"}, ("jobs:submit", "fleet:exec"))
    assert checked_scopes(["admin", "jobs:read", "admin"]) == ["jobs:read", "admin"]
    for bad in (["read"], []):
        with pytest.raises(InvalidInput):
            checked_scopes(bad)


def test_durations_and_times() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("90m") == timedelta(minutes=90)
    for bad in ("0d", "30", "d", "-1h", "1y"):
        with pytest.raises(InvalidInput):
            parse_duration(bad)
    since = audit.parse_since("2026-01-01T12:00:00+02:00")
    assert since.isoformat() == "2026-01-01T10:00:00+00:00"
    with pytest.raises(InvalidInput):
        audit.parse_since("yesterday")
