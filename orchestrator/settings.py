"""One typed settings object, read from ``ORCH_*`` environment variables and an optional TOML file.

Nothing reads settings at import time: callers build a :class:`Settings` and pass it on.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from orchestrator.hypervisors.labels import Labels
from orchestrator.placement.policy import PlacementPolicy

LOCAL_REDIS_PORT = 6399
HYPERVISOR_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class DeclaredHypervisor(BaseModel):
    """A hypervisor the registry lists before (or without) any heartbeat from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=HYPERVISOR_NAME)
    libvirt_uri: str | None = Field(None, max_length=1024)
    labels: Labels = Field(default_factory=dict)


class Settings(BaseSettings):
    """Every knob of the orchestrator, with defaults that run on one machine unconfigured."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="forbid")

    config_file: Path | None = Field(None, description="Optional TOML file with these settings.")
    var_dir: Path = Field(Path("./var"), description="State directory: SQLite, local Redis, logs.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite under var_dir."
    )
    redis_url: str | None = Field(
        None,
        description="Redis for broker, results and live state; default a redis-server that "
        "`orchestrator up` starts under var_dir on 127.0.0.1:6399.",
    )

    # The hypervisor a worker serves.
    hypervisor: str = Field("local", pattern=HYPERVISOR_NAME)
    libvirt_uri: str = "qemu:///system"
    worker_concurrency: int = Field(8, ge=1, le=256)
    # libvirt's keepalive (virsh uses 5 and 6): a libvirtd that answers none of `count` probes
    # sent `interval` seconds apart is taken as gone, and the call waiting on it fails.
    libvirt_keepalive_interval: int = Field(5, ge=1, le=600)
    libvirt_keepalive_count: int = Field(6, ge=1, le=100)
    cpu_mode: str = Field(
        "auto",
        description="Guest CPU of a domain whose job names none, in --cpu syntax: auto (the "
        "best that booted a probe domain when the worker started: host-passthrough, "
        "host-model, then qemu64,-svm, which nested KVM runs), or host-passthrough, "
        "host-model or a custom model such as qemu64,-svm, used as given.",
    )

    hypervisors: list[DeclaredHypervisor] = Field(
        default_factory=list,
        description="Hypervisors the registry lists before any heartbeat, with their labels "
        "({name, libvirt_uri, labels}); JSON list in ORCH_HYPERVISORS. Workers that beat are "
        "listed without being declared.",
    )

    # Placement, with OpenStack Nova's defaults: what a hypervisor may promise beyond what it
    # has, the memory kept for the host, and how many VMs it provisions at once.
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)
    disk_allocation_ratio: float = Field(1.0, gt=0)
    reserved_host_memory_mib: int = Field(512, ge=0)
    max_provisioning_per_host: int = Field(
        8,
        ge=0,
        description="VMs one hypervisor provisions at once (claimed, not yet reported by its "
        "libvirt); placement passes over a hypervisor at the bound. 0 lifts it.",
    )

    # Liveness: workers beat every interval; a beat older than the TTL means the worker is gone.
    heartbeat_interval: float = Field(5.0, gt=0)
    heartbeat_ttl: float = Field(15.0, gt=0)

    # Redelivery: a task unacked after visibility_timeout is handed to another worker, so no
    # task may run longer than that (rule 2 of the design).
    visibility_timeout: int = Field(3600, gt=0)
    task_soft_time_limit: int = Field(3000, gt=0)
    task_time_limit: int = Field(3300, gt=0)

    recorder_lost_check_interval: float = Field(2.0, gt=0)
    lost_grace_seconds: float = Field(
        30.0,
        ge=0,
        description="How long a running job whose worker stopped beating, or that its live "
        "worker no longer runs, is left before it is marked lost or run again: longer than a "
        "Redis restart or a starved heartbeat.",
    )
    outcome_retry_seconds: float = Field(
        600.0,
        gt=0,
        description="How long a worker retries writing a job's events and outcome while "
        "Redis is unreachable (the job's thread waits meanwhile).",
    )
    outbox_grace_seconds: float = Field(
        2.0, ge=0, description="Age before the recorder republishes an unpublished job."
    )
    max_rerun_attempts: int = Field(2, ge=1, description="Attempts for kinds safe to re-run.")

    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=1, le=65535)
    api_url: str | None = Field(None, description="Where clients reach the API.")
    api_workers: int = Field(2, ge=1)
    api_threads: int = Field(16, ge=1)
    api_worker_class: Literal["gevent", "gthread"] = Field(
        "gevent",
        description="gunicorn worker class of the API. gevent (the default) holds each "
        "long-poll or event stream as a greenlet: thousands wait at once while other requests "
        "are served. gthread holds a thread for each, so past api_workers x api_threads "
        "waiters every other request queues behind them.",
    )
    max_body_bytes: int = Field(1024 * 1024, gt=0)
    upload_source_dirs: list[Path] = Field(
        default_factory=list,
        description="Directories volume.upload may import a source_path from, besides "
        "var_dir/images; JSON list in ORCH_UPLOAD_SOURCE_DIRS. Never a pool's directory: "
        "its files are other VMs' disks.",
    )
    max_upload_bytes: int = Field(
        256 * 1024**3,
        gt=0,
        description="Largest image accepted by PUT .../volumes/<name>/content (default 256 GiB).",
    )
    api_tokens: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Bootstrap bearer tokens -> scopes (jobs:read, jobs:submit, fleet:exec, "
        "inventories:write, hypervisors:admin, admin); JSON in ORCH_API_TOKENS. With neither "
        "these nor tokens made by `orchestrator tokens create`, the API needs no token: for "
        "a single machine with the API on loopback.",
    )
    api_insecure: bool = Field(
        False,
        description="Let the API listen beyond loopback with no token configured (anyone who "
        "reaches it may then do anything it can).",
    )
    rate_limit: str = Field(
        "1200/minute",
        description="Requests per token (per client address without tokens), as "
        "flask-limiter reads it; stored in Redis, so it holds across API processes.",
    )
    max_waiters_per_token: int = Field(
        100, ge=1, description="Long-polls and event streams one token may hold open at once."
    )
    max_concurrent_uploads: int = Field(
        4, ge=1, description="Images sent through the API at once, across all API processes."
    )

    # Confinement on the hypervisor: the worker runs as root there, so every host path a job
    # names must resolve inside these roots; system directories are refused whatever they say.
    pool_roots: list[Path] = Field(
        default_factory=lambda: [Path("/var/lib/libvirt/images")],
        description="Directories under which pool.ensure may create or adopt a pool (besides "
        "var_dir/pools); JSON list in ORCH_POOL_ROOTS.",
    )
    read_roots: list[Path] = Field(
        default_factory=lambda: [Path("/var/lib/libvirt/images"), Path("/var/lib/libvirt/boot")],
        description="Directories a domain may read host files from (ISOs, imported disks, "
        "kernels, initrds, display password files) besides managed pools and var_dir/images; "
        "JSON list in ORCH_READ_ROOTS.",
    )
    flower_port: int = Field(5555, ge=1, le=65535)
    flower_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s]+$",
        description="Flower's URL as operators reach it; when set, each job's links name its "
        "task's Flower page.",
    )
    flower_address: str = Field(
        "127.0.0.1", description="Where Flower listens; beyond loopback it needs basic auth."
    )
    flower_basic_auth: SecretStr | None = Field(
        None, description="user:password Flower asks for (ORCH_FLOWER_BASIC_AUTH)."
    )

    @model_validator(mode="after")
    def _time_limits_below_visibility(self) -> Settings:
        if not self.task_soft_time_limit <= self.task_time_limit < self.visibility_timeout:
            raise ValueError(
                "task_soft_time_limit <= task_time_limit < visibility_timeout must hold, got "
                f"{self.task_soft_time_limit}, {self.task_time_limit}, {self.visibility_timeout}"
            )
        if self.heartbeat_ttl <= self.heartbeat_interval:
            raise ValueError("heartbeat_ttl must be longer than heartbeat_interval")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments win over the environment, which wins over the TOML file.
        return (init_settings, env_settings, _TomlFileSource(settings_cls, env_settings))

    def placement_policy(self) -> PlacementPolicy:
        return PlacementPolicy(
            cpu_allocation_ratio=self.cpu_allocation_ratio,
            ram_allocation_ratio=self.ram_allocation_ratio,
            disk_allocation_ratio=self.disk_allocation_ratio,
            reserved_host_memory_mib=self.reserved_host_memory_mib,
            max_provisioning_per_host=self.max_provisioning_per_host or None,
        )

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir.resolve() / 'orchestrator.db'}"

    @property
    def allowed_upload_dirs(self) -> list[Path]:
        """Where volume.upload may read a source_path from: the configured directories and
        var_dir/images (not all of var_dir: it holds SSH keys, the database, other uploads)."""
        return [path.resolve() for path in [self.var_dir / "images", *self.upload_source_dirs]]

    @property
    def allowed_pool_roots(self) -> list[Path]:
        """Where pools may live: the configured roots and var_dir/pools (not var_dir itself:
        it holds the database, keys and spooled uploads), resolved."""
        return [path.resolve() for path in [*self.pool_roots, self.var_dir / "pools"]]

    @property
    def allowed_read_roots(self) -> list[Path]:
        """Where a domain may read host files from, besides managed pools, resolved."""
        return [path.resolve() for path in [*self.read_roots, self.var_dir / "images"]]

    @property
    def resolved_redis_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        password = local_redis_password(self.var_dir)
        auth = f":{password}@" if password else ""
        return f"redis://{auth}127.0.0.1:{LOCAL_REDIS_PORT}/0"

    @property
    def uses_local_redis(self) -> bool:
        return self.redis_url is None

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"

    @property
    def queue(self) -> str:
        return queue_for(self.hypervisor)


def local_redis_password_file(var_dir: Path) -> Path:
    """Where ``orchestrator up`` keeps the password of the Redis it starts (mode 0600)."""
    return var_dir.resolve() / "redis" / "password"


def local_redis_password(var_dir: Path) -> str | None:
    """The local Redis's password, once ``orchestrator up`` has made one."""
    try:
        return local_redis_password_file(var_dir).read_text().strip() or None
    except FileNotFoundError:
        return None


def queue_for(hypervisor: str) -> str:
    """The Celery queue a hypervisor's worker consumes."""
    return f"hv.{hypervisor}"


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the file named by ``config_file`` (argument or ``ORCH_CONFIG_FILE``)."""

    def __init__(self, settings_cls: type[BaseSettings], env: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = self.current_state.get("config_file") or self._env().get("config_file")
        if not path:
            return {}
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        return data.get("orchestrator", data)
