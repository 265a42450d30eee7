"""``orchestrator tokens`` and ``orchestrator audit``: run on the server, straight against the
database, so the first token can be made before any exists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from orchestrator.access import audit as audit_trail
from orchestrator.access.scopes import ALL_SCOPES
from orchestrator.access.tokens import (
    create_token,
    list_tokens,
    parse_duration,
    revoke_token,
    token_document,
)
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.errors import OrchestratorError
from orchestrator.settings import Settings


@contextmanager
def _session() -> Iterator[Session]:
    url = Settings().resolved_database_url
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    except (OperationalError, ProgrammingError) as exc:
        raise click.ClickException(
            f"database {url} is not ready ({exc.orig}); run `orchestrator db upgrade` first"
        ) from None
    except OrchestratorError as exc:
        raise click.ClickException(exc.detail) from None
    finally:
        engine.dispose()


@click.group("tokens")
def tokens_group() -> None:
    """API bearer tokens: create, list, revoke."""


@tokens_group.command("create")
@click.option("--name", required=True, help="Who the token acts as: jobs record it as submitter.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(ALL_SCOPES),
    help="A scope the token holds; repeat for more. admin holds them all.",
)
@click.option("--expires", help="Lifetime such as 30d, 12h or 90m; default: never.")
def create(name: str, scopes: tuple[str, ...], expires: str | None) -> None:
    """Create a token and print its secret, the only time it is shown."""
    with _session() as session:
        expires_in = parse_duration(expires) if expires else None
        row, secret = create_token(session, name, list(scopes), expires_in)
        doc = token_document(row)
    until = doc["expires_at"] or "never"
    click.echo(f"token {name!r}: {' '.join(doc['scopes'])}; expires {until}", err=True)
    click.echo("the secret (next line) is shown only now; keep it in a secret store", err=True)
    click.echo(secret)


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per token.")
def list_command(as_json: bool) -> None:
    """Tokens with their scopes and dates (never their secrets)."""
    with _session() as session:
        docs = [token_document(row) for row in list_tokens(session)]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    columns = ("name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")
    rows = [[_cell(doc[column]) for column in columns] for doc in docs]
    _table(["name", "scopes", "created", "expires", "last used", "revoked"], rows)


@tokens_group.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke token NAME: every API process refuses it within a few seconds."""
    with _session() as session:
        revoke_token(session, name)
    click.echo(f"token {name!r} revoked")


@click.command("audit")
@click.option("--actor", help="Only this token name (or 'anonymous').")
@click.option("--since", help="ISO 8601 time, or a duration back from now: 15m, 24h, 7d.")
@click.option("--outcome", type=click.Choice(audit_trail.OUTCOMES))
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The entries as a JSON list.")
def audit_command(
    actor: str | None, since: str | None, outcome: str | None, limit: int, as_json: bool
) -> None:
    """Writes and refused requests, newest first: who, what, when, from where, outcome."""
    with _session() as session:
        rows, _ = audit_trail.list_entries(
            session,
            actor=actor,
            since=audit_trail.parse_since(since) if since else None,
            outcome=outcome,
            limit=limit,
        )
        docs = [audit_trail.entry_document(row) for row in rows]
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    columns = ("time", "actor", "method", "path", "status", "job_id", "remote_addr", "reason")
    _table(list(columns), [[_cell(doc[column]) for column in columns] for doc in docs])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return " ".join(value) if isinstance(value, list) else str(value)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
