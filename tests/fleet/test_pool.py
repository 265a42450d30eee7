"""Warm connections: reused between runs without a new TCP connection or login, dropped when
idle too long or dead, and reached through a jump host."""

from __future__ import annotations

import time

from orchestrator.fleet.calls import CommandCall, PingCall
from orchestrator.fleet.results import HostStatus
from tests.support.sshd import SshdFleet, logins, start_same_port
from workers.fleet.connections import ConnectionPool
from workers.fleet.executor import run_fleet


def test_second_run_reuses_every_connection(fleet: SshdFleet, options, pool) -> None:
    logins_before = sum(logins(h) for h in fleet.hosts)
    first = run_fleet(fleet.targets(), CommandCall(argv=["uname", "-n"]), options, pool=pool)
    after_first = pool.stats()
    second = run_fleet(fleet.targets(), CommandCall(argv=["uname", "-n"]), options, pool=pool)
    after_second = pool.stats()

    assert first.all_ok and second.all_ok
    assert after_first.opened == len(fleet.hosts)
    assert after_second.opened == after_first.opened  # no new TCP connection
    assert after_second.reused == len(fleet.hosts)
    assert all(r.reused_connection for r in second.values())
    assert all(r.durations_ms["connect"] == 0 for r in second.values())
    # sshd saw exactly one login per host over both runs.
    assert sum(logins(h) for h in fleet.hosts) - logins_before == len(fleet.hosts)


def test_connections_idle_too_long_are_closed_not_reused(fleet, options) -> None:
    pool = ConnectionPool(max_idle_seconds=0.05)
    try:
        run_fleet(fleet.targets()[:2], PingCall(), options, pool=pool)
        time.sleep(0.1)
        again = run_fleet(fleet.targets()[:2], PingCall(), options, pool=pool)
        assert not any(r.reused_connection for r in again.values())
        assert pool.stats().opened == 4 and pool.stats().closed == 2
    finally:
        pool.close_all()


def test_a_connection_that_died_while_idle_is_replaced(fleet, spare_host, options, pool) -> None:
    target = fleet.targets([spare_host])
    assert run_fleet(target, PingCall(), options, pool=pool).all_ok
    spare_host.stop()  # kills the per-connection sshd too
    start_same_port(spare_host)

    result = run_fleet(target, CommandCall(argv=["true"]), options, pool=pool)[spare_host.name]
    assert result.status is HostStatus.CHANGED, result.error
    assert not result.reused_connection
    assert pool.stats().opened == 2


def test_host_reached_through_a_jump_host(fleet: SshdFleet, options, pool) -> None:
    bastion, inner = fleet.hosts[0], fleet.hosts[1]
    (target,) = fleet.targets([inner], proxy_jump=f"root@{bastion.address}:{bastion.port}")
    result = run_fleet([target], CommandCall(argv=["echo", "via jump"]), options, pool=pool)
    assert result[inner.name].stdout == "via jump\n", result[inner.name].error
