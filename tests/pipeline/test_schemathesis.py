"""The API against its own OpenAPI document, over HTTP on a real stack: schemathesis generates
requests for every documented operation, valid and invalid, and each answer must be no server
error, a status the document lists, with the content type and the schema it gives for it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.access.scopes import ALL_SCOPES
from orchestrator.fleet.admission import FLEET_KINDS
from tests.support import services

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Fixed seed and bounded work: the same cases every run, whatever the machine's load.
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261203,
        "generation": {"max-examples": 20},
        "phases": {"stateful": {"enabled": False}},
    }
)


@dataclass(frozen=True)
class LiveApi:
    url: str
    token: str


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[LiveApi]:
    token = secrets.token_urlsafe(24)
    with services.test_stack(
        tmp_path_factory.mktemp("schemathesis"),
        redis_server,
        {"hv1": "test:///default"},
        api_tokens={token: list(ALL_SCOPES)},
        # The run sends over a thousand requests as one caller: the limit is not under test here.
        rate_limit="1000000/minute",
        # Whatever job a generated body happens to make valid stays inside the test's directory.
        pool_roots=[],
        read_roots=[],
    ) as stack:
        yield LiveApi(stack.settings.resolved_api_url, token)


@pytest.fixture
def api_schema(live_api: LiveApi) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_api.url}/v1/openapi.json", config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_document_says(
    case: schemathesis.Case, live_api: LiveApi
) -> None:
    if _reaches_beyond_loopback(case):
        return
    case.call_and_validate(
        base_url=live_api.url,
        headers={"Authorization": f"Bearer {live_api.token}"},
        checks=CHECKS,
        timeout=60,
    )


def _reaches_beyond_loopback(case: schemathesis.Case) -> bool:
    """A fleet job the generator made valid would open SSH connections to whatever addresses
    its inventory names; tests talk to loopback only."""
    kind = case.body.get("kind") if isinstance(case.body, dict) else None
    return case.method == "POST" and case.path == "/v1/jobs" and str(kind) in FLEET_KINDS
