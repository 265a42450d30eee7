"""Handlers for ``fleet.run`` and ``fleet.ping``: thin calls into :mod:`workers.fleet_jobs`."""

from __future__ import annotations

from typing import Any

from orchestrator.fleet.calls import PingCall
from orchestrator.kinds.fleet import FleetPingParams, FleetRunParams
from workers.context import JobContext
from workers.fleet_jobs import run_fleet_job
from workers.handlers.registry import handles


@handles(FleetRunParams)
def fleet_run(ctx: JobContext, params: FleetRunParams) -> dict[str, Any]:
    return run_fleet_job(ctx, params, params.call)


@handles(FleetPingParams)
def fleet_ping(ctx: JobContext, params: FleetPingParams) -> dict[str, Any]:
    return run_fleet_job(ctx, params, PingCall())
