"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import libvirt
import pytest

from tests.support.libvirtd import QEMU_URI, ensure_libvirtd

# Fixtures that start or reach a service: a real libvirtd, redis-server, sshd hosts, a migrated
# database, ansible-core processes. A test whose fixtures use none of them, directly or through
# another fixture, is marked ``unit`` (``make unit``). A new fixture that starts a service without
# going through one of these belongs in this list.
SERVICE_FIXTURES = frozenset(
    {
        "qemu_uri",  # the real libvirtd (qemu_conn, dir_pool, oracle_pool, kvm_pool...)
        "redis_server",  # make_stack and every stack, live-state and publisher client
        "api_stack",  # tests/storage/test_through_api.py: its own redis-server and stack
        "fleet",  # 20 sshd hosts (options, spare_host)
        "database_url",  # a migrated SQLite or PostgreSQL database per test
        "ansible",  # tests/inventory/test_oracle.py: ansible-core probe processes
    }
)


@pytest.fixture(scope="session", autouse=True)
def cpu_probe_records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where test stacks share what their workers learned about the guest CPU modes."""
    from tests.support import services

    services.CPU_PROBE_RECORDS = tmp_path_factory.mktemp("cpu-probe-records")
    yield services.CPU_PROBE_RECORDS
    services.CPU_PROBE_RECORDS = None


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.unit)


def skips_fail() -> bool:
    """True under CI, which installs every part: there a skip means a probe that broke."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and item.get_closest_marker("allow_skip") is None
        and skips_fail()
    ):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every part is installed: {_reason(report)}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if report.skipped and skips_fail():  # a module-level skip or importorskip
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where every part is installed: {_reason(report)}"
    return report


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    if isinstance(report.longrepr, tuple):  # (path, line, "Skipped: why")
        return str(report.longrepr[2])
    return str(report.longrepr)


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
def empty_redis(redis_server: str) -> Iterator[Any]:
    """A client (redis.Redis, decoding replies) of the session's redis-server, emptied before
    and after the test."""
    import redis

    client = redis.Redis.from_url(redis_server, decode_responses=True)
    client.flushall()
    yield client
    client.flushall()
    client.close()


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
