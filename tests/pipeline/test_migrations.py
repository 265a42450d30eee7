"""The migrations build the schema the models describe, on SQLite and PostgreSQL, and the
latest one can be undone and redone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, Table, create_engine, insert, text

from orchestrator.db import MIGRATIONS, upgrade
from orchestrator.models import Base


def schema_differences(url: str) -> list[Any]:
    """What Alembic would have to change at ``url`` to match the models."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))
    finally:
        engine.dispose()


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    assert schema_differences(database_url) == []


def test_the_latest_migration_goes_down_and_up_again(database_url: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    command.downgrade(config, "-1")
    assert schema_differences(database_url) != []

    upgrade(database_url)

    assert schema_differences(database_url) == []


def test_jobs_from_before_0006_keep_the_domains_they_made(database_url: str) -> None:
    # Their makers stay the owners of the domains after the upgrade (access.domain_owners).
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    command.downgrade(config, "0005")
    engine = create_engine(database_url)
    jobs = Table("jobs", MetaData(), autoload_with=engine)
    now = datetime.now(UTC)
    common = {"state": "succeeded", "attempt": 1, "rerun_on_loss": False, "hypervisor": "hv1"}
    rows = {
        "defined": ("domain.define", {"name": "web-1", "memory_mib": 64}),
        "parent": ("vm.provision", {"name": "web-{index}", "count": 2}),
        "child": ("vm.provision", {"name": "web-2", "count": None}),
        "ping": ("ping", {"name": "not-a-domain"}),
    }
    with engine.begin() as connection:
        for job_id, (kind, params) in rows.items():
            connection.execute(
                insert(jobs).values(
                    id=job_id,
                    kind=kind,
                    params=params,
                    submitter="team-a",
                    created_at=now,
                    updated_at=now,
                    last_seq=0,
                    **common,
                )
            )
    engine.dispose()

    upgrade(database_url)

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            found = dict(connection.execute(text("SELECT id, domain FROM jobs")).all())
    finally:
        engine.dispose()
    assert found == {"defined": "web-1", "parent": None, "child": "web-2", "ping": None}
