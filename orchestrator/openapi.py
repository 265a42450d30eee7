"""The OpenAPI 3.1 document, generated from the pydantic models the API validates with.

Each operation lists every status it can answer with; tests/pipeline/test_schemathesis.py
sends it generated requests and holds each answer to what is written here."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.submission import JobRequest
from orchestrator.kinds import KINDS

JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
_PROBLEM = {"$ref": "#/components/schemas/Problem"}
_JOB = {"$ref": "#/components/schemas/Job"}
# The routes api/limits.py never limits; every other one may answer 429.
_UNLIMITED = frozenset({"/v1/health", "/v1/openapi.json"})
_PATH_PARAMETER = re.compile(r"{([^}]+)}")


# (OpenAPI path, lower-case method, summary, scopes any one of which lets a caller in; None
# for a public route)
Route = tuple[str, str, str, tuple[str, ...] | None]


def openapi_document(
    routes: list[Route] = [],  # noqa: B006 - read only
    bodies: dict[str, type[BaseModel]] | None = None,
) -> dict[str, Any]:
    """The document; ``routes`` adds every served route the hand-written paths do not cover,
    ``bodies`` the request body models the API's own routes validate with, by component name."""
    job_request = JobRequest.model_json_schema()
    # Any other kind is refused (422): saying so lets a client, or a generator, pick a real one.
    job_request["properties"]["kind"]["enum"] = sorted(KINDS)
    schemas: dict[str, Any] = {
        "JobRequest": job_request,
        "Problem": _problem_schema(),
        "Job": _job_schema(),
    }
    models = {_params_name(kind.name): kind.params for kind in KINDS.values()}
    for name, model in {**models, **(bodies or {})}.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        # Nested models become components of their own, where the $refs point.
        for nested_name, nested in schema.pop("$defs", {}).items():
            if schemas.setdefault(nested_name, nested) != nested:
                raise ValueError(f"two different models are both called {nested_name}")
        schemas[name] = schema
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
        _declare_path_parameters(path, operation)
        responses = operation.setdefault("responses", {})
        if path not in _UNLIMITED:
            responses.update(_errors(429))
        if scopes is None:
            operation["security"] = []
        else:
            operation["security"] = [{"bearer": []}]
            operation["x-required-scopes"] = list(scopes)
            responses.update(_errors(401, 403))
    return paths


def _declare_path_parameters(path: str, operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    declared = {p["name"] for p in parameters if p["in"] == "path"}
    for name in _PATH_PARAMETER.findall(path):
        if name not in declared:
            parameters.append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )


def _params_name(kind: str) -> str:
    return "Params_" + kind.replace(".", "_").replace("-", "_")


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
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


def _job_schema() -> dict[str, Any]:
    text_or_null = {"type": ["string", "null"]}
    return {
        "type": "object",
        "description": "A job: what was asked, where it runs, how it stands.",
        "required": ["id", "kind", "params", "state", "attempt", "links"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "params": {"type": "object"},
            "hypervisor": text_or_null,
            "parent_id": text_or_null,
            "submitter": {"type": "string"},
            "idempotency_key": text_or_null,
            "on_worker_lost": {"enum": ["rerun", "fail"]},
            "state": {"enum": [state.value for state in JobState]},
            "attempt": {"type": "integer"},
            "worker": text_or_null,
            "created_at": text_or_null,
            "started_at": text_or_null,
            "finished_at": text_or_null,
            "result": {},
            "error": {"type": ["object", "null"]},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
            "children": {"type": "object", "additionalProperties": {"type": "integer"}},
        },
    }


def _errors(*codes: int) -> dict[str, Any]:
    return {
        str(code): {
            "description": "problem",
            "content": {PROBLEM_JSON: {"schema": _PROBLEM}},
        }
        for code in codes
    }


def _ok(schema: dict[str, Any], code: int = 200, description: str = "OK") -> dict[str, Any]:
    return {str(code): {"description": description, "content": {JSON: {"schema": schema}}}}


def _listing(*more: str) -> dict[str, Any]:
    """``{"items": [...]}`` and the keys ``more`` names."""
    properties: dict[str, Any] = {"items": {"type": "array", "items": {"type": "object"}}}
    properties.update({name: {} for name in more})
    return {"type": "object", "required": ["items", *more], "properties": properties}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _json_body(ref: str, required: bool = True) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"required": required, "content": {JSON: {"schema": schema}}}


_SECONDS = {"type": "number"}
_TEXT = {"type": "string"}
_INTEGER = {"type": "integer"}
_OBJECT = {"type": "object"}
# A read through a hypervisor's worker: no such hypervisor (404), the read's own refusal (404,
# 409, 422), its worker gone quiet (503) or too slow (504), a crash on the worker (502).
_WORKER_READ = _errors(404, 409, 422, 502, 503, 504)


def _paths() -> dict[str, Any]:
    return {**_job_paths(), **_hypervisor_paths(), **_fleet_paths(), **_other_paths()}


def _job_paths() -> dict[str, Any]:
    job_headers = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "description": "The same key (from the same submitter) again answers with the "
            "earlier job instead of making a new one.",
        },
        {
            "name": "X-Submitter",
            "in": "header",
            "schema": _TEXT,
            "description": "Who submits, without tokens; with tokens the token's "
            "name is the submitter and this header is ignored.",
        },
    ]
    return {
        "/v1/jobs": {
            "post": {
                "summary": "Submit a job",
                "parameters": [
                    *job_headers,
                    _query("wait", _SECONDS, "Seconds (at most 300) to wait for the job to end"),
                    _query("dry_run", {"enum": ["true", "false"]}, "Plan, submit nothing"),
                ],
                "requestBody": _json_body("JobRequest"),
                "responses": {
                    **_ok(_JOB, 202, "accepted; Location names the job"),
                    **_ok(
                        _OBJECT,
                        200,
                        "the earlier job with this Idempotency-Key, the job once ended "
                        "(?wait=), or the plan (?dry_run=true)",
                    ),
                    **_errors(400, 404, 409, 413, 422, 503),
                },
            },
            "get": {
                "summary": "List jobs, newest first",
                "parameters": [
                    _query("state", {"enum": [state.value for state in JobState]}),
                    *(_query(name, _TEXT) for name in ("kind", "hypervisor", "parent", "cursor")),
                    _query("limit", _INTEGER),
                ],
                "responses": {**_ok(_listing("next_cursor")), **_errors(422)},
            },
        },
        "/v1/jobs/{job_id}": {
            "get": {
                "summary": "One job; ?wait=SECONDS waits for it to finish",
                "parameters": [_query("wait", _SECONDS)],
                "responses": {**_ok(_JOB), **_errors(404, 422)},
            }
        },
        "/v1/jobs/{job_id}/events": {
            "get": {
                "summary": "The job's numbered events after ?after=N",
                "parameters": [
                    _query("after", _INTEGER),
                    _query("limit", _INTEGER),
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "schema": _TEXT,
                        "description": "A stream resumes after this event (its seq)",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "a page of events, or with Accept: text/event-stream "
                        "a stream of them",
                        "content": {
                            JSON: {"schema": _listing("last_seq")},
                            "text/event-stream": {"schema": _TEXT},
                        },
                    },
                    **_errors(404, 422),
                },
            }
        },
        "/v1/jobs/{job_id}/cancel": {
            "post": {
                "summary": "Cancel a job (a parent: its children not yet done)",
                "responses": {
                    **_ok(_JOB, 200, "withdrawn before it started"),
                    **_ok(_JOB, 202, "asked to stop; it is running"),
                    **_errors(404, 409),
                },
            }
        },
        "/v1/jobs/{job_id}/relaunch": {
            "post": {
                "summary": "A new fleet job on the earlier job's failed and/or unreachable hosts",
                "parameters": job_headers[:1],
                "requestBody": _json_body("RelaunchBody", required=False),
                "responses": {
                    **_ok(_JOB, 202, "accepted; Location names the new job"),
                    **_ok(_JOB, 200, "the earlier job with this Idempotency-Key"),
                    **_errors(400, 404, 409, 413, 422),
                },
            }
        },
    }


def _hypervisor_paths() -> dict[str, Any]:
    wait = _query("wait", _SECONDS, "Seconds (at most 60, default 10) to wait for the worker")
    # The job, or only its id and state while Redis has no more of it yet.
    upload_job = {"type": "object", "required": ["id", "state"]}
    return {
        "/v1/hypervisors": {
            "get": {"summary": "Hypervisors from heartbeats", "responses": _ok(_listing())}
        },
        "/v1/hypervisors/{name}": {
            "get": {
                "summary": "One hypervisor: state, labels, capacity, claims, heartbeat",
                "responses": {**_ok(_OBJECT), **_errors(404)},
            },
            "patch": {
                "summary": "Disable, drain or relabel a hypervisor",
                "requestBody": _json_body("HypervisorChange"),
                "responses": {**_ok(_OBJECT), **_errors(400, 404, 413, 422)},
            },
        },
        "/v1/hypervisors/{name}/pools": {
            "get": {
                "summary": "Storage pools with capacity, allocation and available bytes",
                "parameters": [wait],
                "responses": {**_ok(_OBJECT), **_WORKER_READ},
            }
        },
        "/v1/hypervisors/{name}/pools/{pool}/volumes": {
            "get": {
                "summary": "The volumes of one pool",
                "parameters": [wait],
                "responses": {**_ok(_OBJECT), **_WORKER_READ},
            }
        },
        "/v1/hypervisors/{name}/volumes": {
            "get": {
                "summary": "The volumes of the pool named by ?pool=",
                "parameters": [_query("pool", _TEXT), wait],
                "responses": {**_ok(_OBJECT), **_WORKER_READ},
            }
        },
        "/v1/hypervisors/{name}/pools/{pool}/volumes/{volume}/content": {
            "put": {
                "summary": "Import the request body as a volume",
                "parameters": [
                    _query("sha256", _TEXT, "The content's SHA-256, checked before anything"),
                    _query("format", {"enum": ["qcow2", "raw"]}),
                    _query("wait", _SECONDS, "Seconds (at most 300) to wait for the import"),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    **_ok(upload_job, 201, "made the volume"),
                    **_ok(upload_job, 200, "an identical volume was there"),
                    **_ok(upload_job, 202, "still importing; Location names the job"),
                    **_errors(404, 409, 413, 422, 502, 503, 504),
                },
            }
        },
    }


def _fleet_paths() -> dict[str, Any]:
    version = _query("version", _INTEGER, "A stored version; the latest without it")
    return {
        "/v1/inventories": {
            "get": {"summary": "The latest version of each inventory", "responses": _ok(_listing())}
        },
        "/v1/inventories/{name}": {
            "get": {
                "summary": "An inventory's latest version, or ?version=N",
                "parameters": [version],
                "responses": {**_ok(_OBJECT), **_errors(404, 422)},
            },
            "put": {
                "summary": "Store a new version of an inventory",
                "requestBody": _json_body("InventoryBody"),
                "responses": {
                    **_ok(_OBJECT, 201, "stored; Location names the version"),
                    **_errors(400, 409, 413, 422),
                },
            },
        },
        "/v1/inventories/{name}/hosts": {
            "get": {
                "summary": "The hosts ?pattern= and ?limit= select, as a fleet job would",
                "parameters": [
                    version,
                    _query("pattern", _TEXT),
                    _query("limit", _TEXT),
                    _query("builtin_groups", {"enum": ["true", "false"]}),
                ],
                "responses": {**_ok(_OBJECT), **_errors(404, 422)},
            }
        },
    }


def _other_paths() -> dict[str, Any]:
    return {
        "/v1/domains": {
            "get": {
                "summary": "Every domain of every live hypervisor",
                "responses": _ok(_listing("unavailable")),
            }
        },
        "/v1/domains/{hypervisor}/{name}": {
            "get": {"summary": "One domain", "responses": {**_ok(_OBJECT), **_WORKER_READ}}
        },
        "/v1/os-variants": {
            "get": {
                "summary": "The OS variants of the API host's osinfo-db; ?q= filters",
                "parameters": [_query("q", _TEXT)],
                "responses": _ok(_listing()),
            }
        },
        "/v1/audit": {
            "get": {
                "summary": "Audit entries, newest first",
                "parameters": [
                    _query("actor", _TEXT),
                    _query("since", _TEXT, "An ISO 8601 time or a duration back from now"),
                    _query("outcome", {"enum": ["ok", "refused", "failed"]}),
                    _query("cursor", _TEXT),
                    _query("limit", _INTEGER),
                ],
                "responses": {**_ok(_listing("next_cursor")), **_errors(422)},
            }
        },
        "/v1/health": {
            "get": {
                "summary": "SQL and Redis checks",
                "responses": {
                    **_ok(_OBJECT),
                    "503": {
                        "description": "a check failed",
                        "content": {JSON: {"schema": _OBJECT}},
                    },
                },
            }
        },
        "/v1/kinds": {
            "get": {"summary": "Job kinds and their parameters", "responses": _ok(_listing())}
        },
        "/v1/openapi.json": {"get": {"summary": "This document", "responses": _ok(_OBJECT)}},
        "/v1/docs": {
            "get": {
                "summary": "Interactive documentation of this API (Swagger UI)",
                "responses": {
                    "200": {"description": "OK", "content": {"text/html": {"schema": _TEXT}}}
                },
            }
        },
        "/v1/docs/{filename}": {
            "get": {
                "summary": "A static file of the documentation page",
                "responses": {"200": {"description": "OK"}, **_errors(404)},
            }
        },
    }
