"""Placement across four test-driver hypervisors, each served by its own worker: spread and
pack, the operator's states, a killed worker, concurrent requests, refusals that explain."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.hypervisors.conftest import NODES, Fleet, define_body


def test_the_registry_lists_every_hypervisor_with_capacity_state_and_claims(fleet: Fleet) -> None:
    listed = fleet.user.hypervisors()
    for name, node in NODES.items():
        item = listed[name]
        assert (item["state"], item["alive"]) == ("up", True)
        assert item["capacity"]["cpus"] == node.cpus
        assert item["capacity"]["memory_mib"] == node.memory_mib
        assert set(item["capacity"]["pools"]) == set(node.pools)
        assert item["claims"] == {"vcpus": 0, "memory_mib": 0, "disk_bytes": {}, "provisioning": 0}
    spare = listed["hv-spare"]
    assert (spare["state"], spare["alive"], spare["declared"]) == ("down", False, True)
    assert spare["labels"] == {"rack": "r9"}
    assert spare["libvirt_uri"] == "qemu+ssh://spare/system"


def test_changing_a_hypervisor_needs_the_hypervisors_admin_scope(fleet: Fleet) -> None:
    refused = fleet.user.patch("hv-a", {"state": "disabled"})
    assert refused.status_code == 403
    assert refused.json()["required_scopes"] == ["hypervisors:admin"]
    assert fleet.user.hypervisors()["hv-a"]["state"] == "up"

    for bad in ({}, {"state": "down"}, {"labels": {"bad key": "x"}}, {"colour": "red"}):
        assert fleet.operator.patch("hv-a", bad).status_code == 422, bad
    assert fleet.operator.patch("nosuch", {"state": "up"}).status_code == 404

    changed = fleet.operator.patch("hv-a", {"labels": {"zone": "z2", "rack": "r1"}})
    assert changed.status_code == 200
    assert changed.json()["labels"] == {"zone": "z2", "rack": "r1"}
    assert changed.json()["state"] == "up"
    # The one hypervisor in zone z2 takes the VM, though spread would prefer hv-c.
    placed = fleet.user.post_job(define_body("zoned", placement={"zone": "z2"}))
    assert placed.status_code == 202, placed.text
    assert placed.json()["hypervisor"] == "hv-a"
    done = fleet.user.wait_job(placed.json()["id"])
    assert done["state"] == "succeeded", done["error"]


def _domains(item: dict[str, Any]) -> set[str]:
    return {domain["name"] for domain in item["capacity"].get("domains") or []}


def _landed(fleet: Fleet, body: dict[str, Any]) -> dict[str, Any]:
    accepted = fleet.user.post_job(body)
    assert accepted.status_code == 202, accepted.text
    done = fleet.user.wait_job(accepted.json()["id"])
    assert done["state"] == "succeeded", done["error"]
    return done


def test_spread_takes_the_most_free_memory_and_pack_the_least_and_libvirt_shows_the_vm(
    fleet: Fleet,
) -> None:
    spread = _landed(fleet, define_body("spread-1"))
    packed = _landed(fleet, define_body("pack-1", placement={"strategy": "pack"}))
    # hv-d has the most room but no pool "default"; of the others hv-c has the most free
    # memory and hv-b the least.
    assert (spread["hypervisor"], packed["hypervisor"]) == ("hv-c", "hv-b")
    queued = [
        e
        for e in fleet.user.request("GET", f"/v1/jobs/{spread['id']}/events").json()["items"]
        if e["state"] == "queued"
    ]
    assert queued[0]["message"].startswith("placed on hv-c (spread): 5 hosts, 3 passed")
    assert "state removed 1 (down: hv-spare)" in queued[0]["message"]
    assert "pool removed 1 (hv-d)" in queued[0]["message"]

    # Once the heartbeat lists the new domain, its room counts as allocated, not claimed.
    listed = fleet.until(
        lambda: (
            (hvs := fleet.user.hypervisors())
            and "spread-1" in _domains(hvs["hv-c"])
            and hvs["hv-c"]["claims"]["memory_mib"] == 0
            and hvs
        ),
        "hv-c lists spread-1 and its claim is released",
    )
    assert listed["hv-c"]["allocated"]["memory_mib"] == 1024
    assert listed["hv-c"]["allocated"]["vcpus"] == 1
    fleet.until(lambda: "pack-1" in _domains(fleet.user.hypervisors()["hv-b"]), "hv-b lists pack-1")


def test_when_nothing_fits_the_409_names_each_filter_and_the_closest_host(fleet: Fleet) -> None:
    refused = fleet.user.post_job(define_body("huge", memory_mib=20000))
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["title"] == "No hypervisor fits"
    removed = {f["filter"]: f["removed"] for f in problem["placement"]["filters"]}
    assert removed == {
        "state": 1,
        "vcpus": 0,
        "memory": 3,
        "pool": 1,
        "disk": 0,
        "provisioning": 0,
    }
    # Every up hypervisor fails one filter; hv-c misses the least of what was asked.
    closest = problem["placement"]["closest"]
    assert closest["name"] == "hv-c"
    assert closest["lacks"] == [
        {"filter": "memory", "lack": "needs 4128 MiB more memory under ratio 1.0"}
    ]
    assert "state removed 1 (down: hv-spare)" in problem["detail"]
    assert "memory removed 3 (hv-a, hv-b, hv-c)" in problem["detail"]
    assert "pool removed 1 (hv-d)" in problem["detail"]
    assert fleet.user.request("GET", "/v1/jobs").json()["items"] == []


def test_a_dry_run_shows_the_decision_per_filter_and_claims_nothing(fleet: Fleet) -> None:
    answer = fleet.user.post_job(define_body("preview", memory_mib=4096), dry_run="true")
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["dry_run"] is True and preview["hypervisor"] == "hv-c"
    assert "<name>preview</name>" in preview["xml"]
    decision = preview["placement"]
    assert decision["chosen"] == "hv-c"
    assert [c["name"] for c in decision["candidates"]] == ["hv-c", "hv-a"]
    memory = next(f for f in decision["filters"] if f["filter"] == "memory")
    assert memory == {"filter": "memory", "removed": 1, "hosts": ["hv-b"]}
    assert all(item["claims"]["memory_mib"] == 0 for item in fleet.user.hypervisors().values())
    assert fleet.user.request("GET", "/v1/jobs").json()["items"] == []


def _hypervisors_of(fleet: Fleet, bodies: list[dict[str, Any]]) -> set[str]:
    return {_landed(fleet, body)["hypervisor"] for body in bodies}


def test_a_disabled_hypervisor_gets_nothing_and_a_draining_one_finishes_its_jobs(
    fleet: Fleet,
) -> None:
    assert fleet.operator.patch("hv-c", {"state": "disabled"}).json()["state"] == "disabled"
    # Spread would choose hv-c; it now goes to the next best, and work that needs no room
    # avoids hv-c too.
    assert _hypervisors_of(fleet, [define_body(f"off-{i}") for i in range(3)]) == {"hv-a"}
    pings = _hypervisors_of(fleet, [{"kind": "ping"} for _ in range(8)])
    assert "hv-c" not in pings and pings
    named = fleet.user.post_job({**define_body("named"), "hypervisor": "hv-c"})
    assert named.status_code == 409
    assert named.json()["state"] == "disabled" and "hv-c is disabled" in named.json()["detail"]

    slow = fleet.user.post_job({"kind": "ping", "params": {"delay": 3}, "hypervisor": "hv-a"})
    fleet.until(
        lambda: fleet.user.hypervisors()["hv-a"]["running_jobs"] == 1, "hv-a runs the slow ping"
    )
    assert fleet.operator.patch("hv-a", {"state": "draining"}).json()["state"] == "draining"
    refused = fleet.user.post_job({"kind": "ping", "hypervisor": "hv-a"})
    assert refused.status_code == 409 and refused.json()["state"] == "draining"
    assert _hypervisors_of(fleet, [define_body("elsewhere")]) == {"hv-b"}
    finished = fleet.user.wait_job(slow.json()["id"])
    assert (finished["state"], finished["hypervisor"]) == ("succeeded", "hv-a")
    assert fleet.user.hypervisors()["hv-a"]["state"] == "draining"

    assert fleet.operator.patch("hv-c", {"state": "up"}).json()["state"] == "up"
    assert _hypervisors_of(fleet, [define_body("back")]) == {"hv-c"}


def test_a_killed_workers_hypervisor_goes_down_stays_listed_and_gets_nothing_new(
    fleet: Fleet,
) -> None:
    fleet.stack.workers["hv-c"].kill()
    down = fleet.until(
        lambda: (item := fleet.user.hypervisors()["hv-c"])["state"] == "down" and item,
        "hv-c goes down",
    )
    assert down["alive"] is False and down["capacity"]["cpus"] == NODES["hv-c"].cpus
    assert _hypervisors_of(fleet, [define_body(f"after-{i}") for i in range(2)]) == {"hv-a"}
    named = fleet.user.post_job({**define_body("named"), "hypervisor": "hv-c"})
    assert named.status_code == 409 and named.json()["state"] == "down"


# VMs of 1 vCPU and 1024 MiB each host has room for: memory binds (free memory / 1024).
ROOM = {"hv-a": 7, "hv-b": 3, "hv-c": 15}


def _within_ratios(item: dict[str, Any]) -> bool:
    """What libvirt reports the hypervisor's domains hold stays within its ratios."""
    node = NODES[item["name"]]
    used = item["allocated"] or {"vcpus": 0, "memory_mib": 0}
    return used["vcpus"] <= node.cpus * 4.0 and used["memory_mib"] <= node.memory_mib - 512


def _settled(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """The hypervisors once every claim was given back (the heartbeats show the domains)."""
    return fleet.until(
        lambda: (
            (hvs := fleet.user.hypervisors())
            and all(hvs[name]["claims"]["memory_mib"] == 0 for name in ROOM)
            and hvs
        ),
        "every claim released once the heartbeats show the domains",
    )


def test_fifty_concurrent_requests_never_push_a_hypervisor_past_its_ratios(fleet: Fleet) -> None:
    bodies = [define_body(f"burst-{i:02d}") for i in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(fleet.user.post_job, bodies))
    accepted = [a.json() for a in answers if a.status_code == 202]
    refused = [a.json() for a in answers if a.status_code != 202]
    assert all(p["status"] == 409 and p["placement"]["placed"] is False for p in refused), refused
    assert 0 < len(accepted) <= sum(ROOM.values())
    for job in accepted:
        assert fleet.user.wait_job(job["id"])["state"] == "succeeded"
    settled = _settled(fleet)
    assert all(_within_ratios(settled[name]) for name in ROOM)
    assert sum(len(_domains(settled[name])) for name in ROOM) == len(accepted)

    # Filled up one request at a time, each host holds exactly the VMs its ratios allow. A
    # VM's room counts twice for a moment (listed by libvirt, its claim not yet given back):
    # a refusal is final once every claim was given back.
    for index in range(50, 200):
        answer = fleet.user.post_job(define_body(f"fill-{index}"))
        if answer.status_code != 202:
            _settled(fleet)
            answer = fleet.user.post_job(define_body(f"fill-{index}"))
            if answer.status_code != 202:
                break
        assert fleet.user.wait_job(answer.json()["id"])["state"] == "succeeded"
    assert answer.status_code == 409 and "memory removed 3" in answer.json()["detail"]
    listed = _settled(fleet)
    for name, room in ROOM.items():
        assert len(_domains(listed[name])) == room, name
        assert listed[name]["allocated"]["memory_mib"] == room * 1024
        assert _within_ratios(listed[name])
    assert _domains(listed["hv-d"]) == set()
