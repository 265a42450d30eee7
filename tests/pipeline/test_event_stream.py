"""A job's events as Server-Sent Events over real HTTP, with a real worker: followed to the end,
resumed after connections dropped at random points with nothing lost or repeated, and the same
events as the JSON view."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.hypervisors.conftest import Node
from tests.support import services
from tests.support.services import RunningStack

STREAM = {"Accept": "text/event-stream"}
NODE = Node(cpus=8, memory_mib=16384, pools={"default": 100})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("stream")
    node = tmp / "hv1.xml"
    node.write_text(NODE.xml("hv1", (tmp / "var" / "pools").resolve()))
    with services.test_stack(tmp, redis_server, {"hv1": f"test://{node}"}) as running:
        yield running


def frames(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The stream's frames as dicts (``id``, ``event``, ``data``; ``comment`` for comments)."""
    frame: dict[str, Any] = {}
    for raw in response.iter_lines(decode_unicode=True):
        if raw == "":
            if frame:
                yield frame
            frame = {}
        elif raw.startswith(":"):
            yield {"comment": raw[1:].strip()}
        else:
            name, _, value = raw.partition(":")
            frame[name] = value.removeprefix(" ")


def open_stream(stack: RunningStack, job_id: str, last_id: int | None) -> requests.Response:
    headers = dict(STREAM)
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    url = f"{stack.settings.resolved_api_url}/v1/jobs/{job_id}/events"
    response = requests.get(url, headers=headers, stream=True, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


def json_view(stack: RunningStack, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.api.get(f"/v1/jobs/{job_id}/events")["items"]
    return items


def test_a_stream_follows_a_job_to_its_end_with_the_json_views_events(
    stack: RunningStack,
) -> None:
    job = stack.submit("ping", "hv1", delay=1)
    events, end = [], None
    with open_stream(stack, job["id"], None) as response:
        for frame in frames(response):
            if frame.get("event") == "job-event":
                event = json.loads(frame["data"])
                assert int(frame["id"]) == event["seq"]
                events.append(event)
            elif frame.get("event") == "end":
                end = json.loads(frame["data"])
                break

    assert end is not None and end["state"] == "succeeded"
    assert [e["state"] for e in events if e["state"]] == ["queued", "running", "succeeded"]
    assert events == json_view(stack, job["id"])


def test_resuming_after_drops_at_random_points_loses_and_repeats_nothing(
    stack: RunningStack,
) -> None:
    # A count request's parent gets an event per VM as it ends: many events, spread in time.
    job = stack.submit(
        "vm.provision",
        None,
        count=8,
        name="sse-{index:02d}",
        memory_mib=64,
        disk={"pool": "default", "size": "1M"},
        graphics="none",
    )
    rng = random.Random(7)
    seen: list[int] = []
    last_id: int | None = None
    ended = False
    connections = 0
    while not ended:
        connections += 1
        assert connections < 100, "the stream never ended"
        drop_after = rng.randint(1, 4)
        with open_stream(stack, job["id"], last_id) as response:
            for frame in frames(response):
                if frame.get("event") == "end":
                    ended = True
                    assert json.loads(frame["data"])["state"] == "succeeded"
                    break
                if frame.get("event") == "job-event":
                    last_id = int(frame["id"])
                    seen.append(last_id)
                    drop_after -= 1
                    if drop_after == 0:
                        break  # the connection drops here; the client resumes after last_id

    assert connections > 2
    assert seen == list(range(1, len(seen) + 1))
    assert seen == [e["seq"] for e in json_view(stack, job["id"])]


def test_a_stream_of_a_finished_job_sends_its_events_then_ends(stack: RunningStack) -> None:
    done = stack.run("ping", "hv1")
    with open_stream(stack, done["id"], 2) as response:
        received = [f for f in frames(response) if "event" in f]

    assert [f["event"] for f in received][-1] == "end"
    assert [int(f["id"]) for f in received[:-1]] == [
        e["seq"] for e in json_view(stack, done["id"]) if e["seq"] > 2
    ]


def test_a_bad_last_event_id_is_a_422_naming_it(stack: RunningStack) -> None:
    done = stack.run("ping", "hv1")
    url = f"{stack.settings.resolved_api_url}/v1/jobs/{done['id']}/events"
    answer = requests.get(url, headers={**STREAM, "Last-Event-ID": "x"}, timeout=30)

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "Last-Event-ID"
    missing = requests.get(url.replace(done["id"], "nosuch"), headers=STREAM, timeout=30)
    assert missing.status_code == 404
