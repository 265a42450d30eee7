"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import libvirt
import pytest

from tests.support.libvirtd import QEMU_URI, ensure_libvirtd


@pytest.fixture(scope="session")
def qemu_uri() -> str:
    """``qemu:///system`` on a running libvirtd, started here when needed."""
    reason = ensure_libvirtd()
    if reason:
        pytest.skip(reason)
    return QEMU_URI


@pytest.fixture
def qemu_conn(qemu_uri: str) -> Iterator[libvirt.virConnect]:
    conn = libvirt.open(qemu_uri)
    yield conn
    conn.close()


@pytest.fixture
def test_conn() -> Iterator[libvirt.virConnect]:
    """A private ``test:///default`` hypervisor (its state lives in this process only)."""
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real redis-server for the run; each stack flushes it before use."""
    from tests.support.services import redis_url, running_redis

    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield redis_url(server)


@pytest.fixture
def make_stack(tmp_path: Path, redis_server: str):  # type: ignore[no-untyped-def]
    """Factory: ``make_stack({"hv1": "test:///default"}, **settings)`` -> a running RunningStack."""
    from tests.support.services import test_stack

    with ExitStack() as stacks:

        def make(hypervisors: dict[str, str], redis_url: str | None = None, **overrides):  # type: ignore[no-untyped-def]
            return stacks.enter_context(
                test_stack(tmp_path, redis_url or redis_server, hypervisors, **overrides)
            )

        yield make


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database: SQLite, and PostgreSQL when ORCH_TEST_POSTGRES_URL is set."""
    from orchestrator.db import upgrade
    from tests.support.databases import POSTGRES_ENV, postgres_admin_url, temporary_database

    if request.param == "postgresql" and not postgres_admin_url():
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (make test starts one)")
    with temporary_database(request.param, tmp_path) as url:
        upgrade(url)
        yield url
