"""``/v1/hypervisors``: what each worker's heartbeat says about its hypervisor."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.auth import requires
from api.services import services
from orchestrator.access.scopes import JOBS_READ
from orchestrator.errors import NotFound

bp = Blueprint("hypervisors", __name__, url_prefix="/v1/hypervisors")


@bp.get("")
@requires(JOBS_READ)
def index() -> Response:
    return jsonify({"items": services().live.hypervisors()})


@bp.get("/<name>")
@requires(JOBS_READ)
def show(name: str) -> Response:
    for hypervisor in services().live.hypervisors():
        if hypervisor["name"] == name:
            return jsonify(hypervisor)
    raise NotFound(f"no hypervisor {name!r} has ever reported")
