"""Hostile input must not cost the service: inventories and patterns the API refuses with the
field and rule named, and command output capped per stream and per job wherever a job's
result and events are kept (the executor's memory, Redis, SQL). Real stack, real sshd hosts."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from orchestrator.client import ApiError
from orchestrator.fleet.calls import ShellCall
from orchestrator.fleet.files import fleet_files_dir
from orchestrator.fleet.options import FleetOptions
from orchestrator.fleet.results import HostStatus
from orchestrator.jobs.livestate import job_key, job_stream
from orchestrator.models import Job, JobEvent
from tests.fleet.test_jobs import HV, fleet_options, inventory_text, put_inventory
from tests.inventory.test_limits import alias_bomb
from tests.support.services import RunningStack
from tests.support.services import test_stack as running_stack
from tests.support.sshd import SshdFleet
from workers.fleet.connections import ConnectionPool
from workers.fleet.executor import run_fleet

KIB = 1024
STREAM_CAP = 64 * KIB
JOB_CAP = 160 * KIB
PRINTED = 200 * KIB  # per stream per host: past the stream cap, and 4 hosts past the job cap


def printing(size: int) -> str:
    """A shell command printing ``size`` bytes of 64-byte lines on stdout and on stderr."""
    line = "x" * 63
    return f"yes {line} | head -c {size}; yes {line} | head -c {size} >&2"


def json_size(text: str) -> int:
    return len(json.dumps(text)) - 2


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: str, fleet: SshdFleet
) -> Iterator[RunningStack]:
    with running_stack(
        tmp_path_factory.mktemp("fleet-hostile"), redis_server, {HV: "test:///default"}
    ) as s:
        keys = fleet_files_dir(s.settings) / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        shutil.copy(fleet.client_key, keys / "fleet.key")  # API inventories name keys here
        (keys / "fleet.key").chmod(0o600)
        yield s


def test_output_past_the_job_cap_is_dropped_said_and_never_kept(
    fleet: SshdFleet, options: FleetOptions, pool: ConnectionPool
) -> None:
    result = run_fleet(
        fleet.targets()[:4],
        ShellCall(cmd=printing(PRINTED)),
        options.model_copy(
            update={"output_cap_bytes": STREAM_CAP, "job_output_cap_bytes": JOB_CAP}
        ),
        pool=pool,
    )

    assert all(r.status is HostStatus.CHANGED for r in result.values())  # the commands ran
    kept = sum(json_size(r.stdout) + json_size(r.stderr) for r in result.values())
    assert kept <= JOB_CAP
    for r in result.values():
        assert r.stdout_truncated and r.stderr_truncated
        assert len(r.stdout.encode()) <= STREAM_CAP
        assert r.stdout_dropped_bytes == PRINTED - len(r.stdout.encode())
        # (a login shell's rc files may add to stderr before the command starts)
        assert r.stderr_dropped_bytes >= PRINTED - len(r.stderr.encode())
    summary = result.to_dict()["output"]
    assert summary["job_cap_bytes"] == JOB_CAP and summary["job_cap_reached"] is True
    assert summary["dropped_bytes"] == sum(
        r.stdout_dropped_bytes + r.stderr_dropped_bytes for r in result.values()
    )


def test_a_job_past_its_output_caps_succeeds_and_redis_and_sql_hold_no_more(
    stack: RunningStack, fleet: SshdFleet
) -> None:
    hosts = fleet.hosts[:4]
    job = stack.run(
        "fleet.run",
        HV,
        inventory=inventory_text(fleet, hosts),
        call={"module": "shell", "cmd": printing(PRINTED)},
        options=fleet_options(fleet, output_cap_bytes=STREAM_CAP, job_output_cap_bytes=JOB_CAP),
    )

    assert job["state"] == "succeeded", job["error"]
    results = job["result"]["hosts"]
    assert all(results[h.name]["stdout_truncated"] for h in hosts)
    assert all(results[h.name]["stdout_dropped_bytes"] > 0 for h in hosts)
    assert job["result"]["output"]["job_cap_reached"] is True
    output = sum(json_size(r["stdout"]) + json_size(r["stderr"]) for r in results.values())
    assert output <= JOB_CAP

    stack.wait_recorded(job["id"], "succeeded")
    overhead = 16 * KIB  # per-host fields, recap and the rest of the summary
    live = stack.live.redis
    assert len(live.hget(job_key(job["id"]), "result") or b"") <= JOB_CAP + overhead
    streamed = sum(len(fields["message"]) for _id, fields in live.xrange(job_stream(job["id"])))
    assert streamed <= JOB_CAP + overhead
    with stack.session() as session:
        row = session.get(Job, job["id"])
        assert row is not None
        assert len(json.dumps(row.result)) <= JOB_CAP + overhead
        messages = session.scalars(select(JobEvent.message).where(JobEvent.job_id == job["id"]))
        assert sum(json_size(m) for m in messages) <= JOB_CAP + overhead


def test_an_inventory_with_yaml_aliases_is_a_422_naming_the_text_and_the_rule(
    stack: RunningStack,
) -> None:
    refused = put_inventory(stack, "bomb", alias_bomb())

    assert refused.status_code == 422
    problem = refused.json()
    assert "YAML aliases are not accepted in inventories" in problem["detail"]
    assert problem["errors"][0]["field"] == "text"
    assert problem["errors"][0]["line"] == 4
    missing = requests.get(f"{stack.settings.resolved_api_url}/v1/inventories/bomb", timeout=10)
    assert missing.status_code == 404  # nothing stored


def test_an_inline_inventory_past_the_range_cap_is_a_422_naming_the_parameter(
    stack: RunningStack,
) -> None:
    with pytest.raises(ApiError) as refused:
        stack.submit("fleet.ping", HV, inventory="[web]\nh[0:99999]\n")

    problem = refused.value.problem
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "params.inventory"
    assert "expands to 100000 hosts, more than the 10000" in problem["errors"][0]["message"]


def test_a_regex_pattern_without_a_linear_time_match_is_a_422_naming_the_pattern(
    stack: RunningStack,
) -> None:
    assert put_inventory(stack, "plain", "[web]\nw[1:3]\n").status_code == 201
    url = f"{stack.settings.resolved_api_url}/v1/inventories/plain/hosts?pattern=~(?=web)w"
    answer = requests.get(url, timeout=10)

    assert answer.status_code == 422, answer.text
    problem: dict[str, Any] = answer.json()
    assert problem["errors"][0]["field"] == "pattern"
    assert "lookarounds and backreferences are not supported" in problem["detail"]


def test_a_regex_that_backtracks_without_end_in_python_answers_at_once(
    stack: RunningStack,
) -> None:
    text = "[web]\n" + "a" * 200 + "-\nweb1\n"
    assert put_inventory(stack, "names", text).status_code == 201
    url = f"{stack.settings.resolved_api_url}/v1/inventories/names/hosts?pattern=~(a%2B)%2B$"
    answer = requests.get(url, timeout=30)

    assert answer.status_code == 200, answer.text
    assert answer.json()["hosts"] == []
