"""The list and a job's own read agree at every moment, though the list comes from SQL and SQL
trails the live state: sampled continuously while 500 jobs change state, and walked page by
page while they do."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.support import services
from tests.support.services import RunningStack

JOBS = 500


@pytest.fixture
def stack(tmp_path: Any, redis_server: str) -> Iterator[RunningStack]:
    # A CI fleet's worth of reads from one address: past the default rate limit.
    with services.test_stack(
        tmp_path, redis_server, {"hv1": "test:///default"}, rate_limit="100000/minute"
    ) as running:
        yield running


def walk(http: requests.Session, base: str, **filters: Any) -> list[dict[str, Any]]:
    """Every page of ``GET /v1/jobs`` with ``filters``, 50 at a time."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {**filters, "limit": 50, **({"cursor": cursor} if cursor else {})}
        page = http.get(f"{base}/v1/jobs", params=params, timeout=60).json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_list_and_get_agree_while_five_hundred_jobs_change_state(stack: RunningStack) -> None:
    base = stack.settings.resolved_api_url
    http = requests.Session()

    ids: list[str] = []

    def post(_: int) -> None:
        # Short waits: the jobs go on changing state while the reads below sample them.
        body = {"kind": "ping", "hypervisor": "hv1", "params": {"delay": 0.15}}
        answer = requests.post(f"{base}/v1/jobs", json=body, timeout=60)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])

    poster = ThreadPoolExecutor(4)
    posted = [poster.submit(post, n) for n in range(JOBS)]

    disagreements: list[str] = []
    walks = 0
    rng = random.Random(3)
    stop = threading.Event()

    def sample() -> None:
        # A job the GET reports succeeded is in the succeeded list from then on; a job the
        # succeeded list holds is succeeded for the GET (a final state never changes).
        nonlocal walks
        while not stop.is_set():
            if not ids:
                continue
            finished_before = {
                job_id
                for job_id in rng.sample(ids, min(20, len(ids)))
                if http.get(f"{base}/v1/jobs/{job_id}", timeout=60).json()["state"] == "succeeded"
            }
            listed = walk(http, base, state="succeeded")
            listed_ids = [item["id"] for item in listed]
            walks += 1
            if len(listed_ids) != len(set(listed_ids)):
                disagreements.append("a job was listed twice in one walk")
            missing = finished_before - set(listed_ids)
            if missing:
                disagreements.append(f"GET said succeeded, the list missed {sorted(missing)}")
            for job_id in rng.sample(listed_ids, min(5, len(listed_ids))):
                state = http.get(f"{base}/v1/jobs/{job_id}", timeout=60).json()["state"]
                if state != "succeeded":
                    disagreements.append(f"listed as succeeded, GET says {state}: {job_id}")
            if len(listed_ids) == JOBS:
                return

    sampler = threading.Thread(target=sample)
    sampler.start()
    for future in posted:
        future.result()
    poster.shutdown()
    sampler.join(timeout=240)
    stop.set()
    sampler.join()

    assert disagreements == []
    assert walks >= 5
    everything = walk(http, base)
    assert sorted(item["id"] for item in everything) == sorted(ids)
    assert {item["state"] for item in everything} == {"succeeded"}
