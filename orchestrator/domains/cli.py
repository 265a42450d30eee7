"""``orchestrator virt-install ARGS...``: a virt-install command line run as a ``domain.define``.

The options are virt-install's own (read by :func:`parse_virt_install`). ``--print-xml`` and
``--dry-run`` print the domain XML and change nothing. Otherwise the job goes to the API; like
virt-install, the command then waits for a cdrom or PXE install to finish (the guest powers off)
and starts the installed system, unless ``--noautoconsole`` is given, when it returns once the
domain runs. Files that ``--cloud-init`` names are read here and sent with the request.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from orchestrator.client import ApiClient, ApiError
from orchestrator.domains.dryrun import plan_define
from orchestrator.domains.spec import DomainSpec
from orchestrator.domains.suboptions import option_error
from orchestrator.domains.virtinstall import VirtInstallFlags, parse_virt_install
from orchestrator.errors import InvalidInput
from orchestrator.settings import Settings

_CLOUD_INIT_FILE_KEYS = ("user-data", "meta-data", "network-config", "clouduser-ssh-key", "ssh-key")
INSTALL_POLL_SECONDS = 5.0


@click.command(
    "virt-install",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.option("--hypervisor", help="Hypervisor to define the domain on (default: placement).")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def virt_install_command(hypervisor: str | None, timeout: float, args: tuple[str, ...]) -> None:
    """Define (and start) a domain from virt-install options, through the API."""
    try:
        spec, flags = parse_virt_install(list(args), files=cloud_init_files(args))
    except InvalidInput as exc:
        raise click.ClickException(exc.detail) from None
    for note in flags.notes:
        click.echo(f"note: {note}", err=True)
    client = ApiClient(Settings().resolved_api_url)
    try:
        if flags.print_xml or flags.dry_run:
            _print_xml(client, spec, flags, hypervisor)
            return
        _define(client, spec, flags, hypervisor, timeout)
    except ApiError as exc:
        raise click.ClickException(str(exc)) from None


def cloud_init_files(args: Sequence[str]) -> dict[str, str]:
    """The contents of the local files ``--cloud-init key=PATH,...`` names, by path."""
    files: dict[str, str] = {}
    values = [a.partition("=")[2] for a in args if a.startswith("--cloud-init=")]
    values += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--cloud-init"]
    for value in values:
        for item in value.split(","):
            key, _, path = item.partition("=")
            if key in _CLOUD_INIT_FILE_KEYS and path:
                try:
                    files[path] = Path(path).read_text(encoding="utf-8")
                except OSError as exc:
                    raise click.ClickException(f"--cloud-init {key}={path}: {exc}") from None
    return files


def request_params(spec: DomainSpec) -> dict[str, Any]:
    """The spec as ``domain.define`` parameters; InvalidInput for a literal display password,
    which a job may not carry (job parameters are stored and queued)."""
    if spec.graphics.password is not None:
        raise option_error(
            "--graphics",
            "password= may not be sent in a job (jobs are stored and queued); put the password "
            "in a file on the hypervisor and give password_file=PATH instead (--print-xml and "
            "--dry-run, which submit no job, accept password=)",
        )
    return spec.model_dump(mode="json")


def _print_xml(
    client: ApiClient, spec: DomainSpec, flags: VirtInstallFlags, hypervisor: str | None
) -> None:
    facts = client.get(f"/v1/hypervisors/{hypervisor}") if hypervisor else None
    try:
        plan = plan_define(spec, facts)
    except InvalidInput as exc:
        raise click.ClickException(exc.detail) from None
    if plan["os_variant"]["substituted"]:
        variant = plan["os_variant"]
        click.echo(f"note: os variant {variant['requested']} is {variant['resolved']}", err=True)
    if flags.dry_run and not flags.print_xml:
        for volume in plan["volumes"]:
            click.echo(f"would create {volume['pool']}/{volume['name']} ({volume['format']})")
        click.echo("dry run: nothing was changed")
        return
    if plan["install_xml"]:
        click.echo(plan["install_xml"], nl=False)
    click.echo(plan["xml"], nl=False)


def _define(
    client: ApiClient,
    spec: DomainSpec,
    flags: VirtInstallFlags,
    hypervisor: str | None,
    timeout: float,
) -> None:
    try:
        params = request_params(spec)
    except InvalidInput as exc:
        raise click.ClickException(exc.detail) from None
    body: dict[str, Any] = {"kind": "domain.define", "params": params}
    if hypervisor:
        body["hypervisor"] = hypervisor
    job = client.submit(body)
    click.echo(f"Starting install of {spec.name} (job {job['id']})...", err=True)
    done = _finished(client, job["id"], timeout)
    result = done["result"]
    where = done["hypervisor"]
    click.echo(_started_line(result, where))
    installs = spec.boot_source in ("cdrom", "pxe") and spec.start
    if flags.noautoconsole or not installs:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo("Waiting for the installation to complete.", err=True)
    _wait_for_power_off(client, where, spec.name, timeout)
    if spec.reboot_after_install:
        started = _finished(client, client.submit(_start_body(spec.name, where))["id"], timeout)
        click.echo(_started_line(started["result"], where))


def _finished(client: ApiClient, job_id: str, timeout: float) -> dict[str, Any]:
    done = client.wait(job_id, timeout=timeout)
    if done["state"] != "succeeded":
        error = done.get("error") or {}
        click.echo(json.dumps(error, indent=2), err=True)
        raise click.ClickException(f"job {job_id} {done['state']}: {error.get('detail')}")
    return done


def _start_body(name: str, hypervisor: str) -> dict[str, Any]:
    return {"kind": "domain.start", "hypervisor": hypervisor, "params": {"name": name}}


def _wait_for_power_off(client: ApiClient, hypervisor: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/v1/domains/{hypervisor}/{name}")["state"] == "shutoff":
            return
        time.sleep(INSTALL_POLL_SECONDS)
    click.echo(f"still installing after {timeout:g}s; the domain keeps running", err=True)
    sys.exit(1)


def _started_line(result: dict[str, Any], hypervisor: str) -> str:
    vnc = result.get("vnc") or {}
    display = f"; VNC {vnc['host']}:{vnc['port']}" if vnc.get("port") else ""
    return f"Domain {result['name']} is {result['state']} on {hypervisor}{display}"
