"""A real stack for tests: redis-server, API over HTTP, recorder, workers, on free ports."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy.orm import Session

from orchestrator.client import ApiClient
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.jobs.livestate import LiveState
from orchestrator.local.processes import ServiceProcess, free_port, redis_server
from orchestrator.local.stack import LocalStack
from orchestrator.models import Job
from orchestrator.settings import Settings
from workers.domains.cpu_probe import RECORDS_DIR

# Fast liveness for tests: a killed worker is noticed within about two seconds.
FAST_LIVENESS = {
    "heartbeat_interval": 0.3,
    "heartbeat_ttl": 1.5,
    "recorder_lost_check_interval": 0.3,
    "outbox_grace_seconds": 0.3,
    "lost_grace_seconds": 1.0,
    "api_workers": 1,
    "worker_concurrency": 4,
}


@contextmanager
def running_redis(directory: Path) -> Iterator[ServiceProcess]:
    port = free_port()
    server = redis_server(port, directory, log_path=directory / "redis.log").start()
    try:
        yield server
    finally:
        server.stop()


def redis_url(server: ServiceProcess) -> str:
    return f"redis://127.0.0.1:{server.argv[server.argv.index('--port') + 1]}/0"


@dataclass
class RunningStack:
    """API, recorder and workers on one test's Redis and SQLite database."""

    settings: Settings
    stack: LocalStack
    workers: dict[str, ServiceProcess] = field(default_factory=dict)

    @property
    def api(self) -> ApiClient:
        return ApiClient(self.settings.resolved_api_url)

    @property
    def live(self) -> LiveState:
        return LiveState.from_url(self.settings.resolved_redis_url)

    def session(self) -> Session:
        return make_sessionmaker(make_engine(self.settings.resolved_database_url))()

    def wait_recorded(self, job_id: str, state: str, timeout: float = 10) -> Job:
        """The job's SQL row once the recorder has written ``state`` into it."""
        deadline = time.monotonic() + timeout
        while True:
            with self.session() as session:
                job = session.get(Job, job_id)
                if job is not None and job.state == state:
                    return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} never recorded as {state}")
            time.sleep(0.05)

    def service(self, name: str) -> ServiceProcess:
        return next(s for s in self.stack.services if s.name == name)

    def start_api_and_recorder(self) -> None:
        self.stack.start(worker=False)

    def add_workers(self, hypervisors: dict[str, str], *extra: str) -> None:
        """Start one worker per ``name: libvirt_uri``, in parallel, and wait for their beats."""
        launched = [
            self.stack.launch(self.stack.worker(name, uri, *extra))
            for name, uri in hypervisors.items()
        ]
        for name, service in zip(hypervisors, launched, strict=True):
            service.wait_ready(60)
            self.workers[name] = service

    def restart(self, name: str) -> ServiceProcess:
        old = self.service(name)
        old.stop()
        self.stack.services.remove(old)
        fresh = ServiceProcess(
            old.name, old.argv, log_path=old.log_path, env=old.env, ready=old.ready
        )
        self.stack.launch(fresh).wait_ready(60)
        return fresh

    def submit(self, kind: str, hypervisor: str | None = None, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "params": params}
        if hypervisor:
            body["hypervisor"] = hypervisor
        return self.api.submit(body)

    def run(self, kind: str, hypervisor: str | None = None, **params: Any) -> dict[str, Any]:
        """Submit and wait for the job to finish."""
        return self.api.wait(self.submit(kind, hypervisor, **params)["id"], timeout=120)


# Which guest CPU modes boot here is learned once per test session rather than by every stack
# (a worker probes with tiny domains, seconds on a real libvirtd, unless its var dir holds the
# answer): tests/conftest.py points this at a session directory, and each stack starts with what
# an earlier one recorded there.
CPU_PROBE_RECORDS: Path | None = None


@contextmanager
def test_stack(
    tmp: Path,
    redis_server_url: str,
    hypervisors: dict[str, str],
    *,
    reuse_cpu_probe: bool = True,
    **overrides: Any,
) -> Iterator[RunningStack]:
    client = redis.Redis.from_url(redis_server_url)
    client.flushall()
    client.close()
    defaults = {
        "var_dir": tmp / "var",
        "database_url": f"sqlite:///{tmp / 'orchestrator.db'}",
        "redis_url": redis_server_url,
        "api_port": free_port(),
        "hypervisor": next(iter(hypervisors), "local"),
        **FAST_LIVENESS,
    }
    settings = Settings(**{**defaults, **overrides})
    stack = RunningStack(settings, LocalStack(settings, flower=False))
    records = settings.var_dir / RECORDS_DIR
    if reuse_cpu_probe and CPU_PROBE_RECORDS is not None:
        shutil.copytree(CPU_PROBE_RECORDS, records, dirs_exist_ok=True)
    try:
        stack.start_api_and_recorder()
        stack.add_workers(hypervisors)
        if reuse_cpu_probe and CPU_PROBE_RECORDS is not None and records.is_dir():
            shutil.copytree(records, CPU_PROBE_RECORDS, dirs_exist_ok=True)
        yield stack
    except BaseException:
        _print_logs(stack)
        raise
    finally:
        stack.stack.stop()


def _print_logs(stack: RunningStack) -> None:
    for service in stack.stack.services:
        print(f"--- {service.name} ({service.log_path})\n{service.log_tail(40)}")
