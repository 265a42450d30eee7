"""Job kinds that run an Ansible-style module on the hosts an inventory pattern selects.

``fleet.run`` runs any module (its commands have side effects, so it is never re-run after a
lost worker); ``fleet.ping`` only connects and authenticates, so it is safe to re-run.
The inventory is a file on the worker (``inventory_path``), inline text (``inventory``), or a
version stored through the API (``inventory_name``), which the API turns into inline text
before the job is stored. Worker-side paths follow :mod:`orchestrator.fleet.files`; secrets kept
on the worker follow :mod:`orchestrator.fleet.secret_binding`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from orchestrator.errors import InvalidInput
from orchestrator.fleet.calls import AnyCall, CopyCall, FetchCall, ModuleCall, ScriptCall
from orchestrator.fleet.files import KNOWN_HOSTS_AREA, check_config_path, check_relative_path
from orchestrator.fleet.inventory_rules import (
    MAX_INVENTORY_CHARS,
    InventoryFormat,
    parse_api_inventory,
)
from orchestrator.fleet.options import FleetOptions
from orchestrator.kinds.registry import JobParams, job_kind

ConfigPath = Annotated[
    str,
    AfterValidator(check_config_path),
    Field(
        max_length=4096,
        description="Path relative to the worker's var_dir/fleet-files/, outside its files/, "
        "keys/, fetched/ and known_hosts/ areas.",
    ),
]
HostPattern = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\x00\n\r]*$")]
INVENTORY_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class FleetTargetParams(JobParams):
    """Which hosts, from which inventory, with which connection options."""

    pattern: HostPattern = Field("all", description="Ansible host pattern, e.g. 'web:&prod'.")
    limit: HostPattern | None = Field(None, description="Further restriction, as --limit.")
    inventory_path: ConfigPath | None = Field(
        None,
        description="The operator's inventory file or directory on the worker (may hold "
        "passwords).",
    )
    inventory_format: InventoryFormat | None = Field(
        None, description="Format of `inventory`; detected when omitted."
    )
    inventory_name: str | None = Field(
        None,
        pattern=INVENTORY_NAME,
        description="An inventory stored with PUT /v1/inventories/<name>; the API replaces it "
        "with its text and records the version used.",
    )
    # After format and name, so that its validator can read them.
    inventory: str | None = Field(
        None,
        max_length=MAX_INVENTORY_CHARS,
        description="Inventory text (INI or YAML); must not hold passwords.",
    )
    inventory_version: int | None = Field(
        None, ge=1, description="Version of `inventory_name`; the latest when omitted."
    )
    vars_dir: ConfigPath | None = Field(
        None,
        description="The operator's inventory directory on the worker: its group_vars/ and "
        "host_vars/ complete the inventory, and its secrets reach only the hosts its own "
        "inventory files declare, at the address, port and user declared there.",
    )
    builtin_groups: bool = Field(
        False,
        description="Add the registry's hypervisors as group 'hypervisors' (also in 'all').",
    )
    options: FleetOptions = Field(default_factory=FleetOptions)
    relaunch_of: str | None = Field(
        None, max_length=36, description="The earlier job this one re-runs (set by relaunch)."
    )

    @model_validator(mode="after")
    def _one_inventory(self) -> FleetTargetParams:
        if self.inventory_path is not None:
            if self.inventory is not None or self.inventory_name is not None:
                raise ValueError("give inventory_path, or inventory / inventory_name, not both")
            if self.vars_dir is not None:
                raise ValueError("vars_dir completes an inline inventory, not inventory_path")
        elif self.inventory is None and self.inventory_name is None:
            raise ValueError("one of inventory_path, inventory or inventory_name is required")
        if self.inventory_version is not None and self.inventory_name is None:
            raise ValueError("inventory_version needs inventory_name")
        return self

    @field_validator("inventory")
    @classmethod
    def _inline_parses_without_passwords(cls, text: str | None, info: ValidationInfo) -> str | None:
        if text is not None:
            name = info.data.get("inventory_name")
            source = f"inventory {name}" if name else "inventory"
            try:
                parse_api_inventory(text, info.data.get("inventory_format"), source=source)
            except InvalidInput as exc:
                raise ValueError(exc.detail) from None
        return text

    @field_validator("options")
    @classmethod
    def _known_hosts_confined(cls, options: FleetOptions) -> FleetOptions:
        if options.known_hosts_store is not None:
            _confined(check_relative_path, options.known_hosts_store, "known_hosts_store")
        for path in options.known_hosts_files:
            if not path.startswith(("/", "~")):  # absolute ones are only read, as they are
                _confined(_known_hosts_file, path, "known_hosts_files")
        return options


@job_kind(
    "fleet.run",
    "Run one module (command, shell, script, copy, fetch, ping) on the hosts an inventory "
    "pattern selects; per-host results and an Ansible-style recap.",
)
class FleetRunParams(FleetTargetParams):
    call: ModuleCall = Field(description="The module and its arguments.")

    @field_validator("call")
    @classmethod
    def _local_paths_confined(cls, call: AnyCall) -> AnyCall:
        for field, value in local_paths(call).items():
            _confined(check_relative_path, value, field)
        return call


@job_kind(
    "fleet.ping",
    "Connect and authenticate to the hosts an inventory pattern selects (changes nothing).",
    safe_to_rerun=True,
)
class FleetPingParams(FleetTargetParams):
    pass


def local_paths(call: AnyCall) -> dict[str, str]:
    """The worker-side paths a call names, by field."""
    if isinstance(call, ScriptCall):
        return {"path": call.path}
    if isinstance(call, CopyCall):
        return {"src": call.src}
    if isinstance(call, FetchCall):
        return {"dest": call.dest}
    return {}


def _known_hosts_file(path: str) -> str:
    return check_config_path(path, allow=KNOWN_HOSTS_AREA)


def _confined(check: Callable[[str], str], value: str, field: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise ValueError(f"{field} {exc}") from None
