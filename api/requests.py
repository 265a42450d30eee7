"""Reading request input at the edge: JSON bodies and query parameters, with precise errors.

A body is JSON only as RFC 8259 has it, within limits that keep hostile input from costing
more than a 400: strict UTF-8; no ``NaN`` or ``Infinity`` (Python's parser takes them); number
literals of at most ``MAX_NUMBER_CHARS`` characters, finite; containers nested at most
``MAX_DEPTH`` deep; strings without NUL or unpaired surrogates (PostgreSQL text and UTF-8 stores
cannot hold them); and no key twice in one object. RFC 8259 leaves the meaning of a repeated key
to each parser (Python keeps the last, others the first), so a proxy, an audit reader and this
API could each see a different request in the same bytes: a repeated key is refused, not merged.
Each refusal is a 400 problem whose ``rule`` names the rule broken.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NoReturn

from flask import request

from orchestrator.errors import InvalidInput, OrchestratorError

MAX_DEPTH = 64
MAX_NUMBER_CHARS = 40
_FORBIDDEN_IN_STRINGS = re.compile("[\x00\ud800-\udfff]")


class MalformedBody(OrchestratorError):
    """Raised when a request body is not JSON this API accepts; ``rule`` names the rule broken."""

    status = 400
    title = "Malformed request body"

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail, rule=rule)


def json_body() -> Any:
    """The body parsed as JSON; a body breaking a rule of :func:`parse_json` is a 400."""
    raw = request.get_data(cache=True)  # over MAX_CONTENT_LENGTH this raises 413
    if not raw.strip():
        raise MalformedBody("json.empty", "the request body is empty; send a JSON object")
    return parse_json(raw)


def parse_json(raw: bytes) -> Any:
    """``raw`` parsed under the rules in this module's docstring; MalformedBody naming the rule."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(
            "json.utf8",
            f"the request body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}",
        ) from None
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedBody("json.syntax", f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        _too_deep()
    _check_tree(value)
    return value


def _number(literal: str, convert: type[int] | type[float]) -> int | float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise MalformedBody(
            "json.number",
            f"a number in the request body is {len(literal)} characters long; at most "
            f"{MAX_NUMBER_CHARS} are accepted (it starts {literal[:20]}...)",
        )
    value = convert(literal)
    if not math.isfinite(value):
        raise MalformedBody(
            "json.number", f"the number {literal} in the request body is out of range"
        )
    return value


def _constant(name: str) -> NoReturn:
    raise MalformedBody(
        "json.constant",
        f"the request body holds {name}, which is not JSON; send a finite number or null",
    )


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) < len(pairs):
        _refuse_repeated_key(pairs)
    return document


def _refuse_repeated_key(pairs: list[tuple[str, Any]]) -> NoReturn:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise MalformedBody(
                "json.duplicate-key",
                f"the key {key!r} appears twice in one object of the request body; "
                "send each key once",
            )
        seen.add(key)
    raise AssertionError("called without a repeated key")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=lambda literal: _number(literal, int),
    parse_float=lambda literal: _number(literal, float),
    parse_constant=_constant,
)


def _check_tree(value: Any) -> None:
    """Depth and string content, walked without recursion (the tree may be ~1000 deep)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_string(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                _too_deep()
            if isinstance(item, dict):
                for key in item:
                    _check_string(key)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)


def _check_string(text: str) -> None:
    found = _FORBIDDEN_IN_STRINGS.search(text)
    if found is not None:
        raise MalformedBody(
            "json.string",
            f"a string in the request body holds U+{ord(found.group()):04X} at index "
            f"{found.start()}; NUL and unpaired surrogates are refused",
        )


def _too_deep() -> NoReturn:
    raise MalformedBody(
        "json.depth",
        f"the request body nests arrays and objects more than {MAX_DEPTH} levels deep",
    )


MAX_IDEMPOTENCY_KEY_CHARS = 255  # the jobs.idempotency_key column


def idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header; None without one. An empty one (an unset variable in a
    CI script, say) is a mistake its sender should hear of, and one longer than the column
    holds would fail in the database: both are a 422."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        message = f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters, not blank"
        raise InvalidInput(
            f"header Idempotency-Key {message}",
            errors=[{"field": "Idempotency-Key", "message": message}],
        )
    return key


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
