"""Long-running entry points: the API under gunicorn, the recorder loop."""

from __future__ import annotations

import logging
import resource
import signal
import threading
from typing import Any

from orchestrator.settings import Settings

log = logging.getLogger(__name__)

# Simultaneous clients per gevent worker. A waiting client costs a greenlet and a socket, not a
# thread, so the bound is file descriptors: half of them for clients, the rest for the Redis and
# SQL connections those clients' requests open.
MAX_CONNECTIONS_PER_WORKER = 4096
RESERVED_FILES = 64
# The soft limit asked for when the hard one is unlimited (the kernel's nr_open caps it anyway).
OPEN_FILES_WHEN_UNLIMITED = 65536


def serve_api(settings: Settings) -> None:
    """The API under gunicorn, with the worker class of ``api_worker_class``.

    Raises RefusedToServe before binding when the settings would expose it (see
    ``orchestrator.access.exposure``)."""
    from gunicorn.app.base import BaseApplication

    from orchestrator.access.exposure import check_api_settings

    check_api_settings(settings)
    options = gunicorn_options(settings, raise_open_files_limit())
    if settings.api_worker_class == "gevent":
        # Before the app's modules load: a lock or socket class they make at import time
        # would otherwise be the blocking kind, able to stall a whole worker.
        from gevent import monkey

        monkey.patch_all()
    # Loaded before gunicorn binds, so the port answers requests as soon as it opens.
    from api import create_app

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings)

    _Gunicorn().run()


def gunicorn_options(settings: Settings, open_files: int) -> dict[str, Any]:
    """gunicorn's configuration for the API, given the open files each process may hold."""
    options: dict[str, Any] = {
        "bind": f"{settings.api_host}:{settings.api_port}",
        "workers": settings.api_workers,
        "worker_class": settings.api_worker_class,
        "accesslog": None,
        "timeout": 600,
        "graceful_timeout": 10,
    }
    if settings.api_worker_class == "gthread":
        options["threads"] = settings.api_threads
    else:
        options["worker_connections"] = connections_per_worker(open_files)
    return options


def connections_per_worker(open_files: int) -> int:
    return max(1, min(MAX_CONNECTIONS_PER_WORKER, (open_files - RESERVED_FILES) // 2))


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit (the default soft 1024
    would cap waiting clients well under a thousand); the limit now in force. Workers forked
    after this inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = OPEN_FILES_WHEN_UNLIMITED if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("open files limit stays at %d: %s", soft, exc)
    return OPEN_FILES_WHEN_UNLIMITED if soft == resource.RLIM_INFINITY else soft


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
