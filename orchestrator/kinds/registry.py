"""The registry of job kinds: each kind's name, parameter model and re-run safety."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.errors import InvalidInput


class JobParams(BaseModel):
    """Base of every kind's parameters: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class JobKind:
    name: str
    params: type[JobParams]
    summary: str
    # True when every step is read-only or an idempotent "ensure", so a job whose worker
    # vanished may run again as a new attempt instead of being marked lost.
    safe_to_rerun: bool = False


KINDS: dict[str, JobKind] = {}

P = TypeVar("P", bound=type[JobParams])


def job_kind(name: str, summary: str, *, safe_to_rerun: bool = False) -> Callable[[P], P]:
    """Class decorator registering a parameter model as the kind ``name``."""

    def register(params: P) -> P:
        if name in KINDS:
            raise ValueError(f"job kind {name!r} registered twice")
        KINDS[name] = JobKind(name, params, summary, safe_to_rerun)
        return params

    return register


def get_kind(name: str) -> JobKind:
    """The kind called ``name``; an unknown name is a 422 that lists the known kinds."""
    try:
        return KINDS[name]
    except KeyError:
        known = ", ".join(sorted(KINDS))
        raise InvalidInput(
            f"unknown job kind {name!r}; known kinds: {known}",
            errors=[{"field": "kind", "message": f"must be one of: {known}"}],
        ) from None


def parse_params(kind: JobKind, raw: Mapping[str, Any] | None, field: str = "params") -> JobParams:
    """Validate ``raw`` against the kind's model; errors name each field and its rule."""
    try:
        return kind.params.model_validate(dict(raw or {}))
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid parameters for job kind {kind.name!r}",
            errors=validation_errors(exc, prefix=field),
        ) from None


def validation_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic errors as ``{"field": "params.size", "message": ...}`` items."""
    items = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        items.append({"field": path or prefix, "message": error["msg"]})
    return items
