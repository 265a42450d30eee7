"""Builds a hypervisor worker: the Celery app, its one task, and the heartbeat around it."""

from __future__ import annotations

import logging
from typing import Any

import libvirt
from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from orchestrator.celery_app import RUN_JOB_TASK, create_celery
from orchestrator.settings import Settings
from workers.handlers import check_every_kind_handled
from workers.heartbeat import Heartbeat
from workers.runner import WorkerRuntime, run_attempt

log = logging.getLogger(__name__)


def create_worker_app(settings: Settings) -> tuple[Celery, WorkerRuntime]:
    """The worker's Celery app; UnhandledKinds if a job kind has no handler, so a worker never
    starts that would fail such jobs one by one."""
    check_every_kind_handled()
    app = create_celery(settings)
    runtime = WorkerRuntime.from_settings(settings)

    @app.task(name=RUN_JOB_TASK, bind=True)
    def run_job(
        self: Any, job_id: str, attempt: int, kind: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        return run_attempt(runtime, job_id, attempt, kind, params)

    heartbeat = Heartbeat(
        settings,
        runtime.live,
        runtime.instance,
        runtime.connector,
        running=lambda: list(runtime.running),
    )
    worker_ready.connect(lambda **_: start_serving(runtime, heartbeat), weak=False)
    worker_shutdown.connect(lambda **_: heartbeat.stop(), weak=False)
    worker_shutdown.connect(lambda **_: runtime.resources.ssh_pool.close_all(), weak=False)
    return app, runtime


def start_serving(runtime: WorkerRuntime, heartbeat: Heartbeat) -> None:
    """Before the first job is taken (Celery consumes once its ready signal returns): learn
    which guest CPU modes boot here, then beat with them. A worker that cannot learn them
    still serves, with libvirt's default CPU for ``auto``."""
    try:
        modes = runtime.resources.host_facts.learn_cpu_modes(
            runtime.connector(), runtime.settings.var_dir
        )
    except libvirt.libvirtError:
        log.exception("could not learn which guest CPU modes boot on this hypervisor")
    else:
        heartbeat.cpu_modes = modes
    heartbeat.start()


def worker_argv(settings: Settings, loglevel: str = "INFO") -> list[str]:
    """Celery worker options: one queue, a threads pool sharing one libvirt connection."""
    return [
        "worker",
        f"--queues={settings.queue}",
        "--pool=threads",
        f"--concurrency={settings.worker_concurrency}",
        f"--hostname={settings.hypervisor}@%h",
        f"--loglevel={loglevel}",
        "--without-gossip",
        "--without-mingle",
    ]


def run_worker(settings: Settings, loglevel: str = "INFO") -> None:
    app, _ = create_worker_app(settings)
    app.worker_main(worker_argv(settings, loglevel))
