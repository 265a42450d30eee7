"""The sshd hosts the chaos trials' fleet jobs run on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sshd import SshdFleet, missing_parts, start_fleet

FLEET_SIZE = 3
FIRST_OCTET = 60  # 127.0.0.62-64: apart from the other fleets a run may start


@pytest.fixture(scope="module")
def fleet() -> Iterator[SshdFleet]:
    """Three real sshd hosts (named like tests/fleet's fixture: it starts sshd services)."""
    reason = missing_parts()
    if reason:
        pytest.skip(reason)
    hosts = start_fleet(FLEET_SIZE, FIRST_OCTET)
    yield hosts
    hosts.stop()
