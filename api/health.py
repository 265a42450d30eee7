"""``/v1/health``: whether SQL and Redis answer."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.services import Services, services

bp = Blueprint("health", __name__, url_prefix="/v1")


@bp.get("/health")
def health() -> tuple[Response, int]:
    svc = services()
    checks = {"sql": _check(lambda: _sql_ping(svc)), "redis": _check(svc.live.redis.ping)}
    healthy = all(check["ok"] for check in checks.values())
    return jsonify({"status": "ok" if healthy else "degraded", "checks": checks}), (
        200 if healthy else 503
    )


def _sql_ping(svc: Services) -> None:
    with svc.sessions() as session:
        session.execute(text("SELECT 1"))


def _check(probe: Callable[[], object]) -> dict[str, object]:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 3)}
