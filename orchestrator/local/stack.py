"""The whole stack on one machine: Redis, API, recorder, a worker per hypervisor, Flower."""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests

from orchestrator import db
from orchestrator.jobs.livestate import LiveState
from orchestrator.local.processes import ServiceProcess, port_open, redis_server
from orchestrator.local.supervisor import Supervisor
from orchestrator.settings import LOCAL_REDIS_PORT, Settings, local_redis_password_file


def child_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment that gives a child process these settings, resolved."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    # Secrets are handed only to the child that needs them (see LocalStack._flower).
    values = settings.model_dump(
        mode="json", exclude={"config_file", "flower_basic_auth"}, exclude_none=True
    )
    env.update({f"ORCH_{name.upper()}": _env_value(value) for name, value in values.items()})
    env["ORCH_DATABASE_URL"] = settings.resolved_database_url
    env["ORCH_REDIS_URL"] = settings.resolved_redis_url
    env.update({f"ORCH_{k.upper()}": v for k, v in overrides.items()})
    return env


def _env_value(value: object) -> str:
    # pydantic-settings reads complex fields (dicts, lists) from the environment as JSON.
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def ensure_local_redis_password(var_dir: Path) -> str:
    """The local Redis's password, made on first use and kept in a file only root reads."""
    path = local_redis_password_file(var_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
            password = ensure_local_redis_password(self.settings.var_dir)
            log = self.logs / "redis.log"
            self._start(redis_server(LOCAL_REDIS_PORT, redis_dir, log_path=log, password=password))
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

    def supervise(self, stop: threading.Event, report: Callable[[str], None]) -> None:
        """Until ``stop`` is set, start again any service that dies, telling ``report``."""
        Supervisor(self.services, report).run(stop)

    def stop(self) -> None:
        """Stop the services all at once, each in its own warm shutdown, then Redis: the
        workers and the recorder still write to it while they stop."""
        services, self.services = self.services, []
        last = [service for service in services if service.name == "redis"]
        first = [service for service in services if service.name != "redis"]
        if first:
            with ThreadPoolExecutor(len(first)) as pool:
                list(pool.map(ServiceProcess.stop, first))
        for service in last:
            service.stop()

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
        settings = self.settings
        port = settings.flower_port
        argv = [sys.executable, "-m", "celery", "flower", f"--port={port}"]
        argv.append(f"--address={settings.flower_address}")
        # Secrets travel in the environment (readable by root only), never on the command line.
        env = child_env(settings)
        env["CELERY_BROKER_URL"] = settings.resolved_redis_url
        if settings.flower_basic_auth is not None:
            env["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth.get_secret_value()
        elif not is_loopback(settings.flower_address):
            raise ValueError(
                f"Flower would listen on {settings.flower_address} without a password; set "
                "ORCH_FLOWER_BASIC_AUTH=user:password or keep ORCH_FLOWER_ADDRESS on loopback"
            )
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
