"""The fleet part of ``orchestrator demo``: three throwaway sshd hosts on loopback
(127.0.0.242-244), an inventory of them stored through the API, ``uname -a`` on ``all`` as a
``fleet.run`` job, its recap printed, then the sshd hosts stopped and their keys removed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import requests
from rich.console import Console

from orchestrator.client import ApiClient, ApiError
from orchestrator.fleet.files import KEYS_AREA, fleet_files_dir
from orchestrator.local.demo_steps import Step
from orchestrator.local.sshd_hosts import SshdFleet, missing_parts, start_fleet
from orchestrator.settings import Settings

INVENTORY = "demo-fleet"
KEY = "demo-fleet.key"  # in the worker's fleet-files/keys/, where API inventories name keys
HOSTS = 3
FIRST_OCTET = 240  # 127.0.0.242 onwards: clear of the addresses the fleet tests use

console = Console()


def uname_on_local_hosts(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Start the hosts, store the inventory, run ``uname -a`` on ``all``; always stop them."""
    reason = missing_parts()
    if reason:
        return {"id": "-", "state": "skipped", "result": None, "error": {"detail": reason}}
    fleet = start_fleet(HOSTS, FIRST_OCTET)
    key = _install_key(fleet, settings)
    try:
        console.print(f"started {HOSTS} sshd hosts: {', '.join(h.address for h in fleet.hosts)}")
        stored = _put_inventory(client, _inventory_text(fleet))
        console.print(f"stored inventory {INVENTORY!r} version {stored['version']}")
        job = _run_uname(client, settings, fleet)
        summary = job["result"] or (job["error"] or {}).get("result") or {}
        console.print(summary.get("recap_text", "(no recap)"))
        return job
    finally:
        fleet.stop()
        key.unlink(missing_ok=True)
        console.print("sshd hosts stopped")


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


def _put_inventory(client: ApiClient, text: str) -> dict[str, Any]:
    url = f"{client.base_url}/v1/inventories/{INVENTORY}"
    response = client.http.put(url, json={"text": text, "format": "ini"}, timeout=30)
    if response.status_code >= 400:
        raise ApiError(_problem(response))
    stored: dict[str, Any] = response.json()
    return stored


def _run_uname(client: ApiClient, settings: Settings, fleet: SshdFleet) -> dict[str, Any]:
    body = {
        "kind": "fleet.run",
        "hypervisor": settings.hypervisor,
        "params": {
            "inventory_name": INVENTORY,
            "pattern": "all",
            "call": {"module": "command", "argv": ["uname", "-a"]},
            "options": {"known_hosts_files": [str(fleet.known_hosts)], "connect_retries": 0},
        },
    }
    return client.wait(client.submit(body)["id"], timeout=120)


def _problem(response: requests.Response) -> dict[str, Any]:
    try:
        problem: dict[str, Any] = response.json()
    except ValueError:
        problem = {"status": response.status_code, "detail": response.text}
    return problem


FLEET_STEPS: list[tuple[str, Step]] = [
    (
        "fleet.run: uname -a on three local sshd hosts, from an inventory stored through the API",
        uname_on_local_hosts,
    ),
]
