"""``GET /v1/audit``, and the hook that keeps the audit trail: one row for every write
(POST, PUT, PATCH, DELETE) and every refusal (401, 403, 429), whatever answered it.

Registering this blueprint installs the hook on the whole app. A view that knows the job it
touched says so with :func:`note_job`. Rows are written in batches off the request's path
(:mod:`orchestrator.access.audit_writer`); ``GET /v1/audit`` writes this process's first.
"""

from __future__ import annotations

import json
import threading
import time

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.blueprints import BlueprintSetupState

from api.auth import actor_name, requires
from api.requests import int_arg
from api.services import services
from orchestrator.access import audit
from orchestrator.access.audit_writer import AuditWriter
from orchestrator.access.scopes import ADMIN

bp = Blueprint("audit", __name__, url_prefix="/v1")

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A caller over its rate limit gets a 429, one without a live token a 401, for every request it
# goes on sending; recording each would make a flood cost a SQL insert per request, the very
# load the limit sheds. One row per caller (token name or address) and route per window, per
# API process, says enough.
FLOODABLE = frozenset({401, 429})
RATE_LIMITED_WINDOW_SECONDS = 60.0
_last_rate_limited: dict[tuple[int, str, str | None, str], float] = {}
_rate_limited_lock = threading.Lock()


@bp.record_once
def _init_writer(state: BlueprintSetupState) -> None:
    sessions = state.app.extensions["orchestrator"].sessions
    state.app.extensions["audit"] = AuditWriter(sessions)


def writer() -> AuditWriter:
    found: AuditWriter = current_app.extensions["audit"]
    return found


@bp.get("/audit")
@requires(ADMIN)
def index() -> Response:
    """Audit entries, newest first; filters ``actor``, ``since``, ``outcome``; ``cursor``."""
    writer().flush()  # what this process was told of so far, even within the last batch
    since = request.args.get("since")
    with services().sessions() as session:
        rows, cursor = audit.list_entries(
            session,
            actor=request.args.get("actor") or None,
            since=audit.parse_since(since) if since else None,
            outcome=request.args.get("outcome") or None,
            cursor=request.args.get("cursor") or None,
            limit=int_arg("limit", 50, minimum=1, maximum=500),
        )
        items = [audit.entry_document(row) for row in rows]
    return jsonify({"items": items, "next_cursor": cursor})


def note_job(job_id: str | None, kind: str | None) -> None:
    """Name the job (and kind) the request submitted or touched, for its audit entry."""
    g.audit_job = (job_id, kind)


@bp.after_app_request
def _record(response: Response) -> Response:
    status = response.status_code
    if status in FLOODABLE and not _first_in_window(status):
        return response
    if request.method in WRITES or status in audit.REFUSED:
        writer().submit(_entry(response))
    return response


def _first_in_window(status: int) -> bool:
    """Whether this refusal is the caller's first of its kind on this route in the window."""
    route = request.url_rule.rule if request.url_rule else ""
    key = (status, actor_name(), request.remote_addr, route)
    now = time.monotonic()
    with _rate_limited_lock:
        if (
            now - _last_rate_limited.get(key, -RATE_LIMITED_WINDOW_SECONDS)
            < RATE_LIMITED_WINDOW_SECONDS
        ):
            return False
        if len(_last_rate_limited) > 10_000:  # many callers: forget the old windows
            _last_rate_limited.clear()
        _last_rate_limited[key] = now
        return True


def _entry(response: Response) -> audit.AuditRecord:
    job_id, kind = g.get("audit_job") or ((request.view_args or {}).get("job_id"), None)
    refused = response.status_code in audit.REFUSED
    return audit.AuditRecord(
        actor=actor_name(),
        method=request.method,
        route=request.url_rule.rule if request.url_rule else "",
        path=request.path,
        status=response.status_code,
        remote_addr=request.remote_addr,
        job_id=job_id,
        kind=kind,
        reason=_problem_detail(response) if refused else None,
    )


def _problem_detail(response: Response) -> str | None:
    if response.mimetype != "application/problem+json" or response.direct_passthrough:
        return None
    try:
        detail = json.loads(response.get_data()).get("detail")
    except (ValueError, AttributeError):
        return None
    return str(detail) if detail else None
