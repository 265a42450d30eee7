"""Host key policies: strict refuses unknown and changed keys, accept-new records first-seen
keys in the product's store but still refuses changed ones, off says it did not check."""

from __future__ import annotations

from pathlib import Path

from orchestrator.fleet.calls import PingCall
from orchestrator.fleet.results import HostStatus
from tests.support.sshd import SshdFleet, restart_with_new_host_key
from workers.fleet.connections import ConnectionPool
from workers.fleet.executor import run_fleet
from workers.fleet.hostkeys import parse_count


def test_strict_refuses_a_host_missing_from_known_hosts(fleet, options, pool, tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    opts = options.model_copy(update={"known_hosts_files": (str(empty),)})
    result = run_fleet(fleet.targets()[:2], PingCall(), opts, pool=pool)

    assert len(result.unreachable) == 2
    assert all("is not known" in (r.error or "") for r in result.values())


def test_changed_host_key_fails_closed_under_strict_and_accept_new(
    fleet: SshdFleet, spare_host, options, pool, tmp_path: Path
) -> None:
    target = fleet.targets([spare_host])
    assert run_fleet(target, PingCall(), options, pool=pool).all_ok
    pool.close_all()
    restart_with_new_host_key(spare_host)  # known_hosts still holds the old key

    strict = run_fleet(target, PingCall(), options, pool=pool)[spare_host.name]
    accept_new = run_fleet(
        target,
        PingCall(),
        options.model_copy(
            update={"host_key_policy": "accept-new", "known_hosts_store": str(tmp_path / "store")}
        ),
        pool=pool,
    )[spare_host.name]

    for result in (strict, accept_new):
        assert result.status is HostStatus.UNREACHABLE
        assert "CHANGED" in (result.error or "")
    assert (
        not (tmp_path / "store").exists()
        or spare_host.address not in (tmp_path / "store").read_text()
    )


def test_accept_new_records_first_seen_keys_then_matches_them(
    fleet: SshdFleet, options, tmp_path: Path
) -> None:
    store = tmp_path / "fleet_known_hosts"
    opts = options.model_copy(
        update={
            "known_hosts_files": (),
            "host_key_policy": "accept-new",
            "known_hosts_store": str(store),
        }
    )
    hosts = fleet.hosts[:3]
    first = run_fleet(fleet.targets(hosts), PingCall(), opts, pool=ConnectionPool())
    assert {r.host_key_check for r in first.values()} == {"recorded"}
    assert sorted(store.read_text().splitlines()) == sorted(
        h.known_hosts_line().strip() for h in hosts
    )
    assert store.stat().st_mode & 0o777 == 0o600

    second = run_fleet(fleet.targets(hosts), PingCall(), opts, pool=ConnectionPool())
    assert {r.host_key_check for r in second.values()} == {"matched"}
    assert len(store.read_text().splitlines()) == 3


def test_accept_new_refuses_a_changed_key_it_recorded_itself(
    fleet, spare_host, options, tmp_path: Path
) -> None:
    opts = options.model_copy(
        update={
            "known_hosts_files": (),
            "host_key_policy": "accept-new",
            "known_hosts_store": str(tmp_path / "store"),
        }
    )
    target = fleet.targets([spare_host])
    assert run_fleet(target, PingCall(), opts, pool=ConnectionPool()).all_ok
    restart_with_new_host_key(spare_host)

    result = run_fleet(target, PingCall(), opts, pool=ConnectionPool())[spare_host.name]
    assert result.status is HostStatus.UNREACHABLE and "CHANGED" in (result.error or "")


def test_off_connects_anyway_and_says_it_did_not_check(fleet, options, pool, tmp_path) -> None:
    opts = options.model_copy(update={"host_key_policy": "off", "known_hosts_files": ()})
    result = run_fleet(fleet.targets()[:2], PingCall(), opts, pool=pool)
    assert result.all_ok
    assert {r.host_key_check for r in result.values()} == {"off"}


def test_known_hosts_is_parsed_once_per_process(fleet, options) -> None:
    run_fleet(fleet.targets(), PingCall(), options, pool=ConnectionPool())
    before = parse_count()
    run_fleet(fleet.targets(), PingCall(), options, pool=ConnectionPool())
    assert parse_count() == before
