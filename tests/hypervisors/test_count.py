"""``vm.provision`` with ``count``: one parent job, N children spread by placement over the four
test-driver hypervisors, each served by its own worker; the parent's summary, its state when
some fail, its cancellation, and the all-or-nothing refusal when the N do not fit.

The tests share one fleet and run in order: the refusals first, on an empty fleet."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.hypervisors.conftest import Fleet


@pytest.fixture
def fleet(module_fleet: Fleet) -> Fleet:
    return module_fleet


def provision_body(pattern: str, count: int | None, **params: Any) -> dict[str, Any]:
    """A ``vm.provision`` of small VMs with an empty 1 GiB disk in pool ``default``."""
    body: dict[str, Any] = {
        "name": pattern,
        "memory_mib": 256,
        "disk": {"pool": "default", "size": "1G"},
        "graphics": "none",
        **params,
    }
    if count is not None:
        body["count"] = count
    return {"kind": "vm.provision", "params": body}


def children(fleet: Fleet, parent_id: str) -> list[dict[str, Any]]:
    page = fleet.user.request("GET", "/v1/jobs", params={"parent": parent_id, "limit": 500})
    assert page.status_code == 200, page.text
    return list(page.json()["items"])


def domains_on(fleet: Fleet) -> dict[str, set[str]]:
    """The domains each hypervisor's libvirt holds, as its worker's heartbeat reports them."""
    return {
        name: {d["name"] for d in (item["capacity"] or {}).get("domains") or []}
        for name, item in fleet.user.hypervisors().items()
    }


def test_a_count_that_does_not_fit_is_refused_whole_and_stores_and_claims_nothing(
    fleet: Fleet,
) -> None:
    # 4 GiB VMs: hv-a has room for one, hv-b for none, hv-c for three; the fifth fits nowhere.
    refused = fleet.user.post_job(provision_body("big-{index}", 6, memory_mib=4096))

    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["title"] == "No hypervisor fits"
    assert problem["detail"].startswith("VM 5 of 6 (big-5): no hypervisor fits")
    assert problem["detail"].endswith("; nothing was placed")
    assert "memory removed 3 (hv-a, hv-b, hv-c)" in problem["detail"]
    assert fleet.user.request("GET", "/v1/jobs").json()["items"] == []
    claims = {name: item["claims"]["memory_mib"] for name, item in fleet.user.hypervisors().items()}
    assert set(claims.values()) == {0}


def test_a_count_dry_run_shows_where_each_would_go_and_claims_nothing(fleet: Fleet) -> None:
    answer = fleet.user.post_job(provision_body("pre-{index}", 4), dry_run="true")

    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["dry_run"] is True
    assert list(preview["vms"]) == ["pre-1", "pre-2", "pre-3", "pre-4"]
    assert set(preview["vms"].values()) <= {"hv-a", "hv-b", "hv-c"}
    assert sum(preview["placement"]["per_host"].values()) == 4
    assert preview["placement"]["explanation"].startswith("placed 4: ")
    assert fleet.user.request("GET", "/v1/jobs").json()["items"] == []
    assert {item["claims"]["memory_mib"] for item in fleet.user.hypervisors().values()} == {0}


def test_bad_count_requests_name_the_field_and_store_nothing(fleet: Fleet) -> None:
    cases = [
        (provision_body("web", 3), "params.name", "must contain {index}"),
        (provision_body("web/{index}", 3), "params.name", "makes 'web/1' for index 1"),
        (provision_body("web-{index:c}", 3), "params.name", "at most a width"),
        (provision_body("web-{index}", 0), "params.count", "greater than or equal to 1"),
        (provision_body("web-{index}", 501), "params.count", "less than or equal to 500"),
        (provision_body("web-{index}", None), "params.name", "may only contain"),
    ]
    for body, field, message in cases:
        answer = fleet.user.post_job(body)
        assert answer.status_code == 422, (body, answer.text)
        errors = answer.json()["errors"]
        assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert fleet.user.request("GET", "/v1/jobs").json()["items"] == []


def test_a_retried_count_returns_the_first_request_even_when_it_took_the_last_room(
    fleet: Fleet,
) -> None:
    # A CI job whose connection dropped after the POST sends it again with the same key: the
    # fleet is full with the first request's own VMs, yet the retry is that request, not a 409.
    body = provision_body("full-{index}", 4, memory_mib=4096)
    key = {"Idempotency-Key": "retried-count"}
    first = fleet.user.request("POST", "/v1/jobs", json=body, headers=key)
    assert first.status_code == 202, first.text

    again = fleet.user.request("POST", "/v1/jobs", json=body, headers=key)

    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    claimed = {
        name: item["claims"]["memory_mib"] for name, item in fleet.user.hypervisors().items()
    }
    assert sum(claimed.values()) == 4 * 4096  # the first request's claims, nothing more
    done = fleet.user.wait_job(first.json()["id"])
    assert done["state"] == "succeeded", done["error"]
    for kid in children(fleet, done["id"]):  # the room goes back for the tests that follow
        for kind, params in (("domain.destroy", {}), ("domain.undefine", {"remove_storage": True})):
            body = {
                "kind": kind,
                "hypervisor": kid["hypervisor"],
                "params": {"name": kid["params"]["name"], **params},
            }
            ended = fleet.user.wait_job(fleet.user.post_job(body).json()["id"])
            assert ended["state"] == "succeeded", ended["error"]
    fleet.until(
        lambda: all(
            item["claims"]["memory_mib"] == 0
            and not any(
                d["name"].startswith("full-") for d in (item["capacity"] or {}).get("domains") or []
            )
            for item in fleet.user.hypervisors().values()
        ),
        "the removed VMs are gone and their room is given back",
        timeout=20,
    )


def test_count_twenty_lands_twenty_domains_that_libvirt_reports(fleet: Fleet) -> None:
    accepted = fleet.user.post_job(provision_body("web-{index:02d}", 20))
    assert accepted.status_code == 202, accepted.text
    parent = accepted.json()
    assert parent["hypervisor"] is None
    assert parent["children"]["count"] == 20
    assert parent["links"]["children"] == f"/v1/jobs?parent={parent['id']}"

    done = fleet.user.wait_job(parent["id"])

    assert done["state"] == "succeeded", done["error"]
    assert done["children"] == {
        "count": 20,
        "done": 20,
        "succeeded": 20,
        "failed": 0,
        "cancelled": 0,
        "lost": 0,
    }
    kids = children(fleet, parent["id"])
    names = {kid["params"]["name"] for kid in kids}
    assert names == {f"web-{i:02d}" for i in range(1, 21)}
    assert all(kid["state"] == "succeeded" and kid["parent_id"] == parent["id"] for kid in kids)
    spread = Counter(kid["hypervisor"] for kid in kids)
    # Spread: every hypervisor with pool "default" takes some; hv-d has no such pool.
    assert set(spread) == {"hv-a", "hv-b", "hv-c"}
    by_hypervisor = {
        hv: counts["succeeded"] for hv, counts in done["result"]["hypervisors"].items()
    }
    assert by_hypervisor == dict(spread)
    landed = fleet.until(
        lambda: (
            (found := domains_on(fleet))
            and all(
                {k["params"]["name"] for k in kids if k["hypervisor"] == hv} <= found[hv]
                for hv in spread
            )
            and found
        ),
        "every hypervisor's libvirt lists the VMs placed there",
    )
    assert sum(len(landed[hv] & names) for hv in landed) == 20
    # The parent's events name each VM as it ended, then the outcome.
    events = fleet.user.request("GET", f"/v1/jobs/{parent['id']}/events").json()["items"]
    ended = [e for e in events if e.get("data") and e["data"].get("name") in names]
    assert len(ended) == 20
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["message"] == "20 of 20 VMs succeeded"


def test_when_some_children_fail_the_parent_fails_and_names_them(fleet: Fleet) -> None:
    # dup-2 exists on hv-a with another size: provisioning it there again is a conflict.
    other = provision_body("dup-2", None, memory_mib=512)
    first = fleet.user.post_job({**other, "hypervisor": "hv-a"})
    assert fleet.user.wait_job(first.json()["id"])["state"] == "succeeded"

    accepted = fleet.user.post_job({**provision_body("dup-{index}", 3), "hypervisor": "hv-a"})
    assert accepted.status_code == 202, accepted.text
    done = fleet.user.wait_job(accepted.json()["id"])

    assert done["state"] == "failed"
    assert done["children"]["succeeded"] == 2
    assert done["children"]["failed"] == 1
    assert done["error"]["detail"] == "1 of 3 VMs did not succeed: dup-2 failed"
    assert done["result"]["hypervisors"] == {"hv-a": {"succeeded": 2, "failed": 1}}
    states = {kid["params"]["name"]: kid["state"] for kid in children(fleet, done["id"])}
    assert states == {"dup-1": "succeeded", "dup-2": "failed", "dup-3": "succeeded"}


def test_cancelling_the_parent_cancels_the_children_not_yet_done(fleet: Fleet) -> None:
    # Waiting for SSH on an address where nothing listens keeps the children going.
    body = provision_body("slow-{index}", 12, wait_for="ssh", wait_timeout=600)
    accepted = fleet.user.post_job(body)
    assert accepted.status_code == 202, accepted.text
    parent_id = accepted.json()["id"]
    fleet.until(
        lambda: any(kid["state"] == "running" for kid in children(fleet, parent_id)),
        "a child runs",
    )

    answer = fleet.user.request("POST", f"/v1/jobs/{parent_id}/cancel")

    assert answer.status_code == 202, answer.text
    assert answer.json()["cancel_requested"] is True
    done = fleet.user.wait_job(parent_id)
    assert done["state"] == "cancelled"
    assert done["children"]["succeeded"] == 0
    assert done["children"]["done"] == 12
    kids = children(fleet, parent_id)
    assert {kid["state"] for kid in kids} <= {"cancelled", "failed"}
    # Those that ran were stopped and removed what they made: once the heartbeats catch up,
    # no VM of the request is left on any hypervisor.
    fleet.until(
        lambda: (
            not any(
                name.startswith("slow-") for names in domains_on(fleet).values() for name in names
            )
        ),
        "no slow-* domain is left",
    )
    # And their room is given back: nothing stays claimed or counted as provisioning.
    fleet.until(
        lambda: all(
            item["claims"]["memory_mib"] == 0 and item["claims"]["provisioning"] == 0
            for item in fleet.user.hypervisors().values()
        ),
        "the cancelled children's claims are given back",
    )
    again = fleet.user.request("POST", f"/v1/jobs/{parent_id}/cancel")
    assert again.status_code == 409


def test_anti_affinity_puts_each_member_on_its_own_hypervisor_and_refuses_one_more(
    fleet: Fleet,
) -> None:
    group = {"group": {"name": "db", "policy": "anti-affinity"}}
    accepted = fleet.user.post_job({**provision_body("db-{index}", 3), "placement": group})
    assert accepted.status_code == 202, accepted.text
    done = fleet.user.wait_job(accepted.json()["id"])
    assert done["state"] == "succeeded", done["error"]
    hosts = sorted(kid["hypervisor"] for kid in children(fleet, done["id"]))
    # The three hypervisors with pool "default", one member each.
    assert hosts == ["hv-a", "hv-b", "hv-c"]
    fleet.until(
        lambda: all(
            {"db-1", "db-2", "db-3"} & names
            for hv, names in domains_on(fleet).items()
            if hv in hosts
        ),
        "the heartbeats report the members",
    )

    # Once the claims are gone the group is known from what libvirt reports: a fourth member
    # has nowhere to go, and the answer says which rule removed which hosts.
    refused = fleet.user.post_job({**provision_body("db-4", None), "placement": group})

    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert "anti-affinity group db removed 3 (hv-a, hv-b, hv-c)" in detail, detail
    assert not [
        j
        for j in fleet.user.request("GET", "/v1/jobs?limit=500").json()["items"]
        if j["params"].get("name") == "db-4"
    ]


def test_affinity_puts_every_member_beside_the_first(fleet: Fleet) -> None:
    group = {"group": {"name": "cache", "policy": "affinity"}}
    accepted = fleet.user.post_job({**provision_body("cache-{index}", 3), "placement": group})
    assert accepted.status_code == 202, accepted.text
    done = fleet.user.wait_job(accepted.json()["id"])

    assert done["state"] == "succeeded", done["error"]
    assert len({kid["hypervisor"] for kid in children(fleet, done["id"])}) == 1
