"""``/v1/hypervisors/<name>/pools`` and ``.../volumes``: storage as the hypervisor sees it now,
read through its worker. ``?wait=SECONDS`` (default 10, at most 60) bounds the wait for it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.live_reads import read_through_worker
from api.requests import float_arg
from orchestrator.errors import InvalidInput

bp = Blueprint("storage", __name__, url_prefix="/v1/hypervisors")

DEFAULT_WAIT_SECONDS = 10.0
MAX_WAIT_SECONDS = 60.0


@bp.get("/<name>/pools")
def pools(name: str) -> Response:
    """Storage pools with capacity, allocation and available bytes."""
    return _read("pool.list", name, {})


@bp.get("/<name>/pools/<pool>/volumes")
def pool_volumes(name: str, pool: str) -> Response:
    """The volumes of one pool."""
    return _read("volume.list", name, {"pool": pool})


@bp.get("/<name>/volumes")
def volumes(name: str) -> Response:
    """The volumes of the pool named by ``?pool=``."""
    pool = request.args.get("pool")
    if not pool:
        message = "is required: the pool whose volumes to list"
        raise InvalidInput(
            f"query parameter 'pool' {message}", errors=[{"field": "pool", "message": message}]
        )
    return _read("volume.list", name, {"pool": pool})


def _read(kind: str, hypervisor: str, params: dict[str, Any]) -> Response:
    wait = float_arg("wait", DEFAULT_WAIT_SECONDS, maximum=MAX_WAIT_SECONDS)
    return jsonify(read_through_worker(kind, hypervisor, params, timeout=wait))
