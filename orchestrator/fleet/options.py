"""How a fleet run behaves: parallelism, timeouts, retries, host key policy, batches, caps."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.fleet.output_caps import JOB_CAP_BYTES, STREAM_CAP_BYTES

HostKeyPolicy = Literal["strict", "accept-new", "off"]

# One batch size as Ansible's ``serial`` writes it: a host count or a percentage of the hosts.
BatchSize = Annotated[int, Field(ge=1)] | Annotated[str, Field(pattern=r"^\d{1,3}(\.\d+)?%$")]


class FleetOptions(BaseModel):
    """Options of one ``run_fleet`` call; every field is checked with a message naming it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # 10 rather than Ansible's 5: warm connections make each host cheap, and most of a cold
    # connection is network wait, which threads overlap well even on a 2-core worker.
    forks: int = Field(10, ge=1, le=500, description="Hosts worked on at the same time.")
    connect_timeout: float = Field(
        10.0, gt=0, le=300, description="Seconds for TCP connect and the SSH banner/handshake."
    )
    auth_timeout: float = Field(15.0, gt=0, le=300, description="Seconds for authentication.")
    command_timeout: float = Field(
        600.0, gt=0, le=86400, description="Seconds a module's remote command may run."
    )
    connect_retries: int = Field(
        1, ge=0, le=10, description="Extra attempts after a refused or timed out connection."
    )
    retry_delay: float = Field(0.5, ge=0, le=60, description="Seconds between connect attempts.")
    # A run that would send a password to any host must be strict (see secret_binding).
    host_key_policy: HostKeyPolicy = "strict"
    # Paths stay as written: "~" means the worker's home, so it is expanded on the worker.
    known_hosts_files: tuple[str, ...] = Field(
        ("~/.ssh/known_hosts",),
        description="Read-only known_hosts files (missing ones skipped); a relative path is "
        "relative to the worker's fleet-files/.",
    )
    known_hosts_store: str | None = Field(
        None,
        description="The product's own known_hosts file, relative to the worker's "
        "fleet-files/known_hosts/; accept-new records new keys here.",
    )
    max_fail_percentage: float | None = Field(
        None, ge=0, le=100, description="Stop later batches once more than this % of a batch fails."
    )
    serial: BatchSize | list[BatchSize] | None = Field(
        None, description="Batch sizes like Ansible's serial: 5, '30%' or [1, 5, '50%']."
    )
    output_cap_bytes: int = Field(
        STREAM_CAP_BYTES,
        ge=1024,
        le=JOB_CAP_BYTES,
        description="Bytes of output kept per stream (stdout, stderr) per host, as the command "
        "wrote them; what goes past is counted in the result's *_dropped_bytes.",
    )
    job_output_cap_bytes: int = Field(
        JOB_CAP_BYTES,
        ge=1024,
        le=JOB_CAP_BYTES,
        description="Bytes of output the whole job keeps over all its hosts, as stored (JSON); "
        "also caps its output events. Past it hosts keep less, and the result says so.",
    )
    remote_tmp: str = Field("/tmp", pattern=r"^/[^\x00\n]*$", description="Remote temp directory.")

    @field_validator("serial")
    @classmethod
    def _serial_not_empty(cls, serial: object) -> object:
        if isinstance(serial, list) and not serial:
            raise ValueError("must not be an empty list")
        return serial

    @model_validator(mode="after")
    def _store_for_accept_new(self) -> FleetOptions:
        if self.host_key_policy == "accept-new" and not self.known_hosts_store:
            raise ValueError("known_hosts_store is required when host_key_policy is accept-new")
        return self


def plan_batches(hosts: list[str], serial: BatchSize | list[BatchSize] | None) -> list[list[str]]:
    """Split hosts into batches as Ansible's ``serial`` does; the last size repeats."""
    if serial is None:
        return [list(hosts)] if hosts else []
    sizes = serial if isinstance(serial, list) else [serial]
    batches: list[list[str]] = []
    start = 0
    for index in range(len(hosts)):
        if start >= len(hosts):
            break
        size = _batch_size(sizes[min(index, len(sizes) - 1)], len(hosts))
        batches.append(hosts[start : start + size])
        start += size
    return batches


def _batch_size(size: int | str, total: int) -> int:
    if isinstance(size, int):
        return size
    # Ansible rounds a percentage down but never below one host.
    return max(1, int(total * float(size[:-1]) / 100))
