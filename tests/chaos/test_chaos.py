"""The fault suite in its bounded form: one trial per fault, Redis frozen 12 s rather than 30
(``make chaos`` runs more), each checked for lost, duplicated, orphaned and stuck jobs, jobs
without their reason or failed where the fault should fail none, disagreement between SQL,
Redis and the API, services that died by themselves, 5xx answers and bad inputs taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.checks import MUST_BE_ZERO
from tests.chaos.driver import ChaosConfig, run_chaos
from tests.support.sshd import SshdFleet


@pytest.mark.timeout(900)  # about two minutes when all is well; the bound only stops a hang
def test_under_every_fault_each_job_ends_once_with_its_reason_and_every_record_agrees(
    fleet: SshdFleet, tmp_path: Path
) -> None:
    config = ChaosConfig(trials=1, freeze_seconds=12, final_timeout=60)

    summary = run_chaos(tmp_path, fleet, config)

    counts = {category: summary.count(category) for category in MUST_BE_ZERO}
    assert summary.clean, summary.report()
    assert counts == dict.fromkeys(MUST_BE_ZERO, 0)
    assert summary.tally.server_errors == []
    assert summary.tally.bad_inputs_accepted == []
    every = summary.per_fault.values()
    assert all(totals.trials == 1 and totals.jobs > 0 for totals in every)
    # Placement spread VMs over every hypervisor, the daemon-served one included.
    assert all(count > 0 for count in summary.vms_made.values()), summary.vms_made
    assert sum(totals.bad_inputs for totals in every) > 0
