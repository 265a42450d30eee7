"""The storage part of ``orchestrator demo``: a pool, a base image, a linked clone, a listing,
then the two volumes deleted again, each a job through the API on the local hypervisor.

The pool (``orchestrator-demo-<hash>`` at ``var/pools/demo``, inside the pool roots every worker
allows) serves the domain steps too; the last step of the demo (:data:`POOL_REMOVAL_STEP`)
removes it.
"""

from __future__ import annotations

import hashlib

from orchestrator.local.demo_steps import Step, job_step
from orchestrator.settings import Settings

BASE = "demo-base.qcow2"
CLONE = "demo-clone.qcow2"


def demo_pool(settings: Settings) -> str:
    """The demo pool's name, one per var directory: two checkouts never fight over one pool."""
    digest = hashlib.sha256(str(settings.var_dir.resolve()).encode()).hexdigest()[:8]
    return f"orchestrator-demo-{digest}"


def demo_pool_dir(settings: Settings) -> str:
    """Under var_dir/pools, which is always one of the pool roots (var_dir itself never is)."""
    return str(settings.var_dir.resolve() / "pools" / "demo")


STORAGE_STEPS: list[tuple[str, Step]] = [
    (
        "pool.ensure: a directory pool under the stack's var/pools (a pool root)",
        job_step(
            "pool.ensure",
            lambda settings: {
                "name": demo_pool(settings),
                "path": demo_pool_dir(settings),
                "autostart": False,
            },
        ),
    ),
    (
        "volume.create: a 1 GiB qcow2 base image",
        job_step(
            "volume.create",
            lambda settings: dict(pool=demo_pool(settings), name=BASE, capacity="1G"),
        ),
    ),
    (
        "volume.create: a linked clone, a qcow2 overlay on the base",
        job_step(
            "volume.create",
            lambda settings: dict(
                pool=demo_pool(settings), name=CLONE, backing=f"{demo_pool(settings)}/{BASE}"
            ),
        ),
    ),
    (
        "volume.list: the demo pool's volumes",
        job_step("volume.list", lambda settings: dict(pool=demo_pool(settings))),
    ),
    (
        "volume.delete: the linked clone (before its base)",
        job_step("volume.delete", lambda settings: dict(pool=demo_pool(settings), name=CLONE)),
    ),
    (
        "volume.delete: the base image (the pool stays for the domain steps)",
        job_step("volume.delete", lambda settings: dict(pool=demo_pool(settings), name=BASE)),
    ),
]


POOL_REMOVAL_STEP: tuple[str, Step] = (
    "pool.delete: the demo pool, with anything a failed step left in it (the directory stays)",
    job_step("pool.delete", lambda settings: {"name": demo_pool(settings), "delete_volumes": True}),
)
