"""Hostile JSON bodies over real HTTP: each is a 400 problem naming the rule it breaks, never a
500, and none of them stores a job, an inventory or a relaunch."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from api.requests import MAX_DEPTH, MAX_NUMBER_CHARS
from tests.support.services import RunningStack

PING = b'{"kind": "ping", "hypervisor": "hv-a", "params": '

# name: (body, rule, words the detail must hold)
HOSTILE: dict[str, tuple[bytes, str, tuple[str, ...]]] = {
    "a 5,000-digit integer": (PING + b'{"delay": ' + b"9" * 5000 + b"}}", "json.number", ("5000",)),
    "100,000 nested brackets": (b"[" * 100_000 + b"]" * 100_000, "json.depth", ("64",)),
    "100,000 unclosed brackets": (b'{"a": ' + b"[" * 100_000, "json.depth", ("64",)),
    "invalid UTF-8": (PING + b'{"message": "caf\xe9"}}', "json.utf8", ("0xe9",)),
    "UTF-16": ('{"kind": "ping"}'.encode("utf-16"), "json.utf8", ("UTF-8",)),
    "NaN": (PING + b'{"delay": NaN}}', "json.constant", ("NaN",)),
    "Infinity": (PING + b'{"delay": Infinity}}', "json.constant", ("Infinity",)),
    "-Infinity": (PING + b'{"delay": -Infinity}}', "json.constant", ("-Infinity",)),
    "a float past the double range": (PING + b'{"delay": 1e999}}', "json.number", ("1e999",)),
    "a repeated key": (
        b'{"kind": "ping", "kind": "volume.delete", "hypervisor": "hv-a"}',
        "json.duplicate-key",
        ("'kind'",),
    ),
    "a NUL in a string": (PING + b'{"message": "a\\u0000b"}}', "json.string", ("U+0000",)),
    "an unpaired surrogate": (PING + b'{"message": "\\udc00"}}', "json.string", ("U+DC00",)),
    "a truncated body": (PING + b'{"delay": 1', "json.syntax", ("line 1 column",)),
    "an empty body": (b"   ", "json.empty", ("empty",)),
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[RunningStack]:
    from tests.support.services import test_stack

    tmp = tmp_path_factory.mktemp("hostile")
    with test_stack(tmp, redis_server, {"hv-a": "test:///default"}) as running:
        yield running
        # Not one of the bodies reached the error handler of last resort.
        log = running.service("api").log_path.read_text(errors="replace")
        assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]


def send(stack: RunningStack, method: str, path: str, body: bytes) -> requests.Response:
    url = f"{stack.settings.resolved_api_url}{path}"
    headers = {"Content-Type": "application/json"}
    return requests.request(method, url, data=body, headers=headers, timeout=30)


def assert_refused(response: requests.Response, rule: str, words: tuple[str, ...]) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400 and problem["rule"] == rule
    assert all(word in problem["detail"] for word in words), problem["detail"]


def stored(stack: RunningStack) -> tuple[list[str], list[str]]:
    jobs = [job["id"] for job in stack.api.list_jobs({})]
    return jobs, [item["name"] for item in stack.api.get("/v1/inventories")["items"]]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_job_body_is_a_400_naming_the_rule_and_submits_nothing(
    stack: RunningStack, name: str
) -> None:
    body, rule, words = HOSTILE[name]
    before = stored(stack)
    assert_refused(send(stack, "POST", "/v1/jobs", body), rule, words)
    assert_refused(send(stack, "POST", "/v1/jobs?wait=5", body), rule, words)
    assert stored(stack) == before


@pytest.mark.parametrize("name", ["a 5,000-digit integer", "100,000 nested brackets", "NaN"])
def test_every_route_reading_a_json_body_applies_the_same_rules(
    stack: RunningStack, name: str
) -> None:
    body, rule, words = HOSTILE[name]
    before = stored(stack)
    assert_refused(send(stack, "PUT", "/v1/inventories/web", body), rule, words)
    # The body is read before the job is looked up: nothing about the job is revealed.
    assert_refused(send(stack, "POST", "/v1/jobs/no-such-job/relaunch", body), rule, words)
    assert stored(stack) == before


def nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_up_to_the_limit_parses_and_one_level_more_is_refused(
    stack: RunningStack,
) -> None:
    # The job body and "params" take two levels; the value holds the rest.
    before = stored(stack)
    fits = {"kind": "ping", "hypervisor": "hv-a", "params": {"extra": nested(MAX_DEPTH - 2)}}
    deeper = {"kind": "ping", "hypervisor": "hv-a", "params": {"extra": nested(MAX_DEPTH - 1)}}

    parsed = send(stack, "POST", "/v1/jobs", json.dumps(fits).encode())
    refused = send(stack, "POST", "/v1/jobs", json.dumps(deeper).encode())

    # Parsed, then refused by the parameter model for its unknown field: a 422, not a 400.
    assert parsed.status_code == 422 and parsed.json()["errors"][0]["field"] == "params.extra"
    assert_refused(refused, "json.depth", (str(MAX_DEPTH),))
    assert stored(stack) == before


def test_a_number_as_long_as_the_limit_parses_and_a_longer_one_is_refused(
    stack: RunningStack,
) -> None:
    before = stored(stack)
    longest = b"1" * MAX_NUMBER_CHARS
    parsed = send(stack, "POST", "/v1/jobs", PING + b'{"delay": ' + longest + b"}}")
    refused = send(stack, "POST", "/v1/jobs", PING + b'{"delay": ' + longest + b"1}}")

    assert parsed.status_code == 422  # read, then past the field's own bound of 3600
    assert parsed.json()["errors"][0]["field"] == "params.delay"
    assert_refused(refused, "json.number", (str(MAX_NUMBER_CHARS),))
    assert stored(stack) == before


def test_a_body_that_is_json_but_not_an_object_is_a_422_from_the_model(
    stack: RunningStack,
) -> None:
    # Well-formed JSON of the wrong shape is input breaking the model's rule, like any field.
    before = stored(stack)
    for body in (b"[1, 2]", b'"ping"', b"12", b"null"):
        response = send(stack, "POST", "/v1/jobs", body)
        assert response.status_code == 422, body
        assert response.json()["errors"] == [{"field": "", "message": "must be an object"}]
    assert stored(stack) == before


def test_text_the_rules_allow_goes_through_unchanged(stack: RunningStack) -> None:
    message = "café 😀 \u2028 \\ \u00a0 end"
    body = {"kind": "ping", "hypervisor": "hv-a", "params": {"message": message}}
    response = send(stack, "POST", "/v1/jobs?wait=30", json.dumps(body).encode())
    assert response.status_code == 200, response.text
    assert response.json()["result"]["message"] == message
