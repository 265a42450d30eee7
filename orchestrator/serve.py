"""Long-running entry points: the API under gunicorn, the recorder loop."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from orchestrator.settings import Settings


def serve_api(settings: Settings) -> None:
    """The API under gunicorn with threaded workers (long-polling waits hold a thread).

    Raises RefusedToServe before binding when the settings would expose it (see
    ``orchestrator.access.exposure``)."""
    from gunicorn.app.base import BaseApplication

    from api import create_app
    from orchestrator.access.exposure import check_api_settings

    check_api_settings(settings)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            options: dict[str, Any] = {
                "bind": f"{settings.api_host}:{settings.api_port}",
                "workers": settings.api_workers,
                "threads": settings.api_threads,
                "worker_class": "gthread",
                "accesslog": None,
                "timeout": 600,
                "graceful_timeout": 10,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    _Gunicorn().run()


def run_recorder(settings: Settings) -> None:
    from orchestrator.celery_app import create_celery
    from orchestrator.db import make_engine, make_sessionmaker
    from orchestrator.jobs.livestate import LiveState
    from orchestrator.jobs.recorder import Recorder

    logging.basicConfig(level=logging.INFO, format="%(asctime)s recorder %(levelname)s %(message)s")
    sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
    live = LiveState.from_url(settings.resolved_redis_url)
    recorder = Recorder(settings, sessions, live, create_celery(settings))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    recorder.run(stop)
