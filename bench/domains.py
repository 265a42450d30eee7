"""Benchmark: define and start N real VMs through the API versus a virt-install shell loop.

Starts its own stack (redis-server on a free port, API, recorder, one worker on qemu:///system
with the qemu64 CPU that nested KVM runs), makes a directory pool holding a 512-byte boot-sector
base image, then submits N ``domain.define`` jobs (each a qcow2 overlay on the base) and waits
until all are running. Beside it, in the same run, a sequential shell loop of ``qemu-img create
-b base`` + ``virt-install --import --noautoconsole`` defines and starts the same N from its own
overlays, and, as the floor any orchestrator could reach on this host, libvirt-python creates the
same N overlays, defines and starts them from as many threads as the worker has, each thread on a
connection of its own. Every method's clock stops when libvirt has started all its N domains
(the API's when every job succeeded, a job ending after its domain started); each is then checked
to be in libvirt's running state and removed before the next method runs, so each starts from
the same host. Reports time-to-all-running per method (median over ``--rounds``), the API/shell
ratio, where the API jobs spent their time (from their events), writes
bench/results/domains.json, and removes every VM, pool, file and process it made, whatever
happens.

Usage: .venv/bin/python -m bench.domains [--count 10] [--concurrency 8] [--rounds 1]
(from the project root)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt

from bench.settings import bench_settings
from orchestrator.client import ApiClient
from orchestrator.local.bootsector import write_base_image
from orchestrator.local.processes import free_port, redis_server
from orchestrator.local.stack import LocalStack

RESULTS = Path(__file__).resolve().parent / "results" / "domains.json"
QEMU_URI = "qemu:///system"
HYPERVISOR = "bench-domains"
CPU = "qemu64,-svm"  # nested KVM aborts on host-passthrough and host-model
MEMORY_MIB = 64
API_METHOD = "API (domain.define jobs)"
SHELL_METHOD = "shell loop (qemu-img + virt-install)"
FLOOR_METHOD = "libvirt-python in parallel (floor)"


def vm_spec(name: str, pool: str) -> dict[str, Any]:
    disk = {"type": "new_volume", "pool": pool, "size_gib": 1 / 1024, "backing_volume": "base.img"}
    return {
        "name": name,
        "memory_mib": MEMORY_MIB,
        "vcpus": 1,
        "boot_source": "import",
        "disks": [{"source": disk}],
        "networks": [],
        "graphics": {"type": "vnc", "listen": "127.0.0.1"},
    }


def api_run(client: ApiClient, names: list[str], pool: str) -> dict[str, Any]:
    started_at = time.time()
    started = time.perf_counter()
    ids = [
        client.submit(
            {"kind": "domain.define", "hypervisor": HYPERVISOR, "params": vm_spec(n, pool)}
        )["id"]
        for n in names
    ]
    jobs = [client.wait(job_id, timeout=300) for job_id in ids]
    elapsed = time.perf_counter() - started
    failed = [job["error"] for job in jobs if job["state"] != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} define jobs failed, first: {failed[0]}")
    return {
        "method": API_METHOD,
        "seconds": round(elapsed, 3),
        "phases": api_phases(client, ids, started_at),
    }


# Each job's steps, by the event that ends them, in the order a define job reports them.
PHASES = (
    ("submit to claim", "running on "),
    ("claim to disk created", "created disk "),
    ("disk to domain defined", "defined domain "),
    ("define to domain started", "started domain "),
    ("started to job succeeded", "succeeded"),
)


def api_phases(client: ApiClient, ids: list[str], started_at: float) -> dict[str, Any]:
    """Median and maximum seconds per step over the jobs, from the times of their events."""
    spans: dict[str, list[float]] = {name: [] for name, _ in PHASES}
    for job_id in ids:
        events = client.events(job_id)
        previous = started_at
        for name, prefix in PHASES:
            times = [_seconds(e["time"]) for e in events if e["message"].startswith(prefix)]
            if times:
                spans[name].append(times[0] - previous)
                previous = times[0]
    return {
        name: {"median": round(statistics.median(v), 3), "max": round(max(v), 3)}
        for name, v in spans.items()
        if v
    }


def _seconds(value: float | str) -> float:
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return float(value)


def shell_run(names: list[str], directory: Path, base: Path) -> dict[str, Any]:
    lines = ["set -e"]
    for name in names:
        overlay = directory / f"{name}.qcow2"
        lines.append(
            f"qemu-img create -q -f qcow2 -b {shlex.quote(str(base))} -F raw "
            f"{shlex.quote(str(overlay))} 1M"
        )
        lines.append(
            f"virt-install --connect {QEMU_URI} --name {shlex.quote(name)} --memory {MEMORY_MIB} "
            f"--vcpus 1 --cpu {CPU} --import --disk path={shlex.quote(str(overlay))},format=qcow2 "
            "--network none --graphics vnc,listen=127.0.0.1 --noautoconsole "
            "--osinfo detect=on,require=off >/dev/null"
        )
    started = time.perf_counter()
    subprocess.run(["bash", "-c", "\n".join(lines)], check=True)
    elapsed = time.perf_counter() - started
    return {"method": SHELL_METHOD, "seconds": round(elapsed, 3)}


def floor_xml(name: str, overlay: str) -> str:
    """The guest the other methods define (generic OS as virt-install makes it), built with
    ElementTree so no value reaches the XML unescaped."""
    domain = ET.Element("domain", type="kvm")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = str(MEMORY_MIB)
    ET.SubElement(domain, "vcpu").text = "1"
    os_el = ET.SubElement(domain, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    ET.SubElement(os_el, "boot", dev="hd")
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    ET.SubElement(features, "apic")
    cpu = ET.SubElement(domain, "cpu", mode="custom", match="exact", check="none")
    ET.SubElement(cpu, "model", fallback="allow").text = "qemu64"
    ET.SubElement(cpu, "feature", policy="disable", name="svm")
    devices = ET.SubElement(domain, "devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=overlay)
    ET.SubElement(disk, "target", dev="hda", bus="ide")
    ET.SubElement(devices, "console", type="pty")
    ET.SubElement(devices, "input", type="tablet", bus="usb")
    ET.SubElement(devices, "graphics", type="vnc", autoport="yes", listen="127.0.0.1")
    ET.SubElement(ET.SubElement(devices, "video"), "model", type="vga")
    return ET.tostring(domain, encoding="unicode")


def overlay_xml(name: str, base: Path) -> str:
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(base.stat().st_size)
    ET.SubElement(ET.SubElement(volume, "target"), "format", type="qcow2")
    backing = ET.SubElement(volume, "backingStore")
    ET.SubElement(backing, "path").text = str(base)
    ET.SubElement(backing, "format", type="raw")
    return ET.tostring(volume, encoding="unicode")


def floor_run(names: list[str], pool: str, base: Path, concurrency: int) -> dict[str, Any]:
    """libvirt-python alone: overlay, define, start per VM, ``concurrency`` VMs at a time."""

    def one(name: str) -> None:
        conn = libvirt.open(QEMU_URI)  # a connection per thread: libvirtd serves few at once
        try:
            volume = conn.storagePoolLookupByName(pool).createXML(
                overlay_xml(f"{name}.qcow2", base), 0
            )
            conn.defineXML(floor_xml(name, volume.path())).create()
        finally:
            conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as threads:
        list(threads.map(one, names))
    elapsed = time.perf_counter() - started
    return {"method": FLOOR_METHOD, "seconds": round(elapsed, 3)}


def all_running(conn: libvirt.virConnect, names: list[str]) -> bool:
    return all(conn.lookupByName(n).state()[0] == libvirt.VIR_DOMAIN_RUNNING for n in names)


def remove_domains(conn: libvirt.virConnect, prefix: str) -> None:
    """Every domain whose name starts with ``prefix``: stopped and undefined."""
    for domain in conn.listAllDomains():
        if not domain.name().startswith(prefix):
            continue
        if domain.isActive():
            domain.destroy()
        if domain.isPersistent():
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


def remove_pools_under(conn: libvirt.virConnect, directory: Path) -> None:
    """Our pool, and any pool virt-install made for a directory of ours; no other."""
    for pool in conn.listAllStoragePools():
        target = ET.fromstring(pool.XMLDesc(0)).findtext("target/path") or ""
        if not target.startswith(f"{directory}/"):
            continue
        persistent = pool.isPersistent()
        if pool.isActive():
            pool.destroy()
        if persistent:
            pool.undefine()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="report each method's median")
    args = parser.parse_args()
    conn = libvirt.open(QEMU_URI)
    run_id = uuid.uuid4().hex[:6]
    prefix = f"bench-dom-{run_id}-"
    # Under /var/tmp so qemu, running as another user, can reach the images.
    work = Path(tempfile.mkdtemp(prefix="domains-bench-", dir="/var/tmp"))
    work.chmod(0o755)
    redis_port = free_port()
    redis = redis_server(redis_port, work / "redis", log_path=work / "var/logs/redis.log")
    stack = LocalStack(
        bench_settings(
            work,
            redis_port,
            HYPERVISOR,
            QEMU_URI,
            worker_concurrency=args.concurrency,
            cpu_mode=CPU,
        ),
        flower=False,
    )
    try:
        rows = run(args, conn, work, prefix, redis, stack)
    finally:
        stack.stop()
        redis.stop()
        remove_domains(conn, prefix)
        remove_pools_under(conn, work)
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    seconds = {row["method"]: row["seconds"] for row in rows}
    ratio = seconds[API_METHOD] / seconds[SHELL_METHOD]
    for row in rows:
        print(f"{row['method']:<40} {row['seconds']:>8.2f} s to all {args.count} running")
    print(f"API time / shell time: {ratio:.2f} (API {1 / ratio:.1f}x faster)")
    print(f"API time / floor time: {seconds[API_METHOD] / seconds[FLOOR_METHOD]:.2f}")
    write_report(args, rows, ratio)


def run(
    args: argparse.Namespace,
    conn: libvirt.virConnect,
    work: Path,
    prefix: str,
    redis: Any,
    stack: LocalStack,
) -> list[dict[str, Any]]:
    for sub in ("pool", "shell"):
        (work / sub).mkdir(mode=0o755)
    base = write_base_image(work / "pool" / "base.img")
    shell_base = write_base_image(work / "shell" / "base.img")
    pool = f"{prefix}pool"
    conn.storagePoolCreateXML(pool_xml(pool, work / "pool"), 0)
    redis.start()
    stack.start()
    client = ApiClient(stack.settings.resolved_api_url)
    methods = {
        SHELL_METHOD: lambda names: shell_run(names, work / "shell", shell_base),
        API_METHOD: lambda names: api_run(client, names, pool),
        FLOOR_METHOD: lambda names: floor_run(names, pool, base, args.concurrency),
    }
    rounds: dict[str, list[dict[str, Any]]] = {method: [] for method in methods}
    for number in range(args.rounds):
        for tag, (method, measure) in zip(("sh", "api", "lv"), methods.items(), strict=True):
            group = f"{prefix}r{number}-{tag}-"
            names = [f"{group}{i:02d}" for i in range(args.count)]
            row = measure(names)
            print(f"round {number + 1}, {method}: {row['seconds']} s", flush=True)
            assert all_running(conn, names), f"{method} left VMs not running"
            rounds[method].append(row)
            # Each method starts on the same host: no VM of an earlier one still running.
            remove_domains(conn, group)
    assert base.exists()
    return [summary(method, rows) for method, rows in rounds.items()]


def summary(method: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round's row, with every round's time."""
    ordered = sorted(rows, key=lambda row: row["seconds"])
    return {
        **ordered[(len(ordered) - 1) // 2],
        "method": method,
        "rounds": [r["seconds"] for r in rows],
    }


def pool_xml(name: str, directory: Path) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    ET.SubElement(ET.SubElement(pool, "target"), "path").text = str(directory)
    return ET.tostring(pool, encoding="unicode")


def write_report(args: argparse.Namespace, rows: list[dict[str, Any]], ratio: float) -> None:
    version = subprocess.run(["virt-install", "--version"], capture_output=True, text=True)
    seconds = {row["method"]: row["seconds"] for row in rows}
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "libvirt": libvirt.getVersion(),
            "virt_install": version.stdout.strip(),
            "kvm": os.path.exists("/dev/kvm"),
            "load_average": os.getloadavg(),
        },
        "count": args.count,
        "worker_concurrency": args.concurrency,
        "rounds": args.rounds,
        "guest": f"512-byte boot sector on a qcow2 overlay, {MEMORY_MIB} MiB, 1 vCPU, {CPU}",
        "note": "Time to all running, the median over rounds: API from the first submit until "
        "every define job succeeded (a job ends after its domain started); the shell loop "
        "around the sequential qemu-img + virt-install --noautoconsole loop; the floor around "
        "libvirt-python creating the overlays, defining and starting the domains from "
        "worker_concurrency threads. After each, every one of its domains is checked to be "
        "running, then removed. Per round: shell loop, API, floor. API phases: seconds between "
        "a job's events (submit to claim, ...), median and maximum over the jobs of the "
        "median round.",
        "rows": rows,
        "ratio_api_over_shell": round(ratio, 3),
        "ratio_api_over_floor": round(seconds[API_METHOD] / seconds[FLOOR_METHOD], 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
