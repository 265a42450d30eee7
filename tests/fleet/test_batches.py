"""serial batches and max_fail_percentage, as Ansible plays them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orchestrator.fleet.calls import PingCall
from orchestrator.fleet.options import FleetOptions, plan_batches
from orchestrator.fleet.results import HostStatus
from tests.support.sshd import free_port
from workers.fleet.executor import run_fleet


@pytest.mark.parametrize(
    ("serial", "sizes"),
    [
        (None, [5]),
        (2, [2, 2, 1]),
        ("40%", [2, 2, 1]),
        ("10%", [1, 1, 1, 1, 1]),
        ([1, "50%"], [1, 2, 2]),
        ([1, 2, 10], [1, 2, 2]),
    ],
)
def test_plan_batches_follows_ansible_serial(serial, sizes) -> None:
    hosts = [f"h{i}" for i in range(5)]
    batches = plan_batches(hosts, serial)
    assert [len(b) for b in batches] == sizes
    assert [h for b in batches for h in b] == hosts


def test_bad_serial_and_percentages_are_rejected_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="serial"):
        FleetOptions(serial="abc")
    with pytest.raises(ValidationError, match="max_fail_percentage"):
        FleetOptions(max_fail_percentage=150)
    with pytest.raises(ValidationError, match="known_hosts_store is required"):
        FleetOptions(host_key_policy="accept-new")


def test_max_fail_percentage_stops_later_batches(fleet, options, pool) -> None:
    dead = fleet.targets(fleet.hosts[:1], name="dead", port=free_port(fleet.hosts[0].address))
    targets = [*fleet.targets()[:1], *dead, *fleet.targets()[1:5]]  # batches of 2, 2, 2
    result = run_fleet(
        targets,
        PingCall(),
        options.model_copy(update={"serial": 2, "max_fail_percentage": 25}),
        pool=pool,
    )

    assert result["dead"].status is HostStatus.UNREACHABLE
    assert result[targets[0].name].status is HostStatus.OK
    assert [r.status for r in list(result.values())[2:]] == [HostStatus.SKIPPED] * 4
    assert "over max_fail_percentage 25%" in (result.stopped_reason or "")
    assert sum(c.skipped for c in result.recap().values()) == 4


def test_failures_under_the_limit_let_later_batches_run(fleet, options, pool) -> None:
    dead = fleet.targets(fleet.hosts[:1], name="dead", port=free_port(fleet.hosts[0].address))
    targets = [*fleet.targets()[:1], *dead, *fleet.targets()[1:5]]
    result = run_fleet(
        targets,
        PingCall(),
        options.model_copy(update={"serial": 2, "max_fail_percentage": 50}),
        pool=pool,
    )
    assert len(result.succeeded) == 5 and result.stopped_reason is None


def test_a_cancel_skips_the_hosts_not_yet_started(fleet, options, pool) -> None:
    asked = iter([False])  # the first host starts; the cancel comes before the second
    result = run_fleet(
        fleet.targets()[:4],
        PingCall(),
        options.model_copy(update={"serial": 1}),
        pool=pool,
        cancelled=lambda: next(asked, True),
    )

    assert [r.status for r in result.values()] == [HostStatus.OK] + [HostStatus.SKIPPED] * 3
    assert "cancelled" in (result.stopped_reason or "")
    assert not result.all_ok
