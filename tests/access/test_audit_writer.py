"""The audit trail written in batches: entries reach SQL in order without anyone asking, a
reader's flush shows every entry held, a writer that falls behind makes the request write, and
an API process told to stop writes what it held before it exits."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.access.audit import AuditRecord
from orchestrator.access.audit_writer import AuditWriter
from orchestrator.access.tokens import as_utc
from orchestrator.db import make_engine, make_sessionmaker, upgrade
from orchestrator.local.processes import ServiceProcess, free_port, port_open
from orchestrator.local.stack import child_env
from orchestrator.models import AuditEntry
from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NEVER = 3600.0  # a flush interval no test outlasts: only flush(), a full queue or exit write


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def held(sessions: sessionmaker[Session]) -> Iterator[AuditWriter]:
    writer = AuditWriter(sessions, interval=NEVER)
    yield writer
    writer.close()


def entry(status: int, path: str = "/v1/jobs") -> AuditRecord:
    return AuditRecord("ci", "POST", "/v1/jobs", path, status)


def stored(sessions: sessionmaker[Session]) -> list[tuple[str, int]]:
    with sessions() as session:
        rows = session.execute(select(AuditEntry.path, AuditEntry.status).order_by(AuditEntry.id))
        return [(path, status) for path, status in rows]


def wait_for_rows(sessions: sessionmaker[Session], count: int) -> list[tuple[str, int]]:
    deadline = time.monotonic() + 60
    while len(rows := stored(sessions)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return rows


def test_entries_reach_sql_in_order_on_their_own(sessions: sessionmaker[Session]) -> None:
    writer = AuditWriter(sessions)
    try:
        for status in (202, 403, 401, 202):
            writer.submit(entry(status, f"/v1/jobs/{status}"))
        rows = wait_for_rows(sessions, 4)
    finally:
        writer.close()
    assert rows == [(f"/v1/jobs/{s}", s) for s in (202, 403, 401, 202)]


def test_a_flush_writes_every_entry_held(
    held: AuditWriter, sessions: sessionmaker[Session]
) -> None:
    happened = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    held.submit(AuditRecord("ci", "POST", "/v1/jobs", "/v1/jobs", 202, time=happened))
    held.submit(entry(403))
    assert stored(sessions) == []
    held.flush()
    assert stored(sessions) == [("/v1/jobs", 202), ("/v1/jobs", 403)]
    with sessions() as session:
        times = session.scalars(select(AuditEntry.time).order_by(AuditEntry.id)).all()
    assert as_utc(times[0]) == happened  # when it happened, not when the batch was written


def test_a_writer_behind_makes_the_request_that_fills_it_write(
    sessions: sessionmaker[Session],
) -> None:
    writer = AuditWriter(sessions, interval=NEVER, max_pending=3)
    try:
        writer.submit(entry(202))
        writer.submit(entry(429))
        assert stored(sessions) == []
        writer.submit(entry(401))
        assert stored(sessions) == [("/v1/jobs", 202), ("/v1/jobs", 429), ("/v1/jobs", 401)]
    finally:
        writer.close()


def test_entries_after_close_are_written_at_once(
    held: AuditWriter, sessions: sessionmaker[Session]
) -> None:
    held.submit(entry(202))
    held.close()
    held.submit(entry(403))
    assert stored(sessions) == [("/v1/jobs", 202), ("/v1/jobs", 403)]


def test_a_process_that_exits_writes_what_it_held(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    script = (
        "import sys\n"
        "from orchestrator.access.audit import AuditRecord\n"
        "from orchestrator.access.audit_writer import AuditWriter\n"
        "from orchestrator.db import make_engine, make_sessionmaker\n"
        f"writer = AuditWriter(make_sessionmaker(make_engine({database_url!r})), interval=3600)\n"
        "writer.submit(AuditRecord('ci', 'POST', '/v1/jobs', '/v1/jobs/exit', 401))\n"
        "sys.exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert stored(sessions) == [("/v1/jobs/exit", 401)]


def held_entries_app() -> Flask:
    """The API as served, its audit entries held until exit (gunicorn loads this)."""
    from api import create_app

    app = create_app(Settings())
    app.extensions["audit"] = AuditWriter(app.extensions["orchestrator"].sessions, interval=NEVER)
    return app


def test_an_api_stopped_with_sigterm_writes_what_it_held(tmp_path: Path, redis_server: str) -> None:
    secret = secrets.token_urlsafe(24)
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=f"sqlite:///{tmp_path / 'orchestrator.db'}",
        redis_url=redis_server,
        api_port=free_port(),
        api_tokens={secret: ["jobs:read"]},
    )
    upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_sessionmaker(engine)
    argv = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "1", "--threads", "4"]
    argv += [f"--bind=127.0.0.1:{settings.api_port}", f"{__name__}:held_entries_app()"]
    api = ServiceProcess(
        "api",
        argv,
        log_path=tmp_path / "api.log",
        env={**child_env(settings), "PYTHONPATH": str(ROOT)},
        ready=port_open(settings.api_port),
    )
    try:
        api.start(60)
        url = f"{settings.resolved_api_url}/v1/jobs"
        # No connection kept alive: gunicorn would wait out its graceful timeout on one, then
        # kill the worker before it exits (in service the writer's own interval covers that).
        close = {"Connection": "close"}
        headers = {**close, "Authorization": f"Bearer {secret}"}
        refused = requests.post(url, json={"kind": "ping"}, headers=headers, timeout=30)
        unknown = requests.post(url, json={"kind": "ping"}, headers=close, timeout=30)
        assert (refused.status_code, unknown.status_code) == (403, 401)
        assert stored(sessions) == []
        api.stop(timeout=60)
        assert stored(sessions) == [("/v1/jobs", 403), ("/v1/jobs", 401)], api.log_tail()
    finally:
        api.stop()
        engine.dispose()
