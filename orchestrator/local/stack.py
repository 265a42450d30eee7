"""The whole stack on one machine: Redis, API, recorder, a worker per hypervisor, Flower."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests

from orchestrator import db
from orchestrator.jobs.livestate import LiveState
from orchestrator.local.processes import ServiceProcess, port_open, redis_server
from orchestrator.settings import LOCAL_REDIS_PORT, Settings


def child_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that gives a child process these settings, resolved."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    values = settings.model_dump(mode="json", exclude={"config_file"}, exclude_none=True)
    env.update({f"ORCH_{name.upper()}": _env_value(value) for name, value in values.items()})
    env["ORCH_DATABASE_URL"] = settings.resolved_database_url
    env["ORCH_REDIS_URL"] = settings.resolved_redis_url
    env.update({f"ORCH_{k.upper()}": v for k, v in overrides.items()})
    return env


def _env_value(value: object) -> str:
    # pydantic-settings reads complex fields (dicts, lists) from the environment as JSON.
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def orchestrator_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "orchestrator", *args]


def api_ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/v1/health", timeout=1).status_code == 200
    except requests.RequestException:
        return False


class LocalStack:
    """Starts and stops the services, in order, each logging to ``var/logs/NAME.log``."""

    def __init__(self, settings: Settings, *, flower: bool = True) -> None:
        self.settings = settings
        self.logs = settings.var_dir.resolve() / "logs"
        self.flower = flower
        self.services: list[ServiceProcess] = []

    def start(self, *, worker: bool = True) -> None:
        """Start the services; ``worker=False`` leaves the workers to ``launch(worker(...))``."""
        if self.settings.uses_local_redis and not port_open(LOCAL_REDIS_PORT)():
            redis_dir = self.settings.var_dir.resolve() / "redis"
            self._start(redis_server(LOCAL_REDIS_PORT, redis_dir, log_path=self.logs / "redis.log"))
        db.upgrade(self.settings.resolved_database_url)
        url = self.settings.resolved_api_url
        # Launch everything, then wait: the services boot in parallel.
        launched = [
            self.launch(self._service("api", ["api"], ready=lambda: api_ready(url))),
            self.launch(self._service("recorder", ["recorder"])),
        ]
        if worker:
            launched.append(
                self.launch(self.worker(self.settings.hypervisor, self.settings.libvirt_uri))
            )
        if self.flower:
            launched.append(self.launch(self._flower()))
        for service in launched:
            service.wait_ready(60)

    def worker(self, hypervisor: str, libvirt_uri: str, *extra: str) -> ServiceProcess:
        """A worker service for ``hypervisor``, ready once its heartbeat is in Redis."""
        live = LiveState.from_url(self.settings.resolved_redis_url)
        args = ["worker", "--hypervisor", hypervisor, "--libvirt-uri", libvirt_uri, *extra]
        return self._service(
            f"worker-{hypervisor}", args, ready=lambda: live.heartbeat(hypervisor) is not None
        )

    def stop(self) -> None:
        while self.services:
            self.services.pop().stop()

    @property
    def flower_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.flower_port}"

    def _service(
        self, name: str, args: list[str], ready: Callable[[], bool] | None = None
    ) -> ServiceProcess:
        return ServiceProcess(
            name,
            orchestrator_argv(*args),
            log_path=self.logs / f"{name}.log",
            env=child_env(self.settings),
            ready=ready,
        )

    def _flower(self) -> ServiceProcess:
        port = self.settings.flower_port
        argv = [
            sys.executable,
            "-m",
            "celery",
            "--broker",
            self.settings.resolved_redis_url,
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
        ]
        env = child_env(self.settings)
        return ServiceProcess(
            "flower", argv, log_path=self.logs / "flower.log", env=env, ready=port_open(port)
        )

    def _start(self, service: ServiceProcess) -> ServiceProcess:
        self.launch(service).wait_ready(60)
        return service

    def launch(self, service: ServiceProcess) -> ServiceProcess:
        """Start ``service`` without waiting for it; ``stop()`` stops it with the rest."""
        self.services.append(service)
        return service.start(timeout=None)


@contextmanager
def running_stack(settings: Settings, *, flower: bool = True) -> Iterator[LocalStack]:
    stack = LocalStack(settings, flower=flower)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
