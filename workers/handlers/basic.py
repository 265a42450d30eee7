"""Handlers for ``ping`` and ``hypervisor.facts``."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from orchestrator.kinds.basic import FactsParams, PingParams
from workers.context import JobContext
from workers.facts import read_facts
from workers.handlers.registry import handles


@handles(PingParams)
def ping(ctx: JobContext, params: PingParams) -> dict[str, Any]:
    started = time.time()
    if params.delay:
        ctx.event(f"waiting {params.delay:g}s before answering")
        _sleep_unless_cancelled(ctx, params.delay)
    return {
        "message": params.message,
        "hypervisor": ctx.hypervisor,
        "worker": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started,
        "run_ms": round((time.time() - started) * 1000, 3),
    }


@handles(FactsParams)
def facts(ctx: JobContext, params: FactsParams) -> dict[str, Any]:
    return read_facts(ctx.libvirt)


def _sleep_unless_cancelled(ctx: JobContext, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.25))
        if ctx.cancel_requested():
            return
