"""Runs one delivered job attempt: claim it, call its handler, report the outcome."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

from orchestrator.errors import OrchestratorError
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import ClaimOutcome, LiveState
from orchestrator.kinds import get_kind, parse_params
from orchestrator.settings import Settings
from workers.connection import LibvirtConnector
from workers.context import JobContext, WorkerResources
from workers.deadline import Deadline
from workers.handlers import HANDLERS
from workers.redis_retry import retrying

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    """What one worker process shares across the jobs it runs."""

    settings: Settings
    live: LiveState
    connector: LibvirtConnector
    resources: WorkerResources = field(default_factory=WorkerResources)
    instance: str = field(default_factory=lambda: uuid4().hex)
    # The (job id, attempt) pairs this process runs now: its heartbeat lists them, so that a
    # job left running in Redis that its live worker no longer runs is found.
    running: set[tuple[str, int]] = field(default_factory=set)
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerRuntime:
        return cls(
            settings,
            LiveState.from_url(settings.resolved_redis_url),
            LibvirtConnector(
                settings.libvirt_uri,
                (settings.libvirt_keepalive_interval, settings.libvirt_keepalive_count),
            ),
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
    settings = runtime.settings
    runtime.running.add((job_id, attempt))
    try:
        with Deadline(ctx, settings.task_soft_time_limit, settings.task_time_limit) as deadline:
            state = _run(ctx, kind, params, deadline)
    finally:
        runtime.running.discard((job_id, attempt))
    return {"state": state.value}


def _run(ctx: JobContext, kind: str, params: dict[str, Any], deadline: Deadline) -> JobState:
    """Call the handler and report its outcome; returns the state the attempt ended in."""
    failure: tuple[str, dict[str, Any]] | None
    try:
        result = _call_handler(ctx, kind, params)
    except OrchestratorError as exc:
        failure = (exc.detail, exc.to_problem())
    except Exception as exc:
        log.exception("job %s (%s) crashed", ctx.job_id, kind)
        failure = (
            f"{type(exc).__name__}: {exc}",
            {"type": "urn:orchestrator:problem:internal", "status": 500},
        )
    else:
        failure = None
    if not deadline.claim_ending():
        # The hard deadline failed the job while this thread was stuck: remove what the
        # attempt made, silently (its reports are fenced), and leave the record alone.
        ctx.undo_created()
        return JobState.FAILED
    if deadline.passed:
        # Whatever the handler returned after it was asked to stop, it did not finish in time.
        failure = (deadline.detail, deadline.problem)
    if failure is not None:
        _fail(ctx, *failure)
        return JobState.FAILED
    ctx.keep_created()
    _finish(ctx, JobState.SUCCEEDED, "succeeded", result=result)
    return JobState.SUCCEEDED


def _call_handler(ctx: JobContext, kind: str, params: dict[str, Any]) -> Any:
    parsed = parse_params(get_kind(kind), params)
    return HANDLERS[kind](ctx, parsed)


def _fail(ctx: JobContext, detail: str, problem: dict[str, Any]) -> None:
    current = retrying(
        lambda: ctx.live.is_current_attempt(ctx.job_id, ctx.attempt),
        f"job {ctx.job_id} attempt check",
        ctx.settings.outcome_retry_seconds,
    )
    if current:
        ctx.undo_created()
    else:
        # A newer attempt runs (this one was declared lost): what this one made may be what
        # the new one reports, so it is left to it.
        log.warning("job %s attempt %s is stale: its clean-up is skipped", ctx.job_id, ctx.attempt)
    problem = {**problem, "detail": detail}
    _finish(ctx, JobState.FAILED, f"failed: {detail}", error=problem)


def _finish(ctx: JobContext, state: JobState, message: str, **outcome: Any) -> None:
    """End the attempt; while Redis is unreachable the outcome is kept and retried."""
    retrying(
        lambda: ctx.live.finish(ctx.job_id, ctx.attempt, state, message, **outcome),
        f"job {ctx.job_id} outcome",
        ctx.settings.outcome_retry_seconds,
    )
