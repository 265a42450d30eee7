"""Flower names each task by its job: kind, target and hypervisor, not the one task every job
runs. Checked in a real Flower watching a real worker."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from orchestrator.jobs.titles import task_title
from orchestrator.local.processes import free_port
from tests.support import services

AUTH = ("ops", "correct-horse")


def flower_tasks(url: str) -> dict[str, Any]:
    # Flower answers its API only to an authenticated caller.
    answer = requests.get(f"{url}/api/tasks", auth=AUTH, timeout=10)
    answer.raise_for_status()
    tasks: dict[str, Any] = answer.json()
    return tasks


def test_flower_shows_each_task_as_its_jobs_kind_target_and_hypervisor(
    tmp_path: Path, redis_server: str
) -> None:
    port = free_port()
    with services.test_stack(
        tmp_path,
        redis_server,
        {"hv1": "test:///default"},
        flower_port=port,
        flower_basic_auth=":".join(AUTH),
        flower_url=f"http://127.0.0.1:{port}",
    ) as stack:
        flower = stack.stack.launch(stack.stack._flower())
        flower.wait_ready(60)
        url = stack.stack.flower_url
        # Workers send task events once Flower has switched them on: ping until it sees one.
        deadline = time.monotonic() + 60
        while (pinged := stack.run("ping", "hv1"))["id"] not in flower_tasks(url):
            assert time.monotonic() < deadline, "Flower never saw a task"
            time.sleep(0.5)
        # test:///default holds a running domain named "test": starting it is an ensure.
        defined = stack.run("domain.start", "hv1", name="test")
        assert (pinged["state"], defined["state"]) == ("succeeded", "succeeded")

        deadline = time.monotonic() + 60
        while not {pinged["id"], defined["id"]} <= set(tasks := flower_tasks(url)):
            assert time.monotonic() < deadline, f"Flower never saw the tasks: {tasks}"
            time.sleep(0.5)

        # Each job links to its task's page in Flower.
        link = stack.api.job(pinged["id"])["links"]["flower"]
        assert link == f"{url}/task/{pinged['id']}"
        page = requests.get(link, auth=AUTH, timeout=10)
        assert page.status_code == 200 and "ping @ hv1" in page.text

    assert tasks[pinged["id"]]["name"] == "ping @ hv1"
    assert tasks[defined["id"]]["name"] == "domain.start test @ hv1"


def test_titles_name_what_each_kind_acts_on() -> None:
    assert task_title("volume.create", "kvm1", {"pool": "default", "name": "a.qcow2"}) == (
        "volume.create default/a.qcow2 @ kvm1"
    )
    assert task_title("fleet.run", "kvm1", {"pattern": "web:&prod"}) == "fleet.run web:&prod @ kvm1"
    many = {"pool": "ci", "names": ["a", "b", "c"]}
    assert (
        task_title("volume.create_many", "kvm1", many) == "volume.create_many ci/3 volumes @ kvm1"
    )
    assert len(task_title("fleet.run", "kvm1", {"pattern": "h" * 500})) == 200
