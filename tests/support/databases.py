"""Temporary databases: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "ORCH_TEST_POSTGRES_URL"


def postgres_admin_url() -> str | None:
    """The server the PostgreSQL tests use (a role allowed to CREATE DATABASE)."""
    return os.environ.get(POSTGRES_ENV)


@contextmanager
def temporary_database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'jobs.db'}"
        return
    admin_url = postgres_admin_url()
    assert admin_url, f"{POSTGRES_ENV} is not set"
    name = f"orch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
