"""``/v1/inventories`` (store, version, read, preview a pattern) and
``POST /v1/jobs/<id>/relaunch`` (re-run a fleet job on its failed hosts). Also
:func:`admit_fleet_job`, which ``POST /v1/jobs`` calls for every request: a fleet job's
``inventory_name`` is resolved into inline text here."""

from __future__ import annotations

import re
from typing import Any, cast

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.audit import note_job
from api.auth import requires, submitter_name
from api.requests import idempotency_key, int_arg, json_body
from api.services import services
from orchestrator.access.scopes import FLEET_EXEC, INVENTORIES_WRITE, JOBS_READ
from orchestrator.errors import InvalidInput
from orchestrator.fleet.admission import FLEET_KINDS, resolve_stored_inventory
from orchestrator.fleet.inventories import (
    NewInventory,
    get_inventory,
    inventory_document,
    latest_inventories,
    store_inventory,
)
from orchestrator.fleet.inventory_rules import MAX_INVENTORY_CHARS, InventoryFormat
from orchestrator.fleet.relaunch import Which, relaunch_request
from orchestrator.inventory import (
    parse_inventory,
    registry_domains,
    select_hosts,
    with_builtin_groups,
)
from orchestrator.jobs.submission import JobRequest
from orchestrator.jobs.view import job_document
from orchestrator.kinds.fleet import INVENTORY_NAME
from orchestrator.kinds.registry import validation_errors

bp = Blueprint("fleet", __name__)


class InventoryBody(BaseModel):
    """The body of ``PUT /v1/inventories/<name>``."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_INVENTORY_CHARS, description="INI or YAML inventory.")
    format: InventoryFormat | None = Field(None, description="Detected when omitted.")


class RelaunchBody(BaseModel):
    """The (optional) body of ``POST /v1/jobs/<id>/relaunch``."""

    model_config = ConfigDict(extra="forbid")

    hosts: Which = Field("both", description="Which hosts of the earlier job to run again.")


def admit_fleet_job(job_request: JobRequest) -> JobRequest:
    """For fleet kinds: resolve ``inventory_name``. (An inline ``inventory`` is parsed by
    the kind's parameter model, through ``parse_api_inventory``: bounded as in
    ``put_inventory``.)"""
    if job_request.kind not in FLEET_KINDS:
        return job_request
    with services().sessions() as session:
        params = resolve_stored_inventory(session, job_request.params)
    return job_request.model_copy(update={"params": params})


@bp.put("/v1/inventories/<name>")
@requires(INVENTORIES_WRITE)
def put_inventory(name: str) -> tuple[Response, int, dict[str, str]]:
    """Store a new version of inventory ``name`` (it must parse and hold no passwords)."""
    body = _parse(InventoryBody, json_body())
    new = NewInventory(_checked_name(name), body.text, body.format, submitter_name())
    with services().sessions() as session:
        # Parsed here, in the request thread: the text is capped and reading it is bounded by
        # orchestrator.inventory.limits (no YAML aliases, capped ranges, hosts and groups), well
        # under a second for the largest text accepted. A cap broken is a 422 naming "text".
        row = store_inventory(session, new)
        doc = inventory_document(row, text=False)
    return jsonify(doc), 201, {"Location": doc["links"]["self"]}


@bp.get("/v1/inventories")
@requires(JOBS_READ)
def list_inventories() -> Response:
    with services().sessions() as session:
        rows = latest_inventories(session)
        return jsonify({"items": [inventory_document(row, text=False) for row in rows]})


@bp.get("/v1/inventories/<name>")
@requires(JOBS_READ)
def show_inventory(name: str) -> Response:
    """The latest version, or ``?version=N``."""
    with services().sessions() as session:
        row = get_inventory(session, _checked_name(name), _version())
        return jsonify(inventory_document(row))


@bp.get("/v1/inventories/<name>/hosts")
@requires(JOBS_READ)
def inventory_hosts(name: str) -> Response:
    """The hosts ``?pattern=`` (default ``all``) and ``?limit=`` select, as a fleet job would;
    ``?builtin_groups=true`` adds the registry's hypervisors as group ``hypervisors``."""
    pattern = request.args.get("pattern") or "all"
    limit = request.args.get("limit") or None
    builtin = _flag("builtin_groups")
    with services().sessions() as session:
        row = get_inventory(session, _checked_name(name), _version())
        text, fmt, version = row.text, row.format, row.version
    source = f"inventory {name} v{version}"
    # Bounded as in put_inventory; the pattern and limit are capped in length, their ~regex
    # parts run on RE2 (linear time) and their globs and regexes on at most a fixed number
    # of names (orchestrator.inventory.limits).
    inventory = parse_inventory(text, cast(InventoryFormat, fmt), source=source)
    if builtin:
        hypervisors = services().live.hypervisors()
        inventory = with_builtin_groups(inventory, hypervisors, registry_domains(hypervisors))
    selection = select_hosts(inventory, pattern, limit)
    return jsonify(
        {
            "name": name,
            "version": version,
            "pattern": pattern,
            "limit": limit,
            "builtin_groups": builtin,
            "hosts": list(selection.hosts),
            "warnings": [*inventory.warnings, *selection.warnings],
        }
    )


@bp.post("/v1/jobs/<job_id>/relaunch")
@requires(FLEET_EXEC)
def relaunch(job_id: str) -> tuple[Response, int, dict[str, str]]:
    """A new fleet job on the earlier job's failed and/or unreachable hosts."""
    raw = json_body() if request.get_data(cache=True).strip() else {}
    body = _parse(RelaunchBody, raw)
    key = idempotency_key()
    svc = services()
    with svc.sessions() as session:
        job_request = relaunch_request(session, svc.live, job_id, body.hosts)
    job, created = svc.submitter.submit(job_request, submitter_name(), key)
    note_job(job.id, job.kind)
    doc = job_document(job, svc.live.job(job.id))
    return jsonify(doc), 202 if created else 200, {"Location": f"/v1/jobs/{job.id}"}


def _parse(model: Any, raw: Any) -> Any:
    if not isinstance(raw, dict):
        raise InvalidInput(
            "the body must be a JSON object",
            errors=[{"field": "", "message": "must be an object"}],
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput("invalid request body", errors=validation_errors(exc)) from None


def _checked_name(name: str) -> str:
    if not re.match(INVENTORY_NAME, name):
        message = "must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit"
        raise InvalidInput(
            f"inventory name {name!r} {message}", errors=[{"field": "name", "message": message}]
        )
    return name


def _version() -> int | None:
    return int_arg("version", 0, minimum=1) if "version" in request.args else None


def _flag(name: str) -> bool:
    raw = request.args.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise InvalidInput(
            f"query parameter {name!r} must be true or false",
            errors=[{"field": name, "message": "must be true or false"}],
        )
    return raw == "true"
