"""Every error as an RFC 9457 problem document (``application/problem+json``)."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from orchestrator.errors import OrchestratorError, Unavailable

log = logging.getLogger(__name__)


def problem_response(problem: dict[str, Any]) -> Response:
    body = {**problem, "instance": request.path}
    return Response(json.dumps(body), status=problem["status"], mimetype="application/problem+json")


def init_app(app: Flask) -> None:
    app.register_error_handler(OrchestratorError, _orchestrator_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _orchestrator_error(exc: OrchestratorError) -> Response:
    return problem_response(exc.to_problem())


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = exc.description or ""
    if status == 413:
        limit = request.max_content_length
        detail = f"the request body is larger than the limit of {limit} bytes"
    return problem_response(
        {"type": "about:blank", "title": exc.name, "status": status, "detail": detail}
    )


def _unexpected(exc: Exception) -> Response:
    if _is_outage(exc):
        return problem_response(
            Unavailable(f"a backing service is unreachable: {exc}").to_problem()
        )
    log.exception("unhandled error on %s", request.path)
    return problem_response(
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": f"{type(exc).__name__}: see the API log",
        }
    )


def _is_outage(exc: Exception) -> bool:
    import redis
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, redis.ConnectionError | OperationalError)
