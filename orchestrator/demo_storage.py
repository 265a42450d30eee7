"""The storage part of ``orchestrator demo``: a pool, a base image, a linked clone, a listing,
then the two volumes deleted again, each a job through the API on the local hypervisor.

The pool (``orchestrator-demo`` at ``var/pool``) stays defined: there is no job kind that
removes a pool, and the next demo run finds it as asked. ``virsh pool-destroy`` and
``virsh pool-undefine`` remove it by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.client import ApiClient
from orchestrator.settings import Settings

# The same shape as orchestrator.demo.Step; not imported from there, as demo imports this module.
Step = Callable[[ApiClient, Settings], dict[str, Any]]

DEMO_POOL = "orchestrator-demo"
BASE = "demo-base.qcow2"
CLONE = "demo-clone.qcow2"


def demo_pool_dir(settings: Settings) -> str:
    return str(settings.var_dir.resolve() / "pool")


def _job(kind: str, params: Callable[[Settings], dict[str, Any]]) -> Step:
    """A step that runs ``kind`` with parameters made from the settings, and waits for it."""

    def step(client: ApiClient, settings: Settings) -> dict[str, Any]:
        body = {"kind": kind, "params": params(settings), "hypervisor": settings.hypervisor}
        return client.wait(client.submit(body)["id"], timeout=300)

    return step


def _fixed(**params: Any) -> Callable[[Settings], dict[str, Any]]:
    return lambda _settings: params


STORAGE_STEPS: list[tuple[str, Step]] = [
    (
        f"pool.ensure: a directory pool {DEMO_POOL!r} under the stack's var directory",
        _job(
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
        _job("volume.create", _fixed(pool=DEMO_POOL, name=BASE, capacity="1G")),
    ),
    (
        "volume.create: a linked clone, a qcow2 overlay on the base",
        _job(
            "volume.create",
            _fixed(pool=DEMO_POOL, name=CLONE, backing=f"{DEMO_POOL}/{BASE}"),
        ),
    ),
    ("volume.list: the demo pool's volumes", _job("volume.list", _fixed(pool=DEMO_POOL))),
    (
        "volume.delete: the linked clone (before its base)",
        _job("volume.delete", _fixed(pool=DEMO_POOL, name=CLONE)),
    ),
    (
        "volume.delete: the base image (the pool stays: no job kind removes a pool)",
        _job("volume.delete", _fixed(pool=DEMO_POOL, name=BASE)),
    ),
]
