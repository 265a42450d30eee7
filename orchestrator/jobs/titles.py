"""How a job is named where operators see Celery tasks (Flower): its kind, what it acts on and
where, such as ``domain.define web-03 @ kvm2``, instead of the one task every job runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TITLE_MAX = 200


def task_title(kind: str, hypervisor: str, params: Mapping[str, Any]) -> str:
    target = job_target(params)
    title = f"{kind} {target} @ {hypervisor}" if target else f"{kind} @ {hypervisor}"
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1] + "…"


def job_target(params: Mapping[str, Any]) -> str | None:
    """What the job acts on: a domain's or volume's name (with its pool), a path, a fleet
    job's host pattern, or how many volumes."""
    name, pool = params.get("name"), params.get("pool")
    if isinstance(name, str):
        return f"{pool}/{name}" if isinstance(pool, str) else name
    if isinstance(params.get("path"), str):
        return str(params["path"])
    if isinstance(params.get("pattern"), str):
        return str(params["pattern"])
    names = params.get("names")
    if isinstance(names, list) and isinstance(pool, str):
        return f"{pool}/{len(names)} volumes"
    return pool if isinstance(pool, str) else None
