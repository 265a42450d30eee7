"""``/v1/kinds`` and ``/v1/openapi.json``: described from the same models that validate input."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from orchestrator.kinds import KINDS
from orchestrator.openapi import openapi_document

bp = Blueprint("meta", __name__, url_prefix="/v1")


@bp.get("/kinds")
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
def openapi() -> Response:
    return jsonify(openapi_document())
