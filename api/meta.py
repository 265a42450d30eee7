"""``/v1/kinds`` and ``/v1/openapi.json``: described from the same models that validate input."""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify
from pydantic import BaseModel

from api.auth import declared_rule, public, requires
from api.fleet import InventoryBody, RelaunchBody
from api.hypervisors import HypervisorChange
from orchestrator.access.scopes import JOBS_READ
from orchestrator.kinds import KINDS
from orchestrator.openapi import Route, openapi_document

bp = Blueprint("meta", __name__, url_prefix="/v1")


@bp.get("/kinds")
@requires(JOBS_READ)
def kinds() -> Response:
    items = [
        {
            "name": kind.name,
            "summary": kind.summary,
            "safe_to_rerun": kind.safe_to_rerun,
            "params": kind.params.model_json_schema(),
        }
        for kind in sorted(KINDS.values(), key=lambda k: k.name)
    ]
    return jsonify({"items": items})


@bp.get("/openapi.json")
@public
def openapi() -> Response:
    bodies: dict[str, type[BaseModel]] = {
        "HypervisorChange": HypervisorChange,
        "InventoryBody": InventoryBody,
        "RelaunchBody": RelaunchBody,
    }
    return jsonify(openapi_document(_served_routes(), bodies))


def _served_routes() -> list[Route]:
    routes = []
    for rule in current_app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        view = current_app.view_functions[rule.endpoint]
        doc = (view.__doc__ or rule.endpoint).strip()
        access = declared_rule(view)
        # An undeclared route is refused to everyone (deny by default): no scope lets one in.
        scopes = None if access is not None and access.public else (access.scopes if access else ())
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((path, method.lower(), doc.splitlines()[0], scopes))
    return routes
