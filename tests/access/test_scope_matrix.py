"""Every route of the URL map, times every scope, over real HTTP with tokens on: 401 without a
token, 403 with a token lacking the route's scope, let through with it. A route added later is
in the matrix without anyone touching this file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask

from api import create_app
from api.auth import AccessRule, declared_rule, requires
from orchestrator.access.scopes import ADMIN, ALL_SCOPES
from tests.access.conftest import SecuredStack

_ARGUMENT = re.compile(r"<(?:[^:>]+:)?[^>]+>")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    rule: AccessRule | None

    @property
    def path(self) -> str:
        # No such object anywhere: a request let through ends as a 404 or 422, never a change.
        return _ARGUMENT.sub("nosuch", self.pattern)

    def __str__(self) -> str:
        return f"{self.method} {self.pattern}"


def routes(app: Flask) -> Iterator[Route]:
    for url_rule in app.url_map.iter_rules():
        rule = declared_rule(app.view_functions[url_rule.endpoint])
        for method in sorted((url_rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield Route(method, url_rule.rule, rule)


@pytest.fixture(scope="module")
def app(secured: SecuredStack) -> Flask:
    return create_app(secured.stack.settings)


def test_every_route_declares_a_scope_or_that_it_is_public(app: Flask) -> None:
    undeclared = [str(route) for route in routes(app) if route.rule is None]
    assert undeclared == []
    public = sorted(route.pattern for route in routes(app) if route.rule and route.rule.public)
    assert public == ["/v1/docs", "/v1/docs/<filename>", "/v1/health", "/v1/openapi.json"]


def test_every_route_times_every_scope(app: Flask, secured: SecuredStack) -> None:
    failures: list[str] = []
    checked = 0
    for route in routes(app):
        assert route.rule is not None, f"{route} declares no scope"
        for token, expected in _expectations(route.rule):
            secret = secured.secret(token) if token in ALL_SCOPES else token
            response = secured.call(route.method, route.path, secret or None, json={})
            if not _as_expected(response.status_code, expected):
                failures.append(f"{route} as {token}: {response.status_code} {response.text[:200]}")
            elif expected == 403:
                _check_refusal_names_scopes(response.json(), route.rule, failures, str(route))
            checked += 1
    assert failures == []
    assert checked >= 20 * (len(ALL_SCOPES) + 2)  # the map is not unexpectedly empty


def test_a_refusal_is_a_problem_document_with_a_bearer_challenge(secured: SecuredStack) -> None:
    missing = secured.call("GET", "/v1/jobs")
    assert missing.status_code == 401
    assert missing.headers["Content-Type"] == "application/problem+json"
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="orchestrator"'
    assert missing.json()["instance"] == "/v1/jobs"
    forged = secured.call("GET", "/v1/jobs", "orch_forged")
    assert forged.status_code == 401 and "not known" in forged.json()["detail"]
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]
    lacking = secured.as_scope("jobs:read", "GET", "/v1/audit")
    assert lacking.status_code == 403
    assert lacking.headers["Content-Type"] == "application/problem+json"
    assert lacking.json()["detail"] == f"the bearer token {secured.name('jobs:read')!r} " + (
        "lacks scope 'admin'"
    )
    assert lacking.json()["required_scopes"] == ["admin"]


def test_an_unknown_path_is_a_401_before_it_is_a_404(secured: SecuredStack) -> None:
    assert secured.call("GET", "/v1/no-such-thing").status_code == 401
    assert secured.as_scope("jobs:read", "GET", "/v1/no-such-thing").status_code == 404


def test_a_route_declaring_nothing_is_refused_even_to_admin(secured: SecuredStack) -> None:
    app = create_app(secured.stack.settings)
    app.add_url_rule("/v1/forgotten", "forgotten", lambda: "reached")
    app.add_url_rule("/v1/declared", "declared", requires("jobs:read")(lambda: "reached"))
    client = app.test_client()
    admin = {"Authorization": f"Bearer {secured.secret(ADMIN)}"}
    refused = client.get("/v1/forgotten", headers=admin)
    assert refused.status_code == 403
    assert "declares no scope" in refused.json["detail"]
    assert client.get("/v1/declared", headers=admin).text == "reached"
    # Without tokens too: an undeclared route is a bug to catch on a developer's machine.
    open_app = create_app(secured.stack.settings, test_config={"API_TOKENS": {}})
    open_app.add_url_rule("/v1/forgotten", "forgotten", lambda: "reached")
    assert open_app.test_client().get("/v1/forgotten").status_code == 403


def _expectations(rule: AccessRule) -> list[tuple[str, int | None]]:
    """(scope or token, expected status): no token at all, a forged one, then one token per
    scope; a status of None means "let through", whatever the view then says."""
    if rule.public:
        return [("", None), ("orch_forged", None), *((scope, None) for scope in ALL_SCOPES)]
    granted = set(rule.scopes) | {ADMIN}
    return [
        ("", 401),
        ("orch_forged", 401),
        *((scope, None if scope in granted else 403) for scope in ALL_SCOPES),
    ]


def _as_expected(status: int, expected: int | None) -> bool:
    if expected is None:
        return status not in (401, 403) and status < 500
    return status == expected


def _check_refusal_names_scopes(
    problem: dict[str, object], rule: AccessRule, failures: list[str], route: str
) -> None:
    if problem.get("required_scopes") != list(rule.scopes):
        failures.append(f"{route}: 403 names {problem.get('required_scopes')}, not {rule.scopes}")


def test_the_openapi_document_says_what_each_route_needs(app: Flask, secured: SecuredStack) -> None:
    document = secured.call("GET", "/v1/openapi.json").json()  # public: no token
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    operations = {
        (path, method): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    assert operations[("/v1/health", "get")]["security"] == []
    assert operations[("/v1/audit", "get")]["x-required-scopes"] == [ADMIN]
    for (path, method), operation in operations.items():
        if operation["security"]:
            assert operation["security"] == [{"bearer": []}], (path, method)
            assert {"401", "403"} <= set(operation["responses"]), (path, method)
