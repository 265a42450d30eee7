"""Bad input gets an RFC 9457 problem with the right status, and stores nothing."""

from __future__ import annotations

import json
import re

import pytest
import requests

from orchestrator.kinds import KINDS
from tests.support.services import RunningStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str):  # type: ignore[no-untyped-def]
    from tests.support.services import test_stack

    with test_stack(tmp_path_factory.mktemp("api"), redis_server, {"hv-a": "test:///default"}) as s:
        yield s


def post(stack: RunningStack, data: bytes | str, **headers: str) -> requests.Response:
    url = f"{stack.settings.resolved_api_url}/v1/jobs"
    return requests.post(url, data=data, headers={"Content-Type": "application/json", **headers})


def assert_problem(response: requests.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem  # type: ignore[no-any-return]


def assert_nothing_stored(stack: RunningStack) -> None:
    assert stack.api.list_jobs({}) == []


def test_malformed_json_is_a_400_saying_where(stack: RunningStack) -> None:
    problem = assert_problem(post(stack, '{"kind": "ping",'), 400)
    assert "line 1 column" in problem["detail"]
    assert_nothing_stored(stack)


def test_an_unknown_kind_is_a_422_naming_the_known_kinds(stack: RunningStack) -> None:
    problem = assert_problem(post(stack, '{"kind": "reboot-everything"}'), 422)
    assert "ping" in problem["detail"] and "hypervisor.facts" in problem["detail"]
    assert problem["errors"][0]["field"] == "kind"
    assert_nothing_stored(stack)


def test_bad_parameters_are_a_422_naming_each_field(stack: RunningStack) -> None:
    body = '{"kind": "ping", "params": {"delay": -1, "colour": "red"}}'
    problem = assert_problem(post(stack, body), 422)
    fields = {error["field"] for error in problem["errors"]}
    assert fields == {"params.delay", "params.colour"}
    assert_nothing_stored(stack)


def test_a_body_that_is_not_an_object_is_a_422(stack: RunningStack) -> None:
    assert_problem(post(stack, "[1, 2]"), 422)
    assert_nothing_stored(stack)


def test_an_unknown_hypervisor_is_a_422(stack: RunningStack) -> None:
    problem = assert_problem(post(stack, '{"kind": "ping", "hypervisor": "nowhere"}'), 422)
    assert "hv-a" in problem["detail"]
    assert_nothing_stored(stack)


def test_rerun_is_refused_for_a_kind_not_safe_to_rerun_and_a_bad_value_named(
    stack: RunningStack,
) -> None:
    problem = assert_problem(post(stack, '{"kind": "ping", "on_worker_lost": "maybe"}'), 422)
    assert problem["errors"][0]["field"] == "on_worker_lost"


def test_a_body_over_one_mib_is_a_413(stack: RunningStack) -> None:
    body = '{"kind": "ping", "params": {"message": "' + "a" * (1024 * 1024) + '"}}'
    problem = assert_problem(post(stack, body), 413)
    assert "1048576" in problem["detail"]
    assert_nothing_stored(stack)


def test_an_unknown_job_is_a_404(stack: RunningStack) -> None:
    response = requests.get(f"{stack.settings.resolved_api_url}/v1/jobs/does-not-exist")
    assert assert_problem(response, 404)["instance"] == "/v1/jobs/does-not-exist"


def test_bad_query_parameters_are_a_422(stack: RunningStack) -> None:
    base = stack.settings.resolved_api_url
    assert_problem(requests.get(f"{base}/v1/jobs", params={"limit": "lots"}), 422)
    assert_problem(requests.get(f"{base}/v1/jobs", params={"state": "sleeping"}), 422)
    assert_problem(requests.get(f"{base}/v1/jobs", params={"cursor": "%%%"}), 422)


def test_the_openapi_document_describes_every_kind(stack: RunningStack) -> None:
    document = stack.api.get("/v1/openapi.json")
    assert "/v1/jobs" in document["paths"]
    schemas = document["components"]["schemas"]
    described = {}
    for kind in KINDS.values():
        schema = schemas.get("Params_" + kind.name.replace(".", "_").replace("-", "_"))
        assert schema is not None, f"no parameter schema for {kind.name}"
        fields = kind.params.model_fields
        described[kind.name] = (set(schema.get("properties", {})), set(schema.get("required", ())))
        assert described[kind.name] == (
            {f.alias or name for name, f in fields.items()},
            {f.alias or name for name, f in fields.items() if f.is_required()},
        ), kind.name
    assert len(described) == len(KINDS) >= 25
    listed = stack.api.get("/v1/kinds")["items"]
    assert [k["name"] for k in listed] == sorted(KINDS)


def test_every_reference_in_the_openapi_document_resolves(stack: RunningStack) -> None:
    document = stack.api.get("/v1/openapi.json")
    schemas = document["components"]["schemas"]
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)))
    prefix = "#/components/schemas/"
    assert all(ref.startswith(prefix) for ref in refs), refs
    assert sorted(r for r in refs if r.removeprefix(prefix) not in schemas) == []
