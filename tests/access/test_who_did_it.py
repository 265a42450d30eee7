"""Who did it: the submitter is the token's name (X-Submitter no longer counts), idempotency keys
belong to one token, only the submitter or an admin cancels, and the audit trail records every
write and refusal with its actor, readable over HTTP and with ``orchestrator audit``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from orchestrator.access.tokens import bootstrap_name
from orchestrator.client import ApiClient
from orchestrator.jobs.lifecycle import JobState
from tests.access.conftest import HV, SecuredStack, run_cli
from tests.support.services import RunningStack

SLOW_PING = {"kind": "ping", "hypervisor": HV, "params": {"delay": 120}}


@pytest.fixture(scope="module")
def teams(secured: SecuredStack) -> dict[str, str]:
    return secured.team_tokens("team-a", "team-b")


def audit(secured: SecuredStack, **filters: Any) -> list[dict[str, Any]]:
    response = secured.as_scope("admin", "GET", "/v1/audit", params=filters)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def test_the_submitter_is_the_token_name_whatever_x_submitter_says(
    secured: SecuredStack, teams: dict[str, str]
) -> None:
    posted = secured.call(
        "POST",
        "/v1/jobs",
        teams["team-a"],
        json={"kind": "ping", "hypervisor": HV},
        headers={"X-Submitter": "team-b"},
    )
    assert posted.status_code == 202
    job_id = posted.json()["id"]
    assert posted.json()["submitter"] == "team-a"
    assert secured.stack.wait_recorded(job_id, "succeeded").submitter == "team-a"
    bootstrap = secured.as_scope("jobs:submit", "POST", "/v1/jobs", json={"kind": "ping"})
    assert bootstrap.json()["submitter"] == secured.name("jobs:submit")
    assert secured.name("jobs:submit").startswith("env:")


def test_an_idempotency_key_belongs_to_one_token(
    secured: SecuredStack, teams: dict[str, str]
) -> None:
    def post(team: str) -> requests.Response:
        body = {"kind": "ping", "hypervisor": HV}
        key = {"Idempotency-Key": "deploy-42"}
        return secured.call("POST", "/v1/jobs", teams[team], json=body, headers=key)

    first_a, first_b, again_a = post("team-a"), post("team-b"), post("team-a")
    assert (first_a.status_code, first_b.status_code, again_a.status_code) == (202, 202, 200)
    assert first_a.json()["id"] != first_b.json()["id"]
    assert again_a.json()["id"] == first_a.json()["id"]


def test_only_the_submitter_or_an_admin_cancels(
    secured: SecuredStack, teams: dict[str, str]
) -> None:
    job_a = secured.call("POST", "/v1/jobs", teams["team-a"], json=SLOW_PING).json()["id"]
    job_b = secured.call("POST", "/v1/jobs", teams["team-b"], json=SLOW_PING).json()["id"]

    refused = secured.call("POST", f"/v1/jobs/{job_a}/cancel", teams["team-b"])
    assert refused.status_code == 403
    assert refused.json()["required_scopes"] == ["admin"]
    assert "team-a" in refused.json()["detail"]
    still = secured.as_scope("jobs:read", "GET", f"/v1/jobs/{job_a}").json()
    assert not JobState(still["state"]).is_terminal
    by_owner = secured.call("POST", f"/v1/jobs/{job_a}/cancel", teams["team-a"])
    by_admin = secured.as_scope("admin", "POST", f"/v1/jobs/{job_b}/cancel")
    assert by_owner.status_code in (200, 202) and by_admin.status_code in (200, 202)
    reader = ApiClient(secured.url, token=secured.secret("jobs:read"))
    for job_id in (job_a, job_b):  # the 120-second pings stop early: cancelled or answered
        assert JobState(reader.wait(job_id, timeout=60)["state"]).is_terminal


def test_a_fleet_job_needs_fleet_exec_and_a_hypervisor_job_jobs_submit(
    secured: SecuredStack,
) -> None:
    fleet = {"kind": "fleet.ping", "hypervisor": HV, "params": {}}
    refused = secured.as_scope("jobs:submit", "POST", "/v1/jobs", json=fleet)
    assert refused.status_code == 403 and refused.json()["required_scopes"] == ["fleet:exec"]
    let_through = secured.as_scope("fleet:exec", "POST", "/v1/jobs", json=fleet)
    assert let_through.status_code == 422  # in, and told what the fleet job lacks
    ping = secured.as_scope("fleet:exec", "POST", "/v1/jobs", json={"kind": "ping"})
    assert ping.status_code == 403 and ping.json()["required_scopes"] == ["jobs:submit"]
    refusals = audit(secured, actor=secured.name("jobs:submit"), outcome="refused")
    assert refusals[0]["kind"] == "fleet.ping" and refusals[0]["status"] == 403


def test_the_audit_trail_shows_writes_and_refusals_with_their_actor(
    secured: SecuredStack, teams: dict[str, str]
) -> None:
    started = datetime.now(UTC)  # the API's clock is this machine's
    job = secured.call("POST", "/v1/jobs", teams["team-b"], json={"kind": "ping", "hypervisor": HV})
    job_id = job.json()["id"]
    secured.call("GET", f"/v1/jobs/{job_id}", teams["team-b"])  # a read: not audited
    secured.call("POST", f"/v1/jobs/{job_id}/cancel", teams["team-a"])  # another's job: 403
    secured.call("GET", "/v1/jobs", "orch_forged")
    secured.as_scope("jobs:read", "PUT", "/v1/inventories/site", json={"text": "[web]\nw1\n"})

    since = started.isoformat()
    entries = audit(secured, since=since)
    seen = [(e["actor"], e["method"], e["route"], e["status"]) for e in reversed(entries)]
    assert seen == [
        ("team-b", "POST", "/v1/jobs", 202),
        ("team-a", "POST", "/v1/jobs/<job_id>/cancel", 403),
        ("anonymous", "GET", "/v1/jobs", 401),
        (secured.name("jobs:read"), "PUT", "/v1/inventories/<name>", 403),
    ]
    write, cancel, forged, inventory = reversed(entries)
    assert (write["job_id"], write["kind"], write["outcome"]) == (job_id, "ping", "ok")
    assert write["remote_addr"] == "127.0.0.1" and write["reason"] is None
    assert (cancel["job_id"], cancel["kind"], cancel["outcome"]) == (job_id, "ping", "refused")
    assert "admin" in cancel["reason"]
    assert forged["reason"] == "the bearer token is not known"
    assert (
        inventory["path"] == "/v1/inventories/site" and "inventories:write" in inventory["reason"]
    )

    assert [e["id"] for e in audit(secured, since=since, actor="team-a")] == [cancel["id"]]
    assert {e["outcome"] for e in audit(secured, since=since, outcome="refused")} == {"refused"}
    first = secured.as_scope("admin", "GET", "/v1/audit", params={"since": since, "limit": 3})
    rest = secured.as_scope(
        "admin", "GET", "/v1/audit", params={"cursor": first.json()["next_cursor"], "since": since}
    )
    paged = [e["id"] for e in first.json()["items"] + rest.json()["items"]]
    assert paged == [e["id"] for e in entries] and rest.json()["next_cursor"] is None

    shown = secured.cli("audit", "--actor", "team-a", "--since", "10m", "--json")
    assert shown.returncode == 0, shown.stderr
    assert cancel["id"] in [e["id"] for e in json.loads(shown.stdout)]


def test_bad_audit_filters_are_a_422(secured: SecuredStack) -> None:
    for query in ({"outcome": "maybe"}, {"since": "yesterday"}, {"cursor": "abc"}):
        response = secured.as_scope("admin", "GET", "/v1/audit", params=query)
        assert response.status_code == 422, query
        assert response.json()["errors"][0]["field"] == next(iter(query))


def test_health_tells_only_ok_to_a_caller_without_a_token(secured: SecuredStack) -> None:
    anonymous = secured.call("GET", "/v1/health")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    with_token = secured.as_scope("jobs:read", "GET", "/v1/health").json()
    assert with_token["status"] == "ok" and with_token["checks"]["sql"]["ok"] is True
    assert secured.call("GET", "/v1/openapi.json").status_code == 200


def test_without_tokens_nothing_is_asked_and_x_submitter_stays(make_stack: Any) -> None:
    stack: RunningStack = make_stack({})
    url = stack.settings.resolved_api_url
    posted = requests.post(
        f"{url}/v1/jobs", json={"kind": "ping"}, headers={"X-Submitter": "ci-7"}, timeout=30
    )
    assert posted.status_code == 202 and posted.json()["submitter"] == "ci-7"
    assert "checks" in requests.get(f"{url}/v1/health", timeout=30).json()
    # Writes are still audited, as anonymous: the claim in X-Submitter proves nothing.
    entries = audited_in_sql(stack, count=1)
    assert [(e["actor"], e["route"], e["status"]) for e in entries] == [
        ("anonymous", "/v1/jobs", 202)
    ]


def audited_in_sql(stack: RunningStack, count: int) -> list[dict[str, Any]]:
    """``orchestrator audit`` once it shows ``count`` entries: the API writes them in batches,
    a moment after it answers."""
    deadline = time.monotonic() + 60
    while True:
        shown = run_cli(stack, "audit", "--json")
        assert shown.returncode == 0, shown.stderr
        entries: list[dict[str, Any]] = json.loads(shown.stdout)
        if len(entries) >= count or time.monotonic() > deadline:
            return entries
        time.sleep(0.1)


def test_a_rate_limited_request_is_audited_as_refused(make_stack: Any) -> None:
    reader, admin = "reader-" + "r" * 20, "admin-" + "a" * 20
    stack: RunningStack = make_stack(
        {}, api_tokens={reader: ["jobs:read"], admin: ["admin"]}, rate_limit="2/minute"
    )
    url = stack.settings.resolved_api_url
    headers = {"Authorization": f"Bearer {reader}"}
    answers = [
        requests.get(f"{url}/v1/jobs", headers=headers, timeout=30).status_code for _ in range(6)
    ]
    assert answers == [200, 200, 429, 429, 429, 429]
    shown = requests.get(
        f"{url}/v1/audit",
        params={"outcome": "refused"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    entries = shown.json()["items"]
    # One row for the flood: each further 429 in the window would cost a SQL insert.
    assert [(e["actor"], e["route"], e["status"]) for e in entries] == [
        (bootstrap_name(reader), "/v1/jobs", 429)
    ]
    assert entries[0]["reason"]
