"""The access part of ``orchestrator demo``: a token made with ``orchestrator tokens create``,
a job submitted with it, and two requests the API refuses: a scope the token lacks, and a pool
outside the directories the operator allowed.

It runs last: once a token exists, every request needs one. The demo keeps its own database
(see :func:`demo_settings`), so the tokens it makes never lock out a later ``orchestrator up``.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import requests

from orchestrator.client import ApiClient, ApiError
from orchestrator.local.demo_steps import Step
from orchestrator.local.stack import child_env, orchestrator_argv
from orchestrator.settings import Settings

TOKEN_NAME = "ci-demo"
TOKEN_SCOPES = ("jobs:read", "jobs:submit")


class DemoToken:
    """The secret of the token the first step makes, for the steps after it."""

    secret: str | None = None


def _create_token(client: ApiClient, settings: Settings) -> dict[str, Any]:
    scopes = [arg for scope in TOKEN_SCOPES for arg in ("--scope", scope)]
    args = ["tokens", "create", "--name", TOKEN_NAME, *scopes, "--expires", "1d"]
    made = subprocess.run(
        orchestrator_argv(*args), env=child_env(settings), capture_output=True, text=True
    )
    if made.returncode != 0:
        raise ApiError({"status": made.returncode, "detail": made.stderr.strip()})
    DemoToken.secret = made.stdout.strip()
    _wait_until_tokens_are_asked_for(settings)
    shown = f"{DemoToken.secret[:9]}… (printed once by the command, kept only as a SHA-256)"
    return _shown({"command": f"orchestrator {' '.join(args)}", "secret": shown})


def _wait_until_tokens_are_asked_for(settings: Settings, timeout: float = 10.0) -> None:
    """Each API process notices the first token within a few seconds (it caches "no token
    exists" briefly, to spare a SQL read per request)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests.get(f"{settings.resolved_api_url}/v1/jobs", timeout=5).status_code == 401:
            return
        time.sleep(0.2)
    raise ApiError(
        {"status": 500, "detail": f"the API still answers without a token after {timeout}s"}
    )


def _submit_with_token(client: ApiClient, settings: Settings) -> dict[str, Any]:
    with_token = ApiClient(settings.resolved_api_url, token=DemoToken.secret)
    body = {"kind": "ping", "hypervisor": settings.hypervisor}
    job = with_token.wait(with_token.submit(body)["id"], timeout=120)
    anonymous = _refusal(ApiClient(settings.resolved_api_url, token=""), body)
    return {**job, "result": {"submitter": job["submitter"], "without a token": anonymous}}


def _refused_scope(client: ApiClient, settings: Settings) -> dict[str, Any]:
    with_token = ApiClient(settings.resolved_api_url, token=DemoToken.secret)
    body = {"kind": "fleet.ping", "hypervisor": settings.hypervisor, "params": {"inventory": "h1"}}
    return _shown(_refusal(with_token, body))


def _refused_pool(client: ApiClient, settings: Settings) -> dict[str, Any]:
    with_token = ApiClient(settings.resolved_api_url, token=DemoToken.secret)
    params = {"name": "cron", "path": "/etc/cron.d"}
    body = {"kind": "pool.ensure", "hypervisor": settings.hypervisor, "params": params}
    return _shown(_refusal(with_token, body))


def _refusal(client: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    """The problem document the API answers ``body`` with; a job made instead is an error."""
    try:
        job = client.submit(body)
    except ApiError as refused:
        return {
            k: refused.problem.get(k) for k in ("status", "title", "detail") if k in refused.problem
        }
    raise ApiError({"status": 500, "detail": f"the API accepted it as job {job['id']}"})


def _shown(result: dict[str, Any]) -> dict[str, Any]:
    """A step's outcome in the shape the demo prints jobs in."""
    return {"id": None, "state": "succeeded", "result": result}


ACCESS_STEPS: list[tuple[str, Step]] = [
    (f"tokens create: a CI token ({' '.join(TOKEN_SCOPES)})", _create_token),
    ("ping with the token: the job's submitter is the token's name", _submit_with_token),
    ("refused: the token lacks fleet:exec, so no command reaches any host", _refused_scope),
    ("refused: a pool at /etc/cron.d is outside the pool roots", _refused_pool),
]
