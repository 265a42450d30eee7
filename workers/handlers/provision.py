"""The handler of ``vm.provision``: a VM from disk to address in one job."""

from __future__ import annotations

from typing import Any

from orchestrator.kinds.provision import ProvisionParams
from workers.context import JobContext
from workers.handlers.registry import handles
from workers.provision.job import provision


@handles(ProvisionParams)
def vm_provision(ctx: JobContext, params: ProvisionParams) -> dict[str, Any]:
    return provision(ctx, params)
