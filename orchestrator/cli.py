"""The ``orchestrator`` command line."""

from __future__ import annotations

import signal
import sys
import threading
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


def _attach_subcommands() -> None:
    from orchestrator.access.cli import audit_command, tokens_group
    from orchestrator.domains.cli import virt_install_command
    from orchestrator.inventory.cli import inventory_command
    from orchestrator.jobcli.commands import (
        cancel_command,
        jobs_command,
        logs_command,
        submit_command,
    )

    main.add_command(submit_command, "submit")
    main.add_command(logs_command, "logs")
    main.add_command(cancel_command, "cancel")
    main.add_command(jobs_command, "jobs")
    main.add_command(tokens_group, "tokens")
    main.add_command(audit_command, "audit")
    main.add_command(inventory_command, "inventory")
    main.add_command(virt_install_command, "virt-install")


_attach_subcommands()


def _without_password(url: str) -> str:
    """``url`` as it may be printed: a password in it shows as ``***``."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
