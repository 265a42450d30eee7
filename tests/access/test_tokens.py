"""Tokens made with the real ``orchestrator tokens`` command: used, listed, revoked, expired; the
secret is printed once and is found nowhere afterwards (SQL file, Redis, the services' logs)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import MetaData, select

from orchestrator.access.tokens import secret_digest
from orchestrator.client import ApiClient
from tests.access.conftest import HV, SecuredStack


def create_token(secured: SecuredStack, name: str, *args: str) -> str:
    made = secured.cli("tokens", "create", "--name", name, *args)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("orch_") and len(made.stdout.splitlines()) == 1
    assert f"token {name!r}" in made.stderr and secret not in made.stderr
    return secret


def listed(secured: SecuredStack) -> dict[str, dict[str, Any]]:
    shown = secured.cli("tokens", "list", "--json")
    assert shown.returncode == 0, shown.stderr
    return {doc["name"]: doc for doc in json.loads(shown.stdout)}


def wait_for_status(
    secured: SecuredStack, secret: str, status: int, timeout: float = 60
) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = secured.call("GET", "/v1/jobs", secret)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_token_made_by_the_cli_works_until_revoked(secured: SecuredStack) -> None:
    secret = create_token(secured, "ci-main", "--scope", "jobs:read", "--scope", "jobs:submit")
    job = secured.call("POST", "/v1/jobs", secret, json={"kind": "ping", "hypervisor": HV})
    assert job.status_code == 202 and job.json()["submitter"] == "ci-main"
    assert secured.call("GET", f"/v1/jobs/{job.json()['id']}", secret).status_code == 200
    fleet = secured.call("POST", "/v1/jobs", secret, json={"kind": "fleet.ping"})
    assert fleet.status_code == 403 and fleet.json()["required_scopes"] == ["fleet:exec"]

    token = listed(secured)["ci-main"]
    assert token["scopes"] == ["jobs:read", "jobs:submit"]
    assert token["last_used_at"] is not None and token["revoked_at"] is None
    assert token["expires_at"] is None

    revoked = secured.cli("tokens", "revoke", "ci-main")
    assert revoked.returncode == 0, revoked.stderr
    refused = wait_for_status(secured, secret, 401)  # each API process asks SQL again soon
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the bearer token 'ci-main' was revoked"
    assert listed(secured)["ci-main"]["revoked_at"] is not None


def test_the_cli_sends_orch_api_token(secured: SecuredStack) -> None:
    secret = create_token(secured, "operator", "--scope", "jobs:submit", "--scope", "jobs:read")
    submitted = secured.cli(
        "submit", "ping", "--hypervisor", HV, "--wait", "--json", API_TOKEN=secret
    )
    assert submitted.returncode == 0, submitted.stderr
    assert json.loads(submitted.stdout)["submitter"] == "operator"
    refused = secured.cli("jobs")
    assert refused.returncode == 2 and "401 Unauthenticated" in refused.stderr


def test_an_expired_token_is_refused(secured: SecuredStack) -> None:
    secret = create_token(secured, "short-lived", "--scope", "jobs:read", "--expires", "1s")
    assert listed(secured)["short-lived"]["expires_at"] is not None
    refused = wait_for_status(secured, secret, 401)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the bearer token 'short-lived' has expired"


def test_bad_token_requests_change_nothing(secured: SecuredStack) -> None:
    duplicate = secured.cli("tokens", "create", "--name", "twice", "--scope", "admin")
    assert duplicate.returncode == 0
    again = secured.cli("tokens", "create", "--name", "twice", "--scope", "admin")
    assert again.returncode == 1 and "already exists" in again.stderr and not again.stdout
    unknown = secured.cli("tokens", "create", "--name", "x", "--scope", "read")
    assert unknown.returncode == 2 and "'read' is not one of" in unknown.stderr
    bad_expiry = secured.cli(
        "tokens", "create", "--name", "y", "--scope", "admin", "--expires", "soon"
    )
    assert bad_expiry.returncode == 1 and "not a duration" in bad_expiry.stderr
    missing = secured.cli("tokens", "revoke", "nobody")
    assert missing.returncode == 1 and "no token named 'nobody'" in missing.stderr
    assert {"x", "y"}.isdisjoint(listed(secured))


def test_no_secret_is_kept_in_clear_anywhere(secured: SecuredStack) -> None:
    secret = create_token(secured, "scanned", "--scope", "admin")
    # Use it for writes, reads, a refusal and a job run by the worker (events, live state).
    job = secured.call("POST", "/v1/jobs", secret, json={"kind": "ping", "hypervisor": HV})
    assert job.status_code == 202
    ApiClient(secured.url, token=secret).wait(job.json()["id"], timeout=60)
    secured.stack.wait_recorded(job.json()["id"], "succeeded")
    assert secured.call("GET", "/v1/audit", secret).status_code == 200
    assert secured.call("GET", "/v1/jobs", secret + "x").status_code == 401
    listing = secured.cli("tokens", "list").stdout + secured.cli("audit", "--json").stdout
    secrets = [secret, *secured.secrets_by_scope.values()]

    sql = _dump_sql(secured)
    assert secret_digest(secret) in sql  # the scan reads the tokens table
    for place, text in {
        "SQL rows": sql,
        "SQL files": _read_files(_database_files(secured)),
        "Redis": _dump_redis(secured),
        "logs": _read_files(sorted(secured.stack.stack.logs.glob("*.log"))),
        "tokens list and audit": listing,
    }.items():
        assert text, f"nothing read from {place}"
        leaked = [s[:8] for s in secrets if s in text]
        assert leaked == [], f"{place} hold the secret(s) starting {leaked}"


def _dump_sql(secured: SecuredStack) -> str:
    metadata = MetaData()
    with secured.stack.session() as session:
        metadata.reflect(bind=session.get_bind())
        return "\n".join(
            str(row) for table in metadata.sorted_tables for row in session.execute(select(table))
        )


def _database_files(secured: SecuredStack) -> list[Path]:
    database = Path(secured.stack.settings.resolved_database_url.removeprefix("sqlite:///"))
    return sorted(database.parent.glob(database.name + "*"))  # the file, its WAL and shm


def _read_files(paths: list[Path]) -> str:
    return "\n".join(path.read_bytes().decode("latin-1") for path in paths)


def _dump_redis(secured: SecuredStack) -> str:
    client = secured.stack.live.redis
    readers = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda key: client.lrange(key, 0, -1),
        "set": client.smembers,
        "zset": lambda key: client.zrange(key, 0, -1, withscores=True),
        "stream": client.xrange,
    }
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        parts.append(f"{key!r} {readers[kind](key)!r}")
    return "\n".join(parts)
