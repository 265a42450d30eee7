"""The domain part of ``orchestrator demo``: a real VM on the local hypervisor, booted from a
512-byte boot sector (:mod:`orchestrator.local.bootsector`), proven alive by the marker it writes to
its serial console, then destroyed and undefined with its disk. The base image serves the
placement steps (:mod:`orchestrator.local.demo_placement`) too, and is deleted after them
(:data:`BASE_IMAGE_REMOVAL_STEP`).

The base image is written under ``var/images`` and imported into the demo pool by a
``volume.upload`` job; the VM boots a qcow2 overlay on it. Its serial console is a file under
``var/consoles``, where a worker lets consoles be written, beside the pool rather than in it,
since every file in a directory pool is listed as one of its volumes. The demo reads that file
itself: it runs on the hypervisor.

The VM's CPU is given in its spec, qemu64 without svm, instead of the worker's ``cpu_mode``
(default host-passthrough): that model boots under KVM, nested KVM (where host-passthrough and
host-model abort qemu) and TCG alike, so the demo needs no configuration.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator.client import ApiClient, ApiError
from orchestrator.local.bootsector import MARKER, write_base_image
from orchestrator.local.demo_steps import Step, job_step
from orchestrator.local.demo_storage import demo_pool
from orchestrator.settings import Settings

VM = "orchestrator-demo-vm"
BASE_IMAGE = "demo-boot-sector.img"
OVERLAY = f"{VM}.qcow2"
IMAGE_BYTES = 1024 * 1024
DEMO_CPU = {"mode": "custom", "model": "qemu64", "disabled_features": ["svm"]}
BOOT_TIMEOUT = 60.0

console = Console()


def staging_image(settings: Settings) -> Path:
    """Where the raw image is written before the upload job imports it into the pool."""
    return settings.var_dir.resolve() / "images" / BASE_IMAGE


def serial_log(settings: Settings) -> Path:
    return settings.var_dir.resolve() / "consoles" / f"{VM}.serial.log"


def vm_spec(settings: Settings) -> dict[str, Any]:
    """``domain.define`` parameters: no network, VNC on loopback, console to a file."""
    overlay = {
        "type": "new_volume",
        "pool": demo_pool(settings),
        "name": OVERLAY,
        "size_gib": IMAGE_BYTES / 1024**3,
        "backing_volume": BASE_IMAGE,
    }
    return {
        "name": VM,
        "vcpus": 1,
        "memory_mib": 64,
        "cpu": DEMO_CPU,
        "boot_source": "import",
        "disks": [{"source": overlay}],
        "networks": [],
        "graphics": {"type": "vnc", "listen": "127.0.0.1"},
        "serials": [{"type": "file", "path": str(serial_log(settings))}],
    }


def import_base_image(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Write the raw boot-sector image, import it with ``volume.upload``, drop the staging file."""
    source = staging_image(settings)
    source.parent.mkdir(parents=True, exist_ok=True)
    write_base_image(source, size=IMAGE_BYTES)
    params = {
        "pool": demo_pool(settings),
        "name": BASE_IMAGE,
        "source_path": str(source),
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "format": "raw",
    }
    try:
        return _run(client, settings, "volume.upload", params)
    finally:
        source.unlink(missing_ok=True)
        _remove_empty_dir(source.parent)


def boot_vm(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Define and start the VM, wait for its marker, read its VNC port through the API.

    The returned job is ``domain.define``'s, its result extended by ``demo_checks``: the marker
    read from the serial console and the VNC port ``GET /v1/domains/<hv>/<name>`` reports.
    """
    failed = _remove_leftover_vm(client, settings)
    if failed is not None:
        return failed
    log = serial_log(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)  # an earlier run's marker must not count
    console.print(
        f"{VM}: 1 vCPU, 64 MiB, no network, VNC on 127.0.0.1 (autoport), serial console to "
        f"{log}, a qcow2 overlay on {demo_pool(settings)}/{BASE_IMAGE}; CPU qemu64 without svm, "
        "set in the spec: it boots under KVM, nested KVM and TCG alike, whatever ORCH_CPU_MODE says"
    )
    job = _run(client, settings, "domain.define", vm_spec(settings))
    if job["state"] != "succeeded":
        return job
    return _with_boot_checks(client, settings, job, log)


def _with_boot_checks(
    client: ApiClient, settings: Settings, job: dict[str, Any], log: Path
) -> dict[str, Any]:
    if not wait_for_marker(log, BOOT_TIMEOUT):
        detail = f"domain.define succeeded, but the guest wrote no {MARKER!r} to {log} "
        detail += f"within {BOOT_TIMEOUT:.0f} s"
        return {
            **job,
            "state": "failed",
            "error": {"title": "guest did not boot", "detail": detail},
        }
    path = f"/v1/domains/{settings.hypervisor}/{VM}"
    vnc = client.get(path)["vnc"]
    console.print(f"serial console {log}: [bold]{MARKER.decode()}[/bold]")
    console.print(f"VNC {vnc['host']}:{vnc['port']} (from GET {path})")
    checks = {"serial_marker": MARKER.decode(), "vnc_port": vnc["port"], "vnc_from": f"GET {path}"}
    return {**job, "result": {**job["result"], "demo_checks": checks}}


def wait_for_marker(path: Path, timeout: float) -> bool:
    """Whether the marker appears in ``path`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and MARKER in path.read_bytes():
            return True
        time.sleep(0.2)
    return False


def remove_vm(client: ApiClient, settings: Settings) -> dict[str, Any]:
    """Undefine the VM and delete its overlay; its serial console file goes too."""
    job = _run(client, settings, "domain.undefine", {"name": VM, "remove_storage": True})
    if job["state"] == "succeeded":
        log = serial_log(settings)
        log.unlink(missing_ok=True)
        _remove_empty_dir(log.parent)
    return job


def _remove_leftover_vm(client: ApiClient, settings: Settings) -> dict[str, Any] | None:
    """Destroy and undefine a VM an interrupted run left; the failed job if that fails."""
    try:
        client.get(f"/v1/domains/{settings.hypervisor}/{VM}")
    except ApiError as exc:
        if exc.problem.get("status") == 404:
            return None
        raise
    console.print(f"{VM} is left from an earlier run: destroying and undefining it first")
    for kind, params in (
        ("domain.destroy", {"name": VM}),
        ("domain.undefine", {"name": VM, "remove_storage": True}),
    ):
        job = _run(client, settings, kind, params)
        if job["state"] != "succeeded":
            return job
    return None


def _run(
    client: ApiClient, settings: Settings, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    return job_step(kind, params)(client, settings)


def _remove_empty_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or gone already: either is fine
        directory.rmdir()


DOMAIN_STEPS: list[tuple[str, Step]] = [
    (
        "volume.upload: a 1 MiB raw boot-sector image, imported into the demo pool",
        import_base_image,
    ),
    ("domain.define: a boot-sector VM on CPU qemu64 minus svm (KVM, nested, TCG)", boot_vm),
    (
        "domain.destroy: stop the VM at once (a boot sector ignores ACPI)",
        job_step("domain.destroy", {"name": VM}),
    ),
    ("domain.undefine: remove the VM with its overlay disk (remove_storage)", remove_vm),
]


BASE_IMAGE_REMOVAL_STEP: tuple[str, Step] = (
    "volume.delete: the boot-sector base image",
    job_step("volume.delete", lambda settings: {"pool": demo_pool(settings), "name": BASE_IMAGE}),
)
