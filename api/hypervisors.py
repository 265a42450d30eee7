"""``/v1/hypervisors``: the registry, with each one's state, labels, capacity, allocation and
claims; an operator disables, drains or relabels one here."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import requires
from api.requests import json_body
from api.services import services
from orchestrator.access.scopes import HYPERVISORS_ADMIN, JOBS_READ
from orchestrator.errors import InvalidInput, NotFound
from orchestrator.hypervisors import registry
from orchestrator.hypervisors.labels import Labels
from orchestrator.hypervisors.listing import hypervisor_documents
from orchestrator.kinds.registry import validation_errors

bp = Blueprint("hypervisors", __name__, url_prefix="/v1/hypervisors")


class HypervisorChange(BaseModel):
    """The body of ``PATCH /v1/hypervisors/<name>``."""

    model_config = ConfigDict(extra="forbid")

    state: registry.AdminState | None = Field(
        None,
        description="up: takes new work while its worker beats; disabled: takes nothing new; "
        "draining: finishes the jobs it has and takes nothing new.",
    )
    labels: Labels | None = Field(None, description="The new labels, replacing the old ones.")

    @classmethod
    def parse(cls, body: Any) -> HypervisorChange:
        try:
            change = cls.model_validate(body)
        except ValidationError as exc:
            raise InvalidInput("invalid hypervisor change", errors=validation_errors(exc)) from None
        if change.state is None and change.labels is None:
            raise InvalidInput.of("", "give state, labels or both")
        return change


@bp.get("")
@requires(JOBS_READ)
def index() -> Response:
    return jsonify({"items": _documents()})


@bp.get("/<name>")
@requires(JOBS_READ)
def show(name: str) -> Response:
    return jsonify(_document(name))


@bp.patch("/<name>")
@requires(HYPERVISORS_ADMIN)
def update(name: str) -> Response:
    change = HypervisorChange.parse(json_body())
    svc = services()
    with svc.sessions() as session:
        seen = any(beat["name"] == name for beat in svc.live.hypervisors())
        registry.change(session, name, change.state, change.labels, seen)
    return jsonify(_document(name))


def _documents() -> list[dict[str, Any]]:
    svc = services()
    with svc.sessions() as session:
        return hypervisor_documents(session, svc.live)


def _document(name: str) -> dict[str, Any]:
    for document in _documents():
        if document["name"] == name:
            return document
    raise NotFound(f"no hypervisor {name!r} is declared or has ever reported")
