"""The OpenAPI 3.1 document, generated from the pydantic models the API validates with."""

from __future__ import annotations

from typing import Any

from orchestrator.jobs.submission import JobRequest
from orchestrator.kinds import KINDS

_PROBLEM = {"$ref": "#/components/schemas/Problem"}


# (OpenAPI path, lower-case method, summary, scopes any one of which lets a caller in; None
# for a public route)
Route = tuple[str, str, str, tuple[str, ...] | None]


def openapi_document(routes: list[Route] = []) -> dict[str, Any]:  # noqa: B006 - read only
    """The document; ``routes`` adds every served route the hand-written paths do not cover."""
    schemas: dict[str, Any] = {
        "JobRequest": JobRequest.model_json_schema(),
        "Problem": _problem_schema(),
    }
    for kind in KINDS.values():
        schema = kind.params.model_json_schema(ref_template="#/components/schemas/{model}")
        # Nested models become components of their own, where the $refs point.
        for name, nested in schema.pop("$defs", {}).items():
            if schemas.setdefault(name, nested) != nested:
                raise ValueError(f"two different models are both called {name}")
        schemas[_params_name(kind.name)] = schema
    return {
        "openapi": "3.1.0",
        "info": {"title": "KVM orchestrator", "version": "1"},
        "paths": _with_routes(_paths(), routes),
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `orchestrator tokens create` or ORCH_API_TOKENS; "
                    "needed on every route but the public ones once any token exists.",
                }
            },
        },
    }


def _with_routes(paths: dict[str, Any], routes: list[Route]) -> dict[str, Any]:
    for path, method, summary, scopes in routes:
        operation = {"summary": summary, "responses": {"200": {"description": "OK"}}}
        operation = paths.setdefault(path, {}).setdefault(method, operation)
        if scopes is None:
            operation["security"] = []
        else:
            operation["security"] = [{"bearer": []}]
            operation["x-required-scopes"] = list(scopes)
            operation.setdefault("responses", {}).update(_errors(401, 403))
    return paths


def _params_name(kind: str) -> str:
    return "Params_" + kind.replace(".", "_").replace("-", "_")


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "problem",
            "content": {"application/problem+json": {"schema": _PROBLEM}},
        }
        for code in codes
    }


def _paths() -> dict[str, Any]:
    ok = {"200": {"description": "OK"}}
    return {
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                    {
                        "name": "X-Submitter",
                        "in": "header",
                        "schema": {"type": "string"},
                        "description": "Who submits, without tokens; with tokens the token's "
                        "name is the submitter and this header is ignored.",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}}
                    },
                },
                "responses": {
                    "202": {"description": "accepted; Location names the job"},
                    "200": {"description": "the earlier job with this Idempotency-Key"},
                    **_errors(400, 413, 422),
                },
            },
            "get": {
                "summary": "List jobs, newest first",
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": "string"}}
                    for name in ("state", "kind", "hypervisor", "parent", "cursor")
                ]
                + [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                "responses": {**ok, **_errors(422)},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "One job; ?wait=SECONDS waits for it to finish",
                "parameters": [{"name": "wait", "in": "query", "schema": {"type": "number"}}],
                "responses": {**ok, **_errors(404, 422)},
            }
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "The job's numbered events after ?after=N",
                "responses": {**ok, **_errors(404, 422)},
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job (a parent: its children not yet done)",
                "responses": {**ok, **_errors(404, 409)},
            }
        },
        "/v1/hypervisors": {"get": {"summary": "Hypervisors from heartbeats", "responses": ok}},
        "/v1/health": {"get": {"summary": "SQL and Redis checks", "responses": ok}},
        "/v1/kinds": {"get": {"summary": "Job kinds and their parameters", "responses": ok}},
    }
