"""The ``orchestrator`` command line."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

import click

from orchestrator.settings import Settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Provision VMs and run fleet tasks across KVM hypervisors."""
    ctx.obj = {}


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@main.command()
@click.option("--host", help="Listen address (ORCH_API_HOST).")
@click.option("--port", type=int, help="Listen port (ORCH_API_PORT).")
def api(host: str | None, port: int | None) -> None:
    """Serve the HTTP API."""
    from orchestrator.access.errors import RefusedToServe
    from orchestrator.serve import serve_api

    try:
        serve_api(_settings(api_host=host, api_port=port))
    except RefusedToServe as exc:
        raise click.ClickException(exc.detail) from None


@main.command()
@click.option("--hypervisor", help="Name of the hypervisor this worker serves (queue hv.NAME).")
@click.option("--libvirt-uri", help="libvirt URI of that hypervisor.")
@click.option("--concurrency", type=int, help="Jobs run at once.")
@click.option("--loglevel", default="INFO", show_default=True)
def worker(
    hypervisor: str | None, libvirt_uri: str | None, concurrency: int | None, loglevel: str
) -> None:
    """Run a Celery worker for one hypervisor."""
    from workers.app import run_worker
    from workers.handlers.registry import UnhandledKinds

    settings = _settings(
        hypervisor=hypervisor, libvirt_uri=libvirt_uri, worker_concurrency=concurrency
    )
    try:
        run_worker(settings, loglevel)
    except UnhandledKinds as exc:
        raise click.ClickException(f"worker not started: {exc}") from None


@main.command()
def recorder() -> None:
    """Publish the outbox, persist job events, and reconcile lost jobs."""
    from orchestrator.serve import run_recorder

    run_recorder(_settings())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from orchestrator.db import upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at {settings.resolved_database_url} is at {revision}")


@main.command()
@click.option("--flower/--no-flower", default=True, help="Also start Flower.")
def up(flower: bool) -> None:
    """Run the whole local stack in the foreground until interrupted."""
    from orchestrator.local.stack import running_stack

    settings = _settings()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with running_stack(settings, flower=flower) as stack:
        click.echo(f"API     {settings.resolved_api_url}")
        if flower:
            click.echo(f"Flower  {stack.flower_url}")
        click.echo(f"Redis   {_without_password(settings.resolved_redis_url)}")
        click.echo(f"SQL     {_without_password(settings.resolved_database_url)}")
        click.echo(f"Logs    {stack.logs}")
        click.echo("A service that dies is started again. Ctrl-C stops everything.")
        stack.supervise(stop, click.echo)


@main.command()
def demo() -> None:
    """Start the stack, run real jobs through the API, print their results, stop."""
    from orchestrator.local.demo import run_demo

    sys.exit(run_demo(_settings()))


@main.command()
@click.argument("kind")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is read as JSON when it parses, else as a string.",
)
@click.option("--hypervisor", help="Hypervisor to run on.")
@click.option("--wait/--no-wait", default=False, help="Wait for the job to finish.")
@click.option("--timeout", type=float, default=300.0, show_default=True)
def submit(
    kind: str, params: tuple[str, ...], hypervisor: str | None, wait: bool, timeout: float
) -> None:
    """Submit a job of KIND through the API."""
    from orchestrator.client import ApiClient
    from orchestrator.jobs.lifecycle import JobState

    client = ApiClient(_settings().resolved_api_url)
    body: dict[str, Any] = {"kind": kind, "params": parse_params(params)}
    if hypervisor:
        body["hypervisor"] = hypervisor
    started = time.monotonic()
    # POST and wait in one request; a job still going after that is followed by long polls.
    job = client.submit(body, wait=min(timeout, 300.0) if wait else 0)
    if wait and not JobState(job["state"]).is_terminal:
        job = client.wait(job["id"], max(0.0, timeout - (time.monotonic() - started)))
    click.echo(json.dumps(job, indent=2))
    if wait and job["state"] != "succeeded":
        sys.exit(1)


@main.command()
@click.option("--state")
@click.option("--kind")
@click.option("--hypervisor")
@click.option("--limit", type=int, default=20, show_default=True)
def jobs(state: str | None, kind: str | None, hypervisor: str | None, limit: int) -> None:
    """List recent jobs."""
    from orchestrator.client import ApiClient

    client = ApiClient(_settings().resolved_api_url)
    filters = {"state": state, "kind": kind, "hypervisor": hypervisor, "limit": limit}
    for job in client.list_jobs({k: v for k, v in filters.items() if v is not None}):
        click.echo(f"{job['id']}  {job['state']:<9} {job['kind']:<20} {job['hypervisor']}")


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _attach_subcommands() -> None:
    from orchestrator.access.cli import audit_command, tokens_group
    from orchestrator.domains.cli import virt_install_command
    from orchestrator.inventory.cli import inventory_command

    main.add_command(tokens_group, "tokens")
    main.add_command(audit_command, "audit")
    main.add_command(inventory_command, "inventory")
    main.add_command(virt_install_command, "virt-install")


_attach_subcommands()


def _without_password(url: str) -> str:
    """``url`` as it may be printed: a password in it shows as ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
