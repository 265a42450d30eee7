"""Benchmark: define and start N real VMs through the API versus a virt-install shell loop.

Starts its own stack (redis-server on a free port, API, recorder, one worker on qemu:///system
with the qemu64 CPU that nested KVM runs), makes a directory pool holding a 512-byte boot-sector
base image, then submits N ``domain.define`` jobs (each a qcow2 overlay on the base) and waits
until all are running. Beside it, in the same run, a sequential shell loop of ``qemu-img create
-b base`` + ``virt-install --import --noautoconsole`` defines and starts the same N from its own
overlays. Reports time-to-all-running for both and their ratio, writes bench/results/domains.json,
and removes every VM, pool, file and process it made, whatever happens.

Usage: .venv/bin/python -m bench.domains [--count 10] [--concurrency 8]  (from the project root)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import libvirt

from bench.settings import bench_settings
from orchestrator.bootsector import write_base_image
from orchestrator.client import ApiClient
from orchestrator.processes import free_port, redis_server
from orchestrator.stack import LocalStack

RESULTS = Path(__file__).resolve().parent / "results" / "domains.json"
QEMU_URI = "qemu:///system"
HYPERVISOR = "bench-domains"
CPU = "qemu64,-svm"  # nested KVM aborts on host-passthrough and host-model
MEMORY_MIB = 64


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
    return {"method": "API (domain.define jobs)", "seconds": round(elapsed, 3)}


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
    return {"method": "shell loop (qemu-img + virt-install)", "seconds": round(elapsed, 3)}


def all_running(conn: libvirt.virConnect, names: list[str]) -> bool:
    return all(conn.lookupByName(n).state()[0] == libvirt.VIR_DOMAIN_RUNNING for n in names)


def remove_domains(conn: libvirt.virConnect, prefix: str) -> None:
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
    ratio = rows[0]["seconds"] / rows[1]["seconds"]
    for row in rows:
        print(f"{row['method']:<40} {row['seconds']:>8.2f} s to all {args.count} running")
    print(f"API time / shell time: {ratio:.2f}")
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
    conn.storagePoolCreateXML(
        f"<pool type='dir'><name>{pool}</name><target><path>{work / 'pool'}</path></target></pool>",
        0,
    )
    redis.start()
    stack.start()
    client = ApiClient(stack.settings.resolved_api_url)
    api_names = [f"{prefix}api-{i:02d}" for i in range(args.count)]
    shell_names = [f"{prefix}sh-{i:02d}" for i in range(args.count)]
    shell = shell_run(shell_names, work / "shell", shell_base)
    print(f"shell loop: {shell['seconds']} s", flush=True)
    assert all_running(conn, shell_names), "virt-install left VMs not running"
    api = api_run(client, api_names, pool)
    print(f"API: {api['seconds']} s", flush=True)
    assert all_running(conn, api_names), "the API left VMs not running"
    assert base.exists()
    return [api, shell]


def write_report(args: argparse.Namespace, rows: list[dict[str, Any]], ratio: float) -> None:
    version = subprocess.run(["virt-install", "--version"], capture_output=True, text=True)
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "libvirt": libvirt.getVersion(),
            "virt_install": version.stdout.strip(),
            "kvm": os.path.exists("/dev/kvm"),
        },
        "count": args.count,
        "worker_concurrency": args.concurrency,
        "guest": f"512-byte boot sector on a qcow2 overlay, {MEMORY_MIB} MiB, 1 vCPU, {CPU}",
        "note": "Time to all running: API from the first submit until every define job "
        "succeeded (a job ends after the domain started); the shell loop is timed around the "
        "sequential qemu-img + virt-install --noautoconsole loop. Shell loop first, same run.",
        "rows": rows,
        "ratio_api_over_shell": round(ratio, 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
