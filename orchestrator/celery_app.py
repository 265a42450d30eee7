"""The Celery app factory. Built from settings, never at import time."""

from __future__ import annotations

from celery import Celery

from orchestrator.settings import Settings

RUN_JOB_TASK = "orchestrator.run_job"


def create_celery(settings: Settings, name: str = "orchestrator") -> Celery:
    """A Celery app on the settings' Redis, with the reliability rules of the design applied."""
    app = Celery(name)
    url = settings.resolved_redis_url
    # Redelivery of unacknowledged tasks is driven by the visibility timeout; Celery reads it
    # from the broker's and the result backend's transport options, so both carry it. Kombu
    # looks for overdue messages every interval x throttle seconds (10 x 10 by default, so a
    # dead worker's message could wait 100 s beyond its timeout): one cheap sweep per interval.
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 2)),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        broker_url=url,
        result_backend=url,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # A job's state and result live in Redis under the job (orchestrator.jobs.livestate)
        # and in SQL; Celery's result backend would keep a second copy of every result for a
        # day, and its "started" write, made before the job runs, fails the task unrun when
        # Redis blips at that moment, with its message acknowledged: the job stays queued.
        task_ignore_result=True,
        task_track_started=False,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        task_default_queue=settings.queue,
        task_create_missing_queues=True,
        # Task events cost the worker a publish per task state; Flower switches them on
        # (enable_events) while it watches, so they are off by default.
        worker_send_task_events=False,
        worker_hijack_root_logger=False,
        broker_pool_limit=None,
    )
    return app
