"""Each way a job can end, as the exit code and the lines a CI log shows: ``orchestrator
submit --wait`` run as a process against a real stack."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.client import ApiClient
from orchestrator.local.processes import free_port
from tests.cli.conftest import (
    HV,
    finish,
    jobs_with_message,
    marker,
    run_cli,
    start_cli,
    until,
)
from tests.support.services import RunningStack


def url(stack: RunningStack) -> str:
    return stack.settings.resolved_api_url


def test_a_job_that_succeeds_exits_0_after_printing_its_events_and_result(
    stack: RunningStack,
) -> None:
    message = marker()
    run = run_cli(
        url(stack),
        "submit",
        "ping",
        "-p",
        "delay=0.3",
        "-p",
        f"message={message}",
        "--hypervisor",
        HV,
        "--wait",
    )

    assert run.code == 0, run.stderr
    (job,) = jobs_with_message(stack, message)
    shown = stack.api.events(job["id"])
    assert run.events() == [(e["seq"], e["message"].splitlines()[0]) for e in shown]
    assert f"job {job['id']} succeeded" in run.stdout
    assert f'"message": "{message}"' in run.stdout  # the result
    assert "Traceback" not in run.stderr


def test_a_job_that_fails_exits_1_with_its_error(stack: RunningStack) -> None:
    run = run_cli(
        url(stack), "submit", "domain.start", "-p", "name=nosuch", "--hypervisor", HV, "--wait"
    )

    assert run.code == 1, run.stderr
    assert "failed" in run.stdout
    assert "domain 'nosuch' does not exist" in run.stdout


def test_bad_input_exits_2_naming_the_field_without_a_traceback(stack: RunningStack) -> None:
    message = marker()
    run = run_cli(
        url(stack), "submit", "ping", "-p", "delay=-1", "-p", f"message={message}", "--wait"
    )

    assert run.code == 2
    assert "422" in run.stderr
    assert "params.delay: Input should be greater than or equal to 0" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert jobs_with_message(stack, message) == []


def test_an_unknown_job_and_a_bad_param_pair_exit_2(stack: RunningStack) -> None:
    unknown = run_cli(url(stack), "logs", "no-such-job")
    bad_pair = run_cli(url(stack), "submit", "ping", "-p", "delay")

    assert unknown.code == 2 and "404" in unknown.stderr
    assert bad_pair.code == 2 and "KEY=VALUE" in bad_pair.stderr


def test_an_unreachable_api_exits_5_after_retrying() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    run = run_cli(nobody, "submit", "ping", "--wait", "--retry-for", "1")
    as_json = run_cli(nobody, "submit", "ping", "--retry-for", "0", "--json")

    assert run.code == 5
    assert "trying again" in run.stderr
    assert "API unreachable" in run.stderr and "Connection refused" in run.stderr
    assert "Traceback" not in run.stderr
    assert as_json.code == 5
    assert json.loads(as_json.stdout)["title"] == "API unreachable"


def test_a_timeout_while_waiting_exits_4_and_leaves_the_job_running(
    stack: RunningStack,
) -> None:
    message = marker()
    run = run_cli(
        url(stack),
        "submit",
        "ping",
        "-p",
        "delay=60",
        "-p",
        f"message={message}",
        "--hypervisor",
        HV,
        "--wait",
        "--timeout",
        "2",
        "--json",
    )
    (job,) = jobs_with_message(stack, message)
    try:
        assert run.code == 4, run.stderr
        shown = json.loads(run.stdout)
        assert shown["id"] == job["id"] and shown["state"] in {"queued", "running"}
        assert f"orchestrator cancel {job['id']}" in run.stderr
        assert stack.api.job(job["id"])["state"] in {"queued", "running"}
    finally:
        stack.api.cancel(job["id"])


def test_a_job_cancelled_from_another_process_exits_3(stack: RunningStack) -> None:
    # Every slot of the worker busy, so the job under test stays queued until cancelled (a
    # running ping asked to stop answers early, and succeeds).
    blockers = [
        stack.submit("ping", HV, delay=120, message=marker())
        for _ in range(stack.settings.worker_concurrency)
    ]
    try:
        until(lambda: all(_state(stack.api, b) == "running" for b in blockers), "blockers run")
        message = marker()
        waiting = start_cli(
            url(stack), "submit", "ping", "-p", f"message={message}", "--hypervisor", HV, "--wait"
        )
        (job,) = until(lambda: jobs_with_message(stack, message), "the job is submitted")
        until(lambda: _state(stack.api, job) == "queued", "the job is queued")

        cancel = run_cli(url(stack), "cancel", job["id"])
        run = finish(waiting)
    finally:
        for blocker in blockers:
            stack.api.cancel(blocker["id"])

    assert cancel.code == 0, cancel.stderr
    assert f"job {job['id']} cancelled" in cancel.stdout
    assert run.code == 3, run.stderr
    assert f"job {job['id']} cancelled" in run.stdout
    again = run_cli(url(stack), "cancel", job["id"])
    assert again.code == 0  # already cancelled: what was asked holds


def test_cancelling_a_finished_job_exits_2_saying_so(stack: RunningStack) -> None:
    done = stack.run("ping", HV)
    run = run_cli(url(stack), "cancel", done["id"])

    assert run.code == 2
    assert "409" in run.stderr and "already succeeded" in run.stderr


def test_json_prints_only_the_final_document_or_the_problem_on_stdout(
    stack: RunningStack,
) -> None:
    ok = run_cli(url(stack), "submit", "ping", "--hypervisor", HV, "--wait", "--json")
    failed = run_cli(
        url(stack),
        "submit",
        "domain.start",
        "-p",
        "name=nosuch",
        "--hypervisor",
        HV,
        "--wait",
        "--json",
    )
    refused = run_cli(url(stack), "submit", "ping", "-p", "delay=-1", "--json")
    accepted = run_cli(url(stack), "submit", "ping", "--hypervisor", HV, "--json")

    assert (ok.code, failed.code, refused.code, accepted.code) == (0, 1, 2, 0)
    assert json.loads(ok.stdout)["state"] == "succeeded"
    assert json.loads(ok.stdout)["result"]["message"] == "pong"
    assert json.loads(failed.stdout)["error"]["status"] == 404
    problem = json.loads(refused.stdout)
    assert problem["status"] == 422
    assert [e["field"] for e in problem["errors"]] == ["params.delay"]
    assert json.loads(accepted.stdout)["kind"] == "ping"
    assert "running on" in ok.stderr  # the events went to stderr


def _state(api: ApiClient, job: dict[str, Any]) -> str:
    return str(api.job(job["id"])["state"])
