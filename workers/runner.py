"""Runs one delivered job attempt: claim it, call its handler, report the outcome."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from celery.exceptions import SoftTimeLimitExceeded

from orchestrator.errors import OrchestratorError
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import ClaimOutcome, LiveState
from orchestrator.kinds import get_kind, parse_params
from orchestrator.settings import Settings
from workers.connection import LibvirtConnector
from workers.context import JobContext, WorkerResources
from workers.handlers import HANDLERS

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    """What one worker process shares across the jobs it runs."""

    settings: Settings
    live: LiveState
    connector: LibvirtConnector
    resources: WorkerResources = field(default_factory=WorkerResources)
    instance: str = field(default_factory=lambda: uuid4().hex)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerRuntime:
        return cls(
            settings,
            LiveState.from_url(settings.resolved_redis_url),
            LibvirtConnector(settings.libvirt_uri),
        )


def run_attempt(
    runtime: WorkerRuntime, job_id: str, attempt: int, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Run ``attempt`` of ``job_id`` unless another delivery already claimed it."""
    live = runtime.live
    worker = f"{runtime.settings.hypervisor}/{runtime.name}"
    outcome = live.claim(job_id, attempt, worker, runtime.instance)
    if outcome is not ClaimOutcome.CLAIMED:
        log.info("job %s attempt %s not run: %s", job_id, attempt, outcome.value)
        return {"skipped": outcome.value}
    ctx = JobContext(
        job_id, attempt, kind, runtime.settings, live, runtime.connector, runtime.resources
    )
    try:
        result = _call_handler(ctx, kind, params)
    except OrchestratorError as exc:
        _fail(ctx, exc.detail, exc.to_problem())
        return {"state": JobState.FAILED.value}
    except SoftTimeLimitExceeded:
        limit = runtime.settings.task_soft_time_limit
        _fail(ctx, f"time limit of {limit}s exceeded", {"type": "urn:orchestrator:problem:timeout"})
        return {"state": JobState.FAILED.value}
    except Exception as exc:
        log.exception("job %s (%s) crashed", job_id, kind)
        detail = f"{type(exc).__name__}: {exc}"
        _fail(ctx, detail, {"type": "urn:orchestrator:problem:internal", "status": 500})
        return {"state": JobState.FAILED.value}
    ctx.keep_created()
    live.finish(job_id, attempt, JobState.SUCCEEDED, "succeeded", result=result)
    return {"state": JobState.SUCCEEDED.value}


def _call_handler(ctx: JobContext, kind: str, params: dict[str, Any]) -> Any:
    parsed = parse_params(get_kind(kind), params)
    return HANDLERS[kind](ctx, parsed)


def _fail(ctx: JobContext, detail: str, problem: dict[str, Any]) -> None:
    ctx.undo_created()
    problem = {**problem, "detail": detail}
    ctx.live.finish(ctx.job_id, ctx.attempt, JobState.FAILED, f"failed: {detail}", error=problem)
