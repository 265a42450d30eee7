"""The fleet part of ``orchestrator demo``: three throwaway sshd hosts on loopback
(127.0.0.242-244), an inventory of them stored through the API, ``uname -a`` on ``all`` as a
``fleet.run`` job with its recap printed; then the ``orchestrator`` CLI on the same hosts as CI
runs it (:mod:`orchestrator.local.demo_cli`); last, the sshd hosts stopped and their key removed.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator.client import ApiClient
from orchestrator.fleet.files import KEYS_AREA, fleet_files_dir
from orchestrator.local.demo_cli import failing_job_step, follow_live_step
from orchestrator.local.demo_steps import Step
from orchestrator.local.sshd_hosts import SshdFleet, SshdHost, missing_parts, start_fleet
from orchestrator.settings import Settings

INVENTORY = "demo-fleet"
KEY = "demo-fleet.key"  # in the worker's fleet-files/keys/, where API inventories name keys
HOSTS = 3
FIRST_OCTET = 240  # 127.0.0.242 onwards: clear of the addresses the fleet tests use

console = Console()


class DemoHosts:
    """The demo's sshd hosts, up from the first fleet step to the last."""

    def __init__(self) -> None:
        self.fleet: SshdFleet | None = None
        self.key: Path | None = None
        self.missing: str | None = None  # why they cannot run here, once start was tried

    def start(self, client: ApiClient, settings: Settings) -> None:
        """Start the hosts, give the worker their key, store the inventory of them."""
        self.missing = missing_parts()
        if self.missing:
            return
        self.fleet = start_fleet(HOSTS, FIRST_OCTET)
        self.key = _install_key(self.fleet, settings)
        console.print(f"started {HOSTS} sshd hosts: {', '.join(h.address for h in self.hosts)}")
        inventory = {"text": _inventory_text(self.fleet), "format": "ini"}
        stored = client.put(f"/v1/inventories/{INVENTORY}", inventory)
        console.print(f"stored inventory {INVENTORY!r} version {stored['version']}")

    @property
    def hosts(self) -> list[SshdHost]:
        return self.fleet.hosts if self.fleet is not None else []

    def skipped(self) -> dict[str, Any] | None:
        """The step's outcome when the hosts are not up: skipped, saying why."""
        if self.fleet is not None:
            return None
        detail = self.missing or "the sshd hosts did not start"
        return {"id": "-", "state": "skipped", "result": None, "error": {"detail": detail}}

    def params(self, call: dict[str, Any]) -> dict[str, Any]:
        """``fleet.run`` parameters running ``call`` on every host of the stored inventory."""
        assert self.fleet is not None
        options = {"known_hosts_files": [str(self.fleet.known_hosts)], "connect_retries": 0}
        return {"inventory_name": INVENTORY, "pattern": "all", "call": call, "options": options}

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
            self.fleet = None
            console.print("sshd hosts stopped")
        if self.key is not None:
            self.key.unlink(missing_ok=True)
            self.key = None


def uname_step(hosts: DemoHosts) -> Step:
    """Start the hosts, then run ``uname -a`` on ``all`` and print the recap."""

    def step(client: ApiClient, settings: Settings) -> dict[str, Any]:
        hosts.start(client, settings)
        skipped = hosts.skipped()
        if skipped:
            return skipped
        body = {
            "kind": "fleet.run",
            "hypervisor": settings.hypervisor,
            "params": hosts.params({"module": "command", "argv": ["uname", "-a"]}),
        }
        job = client.wait(client.submit(body)["id"], timeout=120)
        summary = job["result"] or (job["error"] or {}).get("result") or {}
        console.print(summary.get("recap_text", "(no recap)"))
        return job

    return step


def stopping_after(step: Step, hosts: DemoHosts) -> Step:
    """``step``, then the hosts stopped whatever it did."""

    def last(client: ApiClient, settings: Settings) -> dict[str, Any]:
        try:
            return step(client, settings)
        finally:
            hosts.stop()

    return last


def fleet_steps(cleanup: ExitStack) -> list[tuple[str, Step]]:
    """The fleet steps, in order; ``cleanup`` stops the hosts if the demo ends between them."""
    hosts = DemoHosts()
    cleanup.callback(hosts.stop)
    return [
        (
            "fleet.run: uname -a on three local sshd hosts, "
            "from an inventory stored through the API",
            uname_step(hosts),
        ),
        (
            "orchestrator submit fleet.run --wait: the hosts' output followed live, as CI sees it",
            follow_live_step(hosts),
        ),
        (
            "exit codes: a fleet command that fails on every host makes the CLI exit 1",
            stopping_after(failing_job_step(hosts), hosts),
        ),
    ]


def _install_key(fleet: SshdFleet, settings: Settings) -> Path:
    """The fleet's client key copied where the (local) worker looks for keys."""
    key = fleet_files_dir(settings) / KEYS_AREA / KEY
    key.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(fleet.client_key, key)
    key.chmod(0o600)
    return key


def _inventory_text(fleet: SshdFleet) -> str:
    lines = ["[demo]"]
    lines += [f"{h.name} ansible_host={h.address} ansible_port={h.port}" for h in fleet.hosts]
    lines += ["[demo:vars]", "ansible_user=root", f"ansible_private_key_file={KEY}"]
    return "\n".join(lines) + "\n"
