"""``/v1/health``: whether SQL and Redis answer. Public; with tokens on, a caller without a live
token learns only ok or not, never what failed."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.auth import current_principal, public, tokens_on
from api.services import Services, services

bp = Blueprint("health", __name__, url_prefix="/v1")


@bp.get("/health")
@public
def health() -> tuple[Response, int]:
    svc = services()
    checks = {"sql": _check(lambda: _sql_ping(svc)), "redis": _check(svc.live.redis.ping)}
    healthy = all(check["ok"] for check in checks.values())
    document: dict[str, object] = {"status": "ok" if healthy else "degraded"}
    if _may_see_details():
        document["checks"] = checks
    return jsonify(document), 200 if healthy else 503


def _may_see_details() -> bool:
    # An outage's text names hosts and ports: only a token holder, or anyone when tokens are
    # off. Not knowing whether they are on (SQL down) counts as on.
    try:
        return not tokens_on() or current_principal() is not None
    except SQLAlchemyError:
        return False


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
