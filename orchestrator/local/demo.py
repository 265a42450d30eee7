"""``orchestrator demo``: the stack on embedded defaults, real jobs through the API, then stop."""

from __future__ import annotations

import json
from contextlib import ExitStack

import requests
from rich.console import Console

from orchestrator.client import ApiClient, ApiError
from orchestrator.local.demo_access import ACCESS_STEPS
from orchestrator.local.demo_domains import BASE_IMAGE_REMOVAL_STEP, DOMAIN_STEPS
from orchestrator.local.demo_fleet import fleet_steps
from orchestrator.local.demo_placement import placement_steps
from orchestrator.local.demo_steps import Step, job_step
from orchestrator.local.demo_storage import POOL_REMOVAL_STEP, STORAGE_STEPS
from orchestrator.local.stack import LocalStack, running_stack
from orchestrator.settings import Settings

console = Console()


def run_demo(settings: Settings) -> int:
    """Returns the exit status: 0 when every demo job succeeded or was skipped."""
    settings = demo_settings(settings)
    with running_stack(settings) as stack, ExitStack() as cleanup:
        _print_endpoints(stack, settings)
        client = ApiClient(settings.resolved_api_url)
        steps = demo_steps(stack, cleanup)
        outcomes = [_run_step(client, settings, name, step) for name, step in steps]
    console.print("[bold]stack stopped[/bold]")
    return 0 if all(outcomes) else 1


def demo_settings(settings: Settings) -> Settings:
    """The settings with a database of the demo's own, new on each run: the demo makes tokens,
    and a database that holds a token asks every later request for one."""
    database = settings.var_dir.resolve() / "demo" / "orchestrator.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    database.unlink(missing_ok=True)
    return settings.model_copy(update={"database_url": f"sqlite:///{database}"})


def _print_endpoints(stack: LocalStack, settings: Settings) -> None:
    console.print(f"[bold]API[/bold]     {settings.resolved_api_url}")
    console.print(f"[bold]Flower[/bold]  {stack.flower_url}")
    console.print(f"[bold]Logs[/bold]    {stack.logs}")
    console.print(f"[bold]Database[/bold] {settings.resolved_database_url} (the demo's own)")


def _run_step(client: ApiClient, settings: Settings, name: str, step: Step) -> bool:
    """Run one step and print its job; False only when it failed (a skip is not a failure)."""
    console.rule(name)
    try:
        job = step(client, settings)
    except (ApiError, requests.RequestException) as exc:
        # Reported as a failed step so the later steps, which remove what earlier ones made, run.
        console.print(f"[red]failed[/red]: {exc}")
        return False
    if job["state"] == "skipped":
        # A step skips when this machine lacks a part it needs; the error says which.
        console.print(f"[yellow]skipped[/yellow]: {(job.get('error') or {}).get('detail')}")
        return True
    ok = job["state"] == "succeeded"
    colour = "green" if ok else "red"
    if job.get("id"):
        console.print(f"job {job['id']} [{colour}]{job['state']}[/{colour}]")
    else:  # a step that is not one job: a command's output, or a refusal the API answered
        console.print("[green]as expected[/green]" if ok else "[red]not as expected[/red]")
    console.print_json(json.dumps(job["result"] if ok else job["error"]))
    return ok


def demo_steps(stack: LocalStack, cleanup: ExitStack) -> list[tuple[str, Step]]:
    """Every step, in order; the placement steps start a second worker into ``stack``, the
    fleet steps leave ``cleanup`` to stop their sshd hosts should the demo end among them."""
    return [
        ("ping: a round trip through the local hypervisor's worker", job_step("ping")),
        ("hypervisor.facts: what libvirt says about this machine", job_step("hypervisor.facts")),
        *STORAGE_STEPS,
        *DOMAIN_STEPS,
        *placement_steps(stack),
        BASE_IMAGE_REMOVAL_STEP,
        POOL_REMOVAL_STEP,
        *fleet_steps(cleanup),
        *ACCESS_STEPS,
    ]
