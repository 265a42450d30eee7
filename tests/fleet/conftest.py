"""Fixtures for fleet tests: 20 real sshd hosts for the session, plus single hosts that a
test may stop or re-key, and a private connection pool per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.fleet.options import FleetOptions
from tests.support.sshd import SshdFleet, SshdHost, missing_parts, start_fleet
from workers.fleet.connections import ConnectionPool

FLEET_SIZE = 20


@pytest.fixture(scope="session")
def fleet() -> Iterator[SshdFleet]:
    """20 sshd hosts on 127.0.0.2-21, each with its own host key, all in one known_hosts."""
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    hosts = start_fleet(FLEET_SIZE)
    yield hosts
    hosts.stop()


@pytest.fixture
def spare_host(fleet: SshdFleet) -> Iterator[SshdHost]:
    """One more sshd host that a test may stop or restart with a new host key."""
    index = FLEET_SIZE + 10 + len(fleet.hosts)
    (host,) = fleet.add_hosts(1, index)
    yield host
    host.stop()
    fleet.hosts.remove(host)
    fleet.write_known_hosts()


@pytest.fixture
def pool() -> Iterator[ConnectionPool]:
    connections = ConnectionPool()
    yield connections
    connections.close_all()


@pytest.fixture
def options(fleet: SshdFleet) -> FleetOptions:
    return FleetOptions(
        known_hosts_files=(str(fleet.known_hosts),),
        connect_timeout=5,
        auth_timeout=5,
        command_timeout=30,
        connect_retries=0,
        forks=10,
    )
