"""What a step of ``orchestrator demo`` is: a job submitted through the API and awaited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.client import ApiClient
from orchestrator.settings import Settings

Step = Callable[[ApiClient, Settings], dict[str, Any]]
ParamsFrom = Callable[[Settings], dict[str, Any]]


def job_step(kind: str, params: dict[str, Any] | ParamsFrom | None = None) -> Step:
    """A step running ``kind`` on the demo's hypervisor; ``params`` may depend on the settings."""

    def step(client: ApiClient, settings: Settings) -> dict[str, Any]:
        values = params(settings) if callable(params) else dict(params or {})
        body = {"kind": kind, "params": values, "hypervisor": settings.hypervisor}
        return client.wait(client.submit(body)["id"], timeout=300)

    return step
