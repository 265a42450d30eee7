"""``logs``, ``jobs``, ``submit --file`` and the progress bar of a count request, run as
processes against a real stack."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.local.processes import free_port
from tests.cli.conftest import HV, jobs_with_message, marker, run_cli
from tests.support.services import RunningStack


def url(stack: RunningStack) -> str:
    return stack.settings.resolved_api_url


@pytest.fixture(scope="module")
def count_job(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A count request of four VMs submitted from a file and followed with a progress bar:
    the finished parent, with what the command printed."""
    body = {
        "kind": "vm.provision",
        "params": {
            "count": 4,
            "name": f"bar{uuid.uuid4().hex[:6]}" + "-{index}",
            "memory_mib": 64,
            "disk": {"pool": "default", "size": "1M"},
            "graphics": "none",
        },
    }
    request = tmp_path_factory.mktemp("count") / "job.json"
    request.write_text(json.dumps(body))
    run = run_cli(url(stack), "submit", "--file", str(request), "--wait", "--progress", "--json")
    assert run.code == 0, run.stderr
    return {**json.loads(run.stdout), "run": run}


def test_a_count_request_draws_a_bar_of_its_children(count_job: dict[str, Any]) -> None:
    stderr = count_job["run"].stderr
    assert "vm.provision x4" in stderr
    assert "4/4" in stderr and "4 succeeded" in stderr
    assert count_job["children"]["succeeded"] == 4


def test_logs_prints_the_events_of_the_json_view(
    stack: RunningStack, count_job: dict[str, Any]
) -> None:
    shown = stack.api.events(count_job["id"])
    lines = run_cli(url(stack), "logs", count_job["id"])
    as_json = run_cli(url(stack), "logs", count_job["id"], "--json")

    assert lines.code == 0 and as_json.code == 0
    assert lines.events() == [(e["seq"], e["message"].splitlines()[0]) for e in shown]
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == shown


def test_logs_follow_exits_as_the_job_ended(stack: RunningStack) -> None:
    message = marker()
    going = stack.submit("ping", HV, delay=1, message=message)
    failed = stack.run("domain.start", HV, name="nosuch")

    followed = run_cli(url(stack), "logs", "-f", going["id"])
    of_failed = run_cli(url(stack), "logs", "-f", failed["id"])

    assert followed.code == 0, followed.stderr
    assert [seq for seq, _ in followed.events()] == [
        e["seq"] for e in stack.api.events(going["id"])
    ]
    assert f"job {going['id']} succeeded" in followed.stdout
    assert of_failed.code == 1
    assert "domain 'nosuch' does not exist" in of_failed.stdout


def test_jobs_lists_with_filters(stack: RunningStack, count_job: dict[str, Any]) -> None:
    message = marker()
    for _ in range(3):
        stack.run("ping", HV, message=message)

    children = run_cli(url(stack), "jobs", "--parent", count_job["id"], "--json")
    limited = run_cli(url(stack), "jobs", "--kind", "ping", "--state", "succeeded", "--limit", "2")
    on_hv = run_cli(url(stack), "jobs", "--hypervisor", HV, "--kind", "vm.provision")
    bad = run_cli(url(stack), "jobs", "--state", "done")

    assert children.code == 0
    kids = json.loads(children.stdout)
    assert len(kids) == 4 and {k["parent_id"] for k in kids} == {count_job["id"]}
    assert limited.code == 0 and len(limited.stdout.splitlines()) == 2
    newest = [job["id"] for job in jobs_with_message(stack, message)][:2]
    assert [line.split()[0] for line in limited.stdout.splitlines()] == newest
    assert {line.split()[0] for line in on_hv.stdout.splitlines()} == {k["id"] for k in kids}
    assert bad.code == 2 and "state: must be one of" in bad.stderr


def test_a_file_body_takes_params_and_hypervisor_from_the_command_line(
    stack: RunningStack, tmp_path: Path
) -> None:
    message = marker()
    request = tmp_path / "ping.json"
    request.write_text(json.dumps({"kind": "ping", "params": {"message": "from the file"}}))

    run = run_cli(url(stack), "submit", "--file", str(request), "-p", f"message={message}",
                  "--hypervisor", HV, "--wait", "--json")  # fmt: skip

    assert run.code == 0, run.stderr
    done = json.loads(run.stdout)
    assert (done["result"]["message"], done["hypervisor"]) == (message, HV)


def test_a_fleet_job_draws_a_bar_of_its_hosts(stack: RunningStack) -> None:
    # Three hosts on ports where nothing listens: each ends unreachable, so the job fails.
    inventory = "".join(
        f"web{i} ansible_host=127.0.0.1 ansible_port={free_port()}\n" for i in range(3)
    )
    run = run_cli(url(stack), "submit", "fleet.ping", "-p", f"inventory={inventory}", "-p",
                  'options={"host_key_policy": "off", "connect_timeout": 5}', "--hypervisor", HV,
                  "--wait", "--progress")  # fmt: skip

    assert run.code == 1, run.stderr
    assert "ping on 3 hosts" in run.stderr
    assert "3/3" in run.stderr and "3 unreachable" in run.stderr
    assert "web0: unreachable" in run.stdout
