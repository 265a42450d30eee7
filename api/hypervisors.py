"""``/v1/hypervisors``: what each worker's heartbeat says about its hypervisor."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.services import services
from orchestrator.errors import NotFound

bp = Blueprint("hypervisors", __name__, url_prefix="/v1/hypervisors")


@bp.get("")
def index() -> Response:
    return jsonify({"items": services().live.hypervisors()})


@bp.get("/<name>")
def show(name: str) -> Response:
    for hypervisor in services().live.hypervisors():
        if hypervisor["name"] == name:
            return jsonify(hypervisor)
    raise NotFound(f"no hypervisor {name!r} has ever reported")
