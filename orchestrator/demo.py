"""``orchestrator demo``: the stack on embedded defaults, real jobs through the API, then stop."""

from __future__ import annotations

import json

from rich.console import Console

from orchestrator.client import ApiClient
from orchestrator.demo_steps import Step, job_step
from orchestrator.demo_storage import STORAGE_STEPS
from orchestrator.settings import Settings
from orchestrator.stack import LocalStack, running_stack

console = Console()


def run_demo(settings: Settings) -> int:
    """Returns the exit status: 0 when every demo job succeeded."""
    with running_stack(settings) as stack:
        _print_endpoints(stack, settings)
        client = ApiClient(settings.resolved_api_url)
        outcomes = [_run_step(client, settings, name, step) for name, step in STEPS]
    console.print("[bold]stack stopped[/bold]")
    return 0 if all(outcomes) else 1


def _print_endpoints(stack: LocalStack, settings: Settings) -> None:
    console.print(f"[bold]API[/bold]     {settings.resolved_api_url}")
    console.print(f"[bold]Flower[/bold]  {stack.flower_url}")
    console.print(f"[bold]Logs[/bold]    {stack.logs}")


def _run_step(client: ApiClient, settings: Settings, name: str, step: Step) -> bool:
    console.rule(name)
    job = step(client, settings)
    ok = job["state"] == "succeeded"
    colour = "green" if ok else "red"
    console.print(f"job {job['id']} [{colour}]{job['state']}[/{colour}]")
    console.print_json(json.dumps(job["result"] if ok else job["error"]))
    return ok


STEPS: list[tuple[str, Step]] = [
    ("ping: a round trip through the local hypervisor's worker", job_step("ping")),
    ("hypervisor.facts: what libvirt says about this machine", job_step("hypervisor.facts")),
    *STORAGE_STEPS,
]
