"""The storage part of ``orchestrator demo``: a pool, a base image, a linked clone, a listing,
then the two volumes deleted again, each a job through the API on the local hypervisor.

The pool (``orchestrator-demo`` at ``var/pool``) stays defined: there is no job kind that
removes a pool, and the next demo run finds it as asked. ``virsh pool-destroy`` and
``virsh pool-undefine`` remove it by hand.
"""

from __future__ import annotations

from orchestrator.demo_steps import Step, job_step
from orchestrator.settings import Settings

DEMO_POOL = "orchestrator-demo"
BASE = "demo-base.qcow2"
CLONE = "demo-clone.qcow2"


def demo_pool_dir(settings: Settings) -> str:
    return str(settings.var_dir.resolve() / "pool")


STORAGE_STEPS: list[tuple[str, Step]] = [
    (
        f"pool.ensure: a directory pool {DEMO_POOL!r} under the stack's var directory",
        job_step(
            "pool.ensure",
            lambda settings: {
                "name": DEMO_POOL,
                "path": demo_pool_dir(settings),
                "autostart": False,
            },
        ),
    ),
    (
        "volume.create: a 1 GiB qcow2 base image",
        job_step("volume.create", dict(pool=DEMO_POOL, name=BASE, capacity="1G")),
    ),
    (
        "volume.create: a linked clone, a qcow2 overlay on the base",
        job_step(
            "volume.create",
            dict(pool=DEMO_POOL, name=CLONE, backing=f"{DEMO_POOL}/{BASE}"),
        ),
    ),
    ("volume.list: the demo pool's volumes", job_step("volume.list", dict(pool=DEMO_POOL))),
    (
        "volume.delete: the linked clone (before its base)",
        job_step("volume.delete", dict(pool=DEMO_POOL, name=CLONE)),
    ),
    (
        "volume.delete: the base image (the pool stays: no job kind removes a pool)",
        job_step("volume.delete", dict(pool=DEMO_POOL, name=BASE)),
    ),
]
