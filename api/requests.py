"""Reading request input at the edge: JSON bodies and query parameters, with precise errors."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest

from orchestrator.errors import InvalidInput


class MalformedJSON(BadRequest):
    pass


def json_body() -> Any:
    """The body parsed as JSON; malformed JSON is a 400 saying where it broke."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH this raises 413
    if not raw.strip():
        raise MalformedJSON("the request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"the request body is not valid JSON: {exc}") from None


def int_arg(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_arg(name, "must be an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise _bad_arg(name, f"must be {bound}")
    return value


def float_arg(name: str, default: float, *, maximum: float) -> float:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise _bad_arg(name, "must be a number of seconds") from None
    if not 0 <= value <= maximum:
        raise _bad_arg(name, f"must be between 0 and {maximum:g}")
    return value


def _bad_arg(name: str, message: str) -> InvalidInput:
    return InvalidInput(
        f"query parameter {name!r} {message}", errors=[{"field": name, "message": message}]
    )
