"""The migrations build the schema the models describe, on SQLite and PostgreSQL, and the
latest one can be undone and redone."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

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
