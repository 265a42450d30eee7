"""A domain is the token's whose job made it: another team's token may not start, stop,
destroy, undefine, define or provision it again (403, nothing runs, libvirt unchanged); an
``admin`` token may; a domain no job made (defined by hand) is left to ``admin``; once
undefined, its name is free for anyone."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from orchestrator.access.domain_owners import check_domain_owner
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.errors import Forbidden
from orchestrator.jobs import store as jobstore
from orchestrator.jobs.lifecycle import JobState
from tests.access.conftest import HV, SecuredStack

ACTIONS = ["domain.start", "domain.shutdown", "domain.destroy", "domain.reboot", "domain.suspend"]


@pytest.fixture(scope="module")
def owners(secured: SecuredStack) -> dict[str, str]:
    return secured.team_tokens("owner-a", "owner-b")


def define(name: str, network: str = "default", **extra: Any) -> dict[str, Any]:
    """A diskless domain booting from the network, on the test driver's network."""
    params = {
        "name": name,
        "memory_mib": 64,
        "vcpus": 1,
        "boot_source": "pxe",
        "networks": [{"source": network}],
        "graphics": {"type": "none"},
        **extra,
    }
    return {"kind": "domain.define", "hypervisor": HV, "params": params}


def act(kind: str, name: str, **params: Any) -> dict[str, Any]:
    return {"kind": kind, "hypervisor": HV, "params": {"name": name, **params}}


def run(secured: SecuredStack, token: str, body: dict[str, Any]) -> dict[str, Any]:
    posted = secured.call("POST", "/v1/jobs", token, json=body, params={"wait": 60})
    assert posted.status_code == 200, posted.text
    return posted.json()  # type: ignore[no-any-return]


def jobs_named(secured: SecuredStack, name: str) -> list[dict[str, Any]]:
    listed = secured.as_scope("admin", "GET", "/v1/jobs", params={"limit": 500}).json()["items"]
    return [job for job in listed if job["params"].get("name") == name]


def test_another_teams_token_can_neither_act_on_a_domain_nor_take_its_name(
    secured: SecuredStack, owners: dict[str, str]
) -> None:
    mine, theirs = owners["owner-a"], owners["owner-b"]
    made = run(secured, mine, define("vm-of-a", start=True))
    assert made["state"] == "succeeded", made["error"]
    before = secured.as_scope("admin", "GET", f"/v1/domains/{HV}/vm-of-a").json()

    for body in [
        *(act(kind, "vm-of-a") for kind in ACTIONS),
        act("domain.undefine", "vm-of-a", remove_storage=True),
        define("vm-of-a", start=True),  # the same name again: adopting it
    ]:
        refused = secured.call("POST", "/v1/jobs", theirs, json=body)
        assert refused.status_code == 403, (body["kind"], refused.text)
        problem = refused.json()
        assert problem["errors"][0]["field"] == "params.name"
        assert "domain 'vm-of-a' on hv1 was not made by token 'owner-b'" in problem["detail"]
        assert problem["required_scopes"] == ["admin"]

    # Nothing was stored or run, and libvirt holds the domain as it was.
    assert "owner-b" not in {job["submitter"] for job in jobs_named(secured, "vm-of-a")}
    after = secured.as_scope("admin", "GET", f"/v1/domains/{HV}/vm-of-a").json()
    assert after["state"] == before["state"] == "running"

    # Its owner may, and so may an admin token.
    assert run(secured, mine, act("domain.destroy", "vm-of-a"))["state"] == "succeeded"
    admin = secured.secret("admin")
    assert run(secured, admin, act("domain.start", "vm-of-a"))["state"] == "succeeded"
    undefined = run(secured, mine, act("domain.undefine", "vm-of-a", remove_storage=True))
    assert undefined["state"] == "failed"  # running: libvirt's rule, not ownership
    assert run(secured, mine, act("domain.destroy", "vm-of-a"))["state"] == "succeeded"
    gone = run(secured, mine, act("domain.undefine", "vm-of-a", remove_storage=True))
    assert gone["state"] == "succeeded", gone["error"]

    # Undefined, the name is free: the other team makes its own domain under it.
    again = run(secured, theirs, define("vm-of-a", start=False))
    assert again["state"] == "succeeded", again["error"]
    refused = secured.call("POST", "/v1/jobs", mine, json=act("domain.start", "vm-of-a"))
    assert refused.status_code == 403
    cleanup = run(secured, theirs, act("domain.undefine", "vm-of-a", remove_storage=True))
    assert cleanup["state"] == "succeeded"


def test_a_domain_no_job_made_is_left_to_admin(
    secured: SecuredStack, owners: dict[str, str]
) -> None:
    # The test driver's own domain "test" was defined outside this service.
    refused = secured.call(
        "POST", "/v1/jobs", owners["owner-a"], json=act("domain.suspend", "test")
    )
    assert refused.status_code == 403, refused.text
    assert "was made by no job of token 'owner-a'" in refused.json()["detail"]
    admin = secured.secret("admin")
    assert run(secured, admin, act("domain.suspend", "test"))["state"] == "succeeded"
    assert run(secured, admin, act("domain.resume", "test"))["state"] == "succeeded"


def test_a_failed_attempt_at_a_name_leaves_it_free(
    secured: SecuredStack, owners: dict[str, str]
) -> None:
    # A define that fails (its network does not exist) makes nothing: the name stays free.
    failed = run(secured, owners["owner-a"], define("vm-free", network="no-such-network"))
    assert failed["state"] == "failed"
    made = run(secured, owners["owner-b"], define("vm-free", start=False))
    assert made["state"] == "succeeded", made["error"]
    removed = run(secured, owners["owner-b"], act("domain.undefine", "vm-free"))
    assert removed["state"] == "succeeded"


def test_with_redis_gone_the_owner_check_goes_by_sql_and_still_refuses_another_token(
    database_url: str,
) -> None:
    sessions = make_sessionmaker(make_engine(database_url))
    made = jobstore.NewJob(
        "domain.define", {"name": "web-1"}, HV, "owner-a", placed=False, domain="web-1"
    )
    with sessions() as session:
        jobstore.create_job(session, made)  # pending in SQL: its live state is asked for

    def redis_gone(job_id: str) -> JobState | None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    with sessions() as session:
        check_domain_owner(session, redis_gone, "domain.start", HV, "web-1", "owner-a")
        with pytest.raises(Forbidden, match="was not made by token 'owner-b'"):
            check_domain_owner(session, redis_gone, "domain.start", HV, "web-1", "owner-b")
