"""Kinds that exercise the pipeline and describe a hypervisor."""

from __future__ import annotations

from pydantic import Field

from orchestrator.kinds.registry import JobParams, job_kind


@job_kind(
    "ping",
    "Round trip through a hypervisor's worker; answers with the worker's name, pid and timings.",
    safe_to_rerun=True,
)
class PingParams(JobParams):
    delay: float = Field(
        0.0, ge=0, le=3600, description="Seconds the worker waits before answering."
    )
    message: str = Field("pong", max_length=1024)


@job_kind(
    "hypervisor.facts",
    "Hostname, libvirt and QEMU versions, CPUs, memory, pools, networks and domains.",
    safe_to_rerun=True,
)
class FactsParams(JobParams):
    pass
