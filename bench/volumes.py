"""Benchmark: qcow2 overlays on one base image through the API versus a qemu-img shell loop.

Starts its own stack (redis-server on a free port, API, recorder, one worker with concurrency 8
on qemu:///system), makes a directory pool with a ``pool.ensure`` job and a base volume, then
submits N ``volume.create`` overlay jobs from a few client threads and waits for all, then N
more with each client doing ``POST /v1/jobs?wait=`` (one request per job), then N more as one
``volume.create_many`` job. Beside them, in a fresh directory, a
sequential ``qemu-img create -f qcow2 -b base -F qcow2`` loop makes the same N overlays; last,
libvirt's storage API alone makes N more: the most the API path can reach, as its worker goes
through libvirt. Reports the CPU each process spent per volume (libvirtd includes the qemu-img
it runs), prints a table and writes bench/results/volumes.json; removes the pool, the volumes,
the directories and the processes whatever happens.

Usage: .venv/bin/python -m bench.volumes [--count 200] [--clients 4] [--concurrency 8]
       [--parallel 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt
import requests

from bench.cpu import CpuMeter, per_item_ms, pid_of
from bench.settings import bench_settings
from orchestrator.client import ApiClient
from orchestrator.local.processes import ServiceProcess, free_port, redis_server
from orchestrator.local.stack import LocalStack
from orchestrator.storage.volume_xml import VolumeDefinition, render_volume_xml

RESULTS = Path(__file__).resolve().parent / "results" / "volumes.json"
QEMU_URI = "qemu:///system"
HYPERVISOR = "bench"
BASE = "base.qcow2"
BASE_SIZE = "10G"
DIRECT_THREADS = 4  # the best of 1, 2, 4 and 8 threads on a 2-core machine


def overlay_name(index: int) -> str:
    return f"overlay-{index:04d}.qcow2"


def libvirtd_problem() -> str | None:
    """Why qemu:///system cannot be used, or None when libvirtd answers."""
    try:
        libvirt.open(QEMU_URI).close()
    except libvirt.libvirtError as exc:
        return f"libvirtd does not answer on {QEMU_URI} (start virtlogd -d and libvirtd -d): {exc}"
    return None


def run_job(client: ApiClient, kind: str, **params: Any) -> dict[str, Any]:
    body = {"kind": kind, "params": params, "hypervisor": HYPERVISOR}
    job = client.wait(client.submit(body)["id"], timeout=120)
    if job["state"] != "succeeded":
        raise RuntimeError(f"{kind} failed: {job['error']}")
    return job


def api_overlays(api_url: str, pool: str, count: int, clients: int) -> dict[str, Any]:
    """Submit ``count`` overlay jobs from ``clients`` threads, then wait for every one."""
    backing = f"{pool}/{BASE}"

    def submit_share(share: range) -> list[str]:
        client = ApiClient(api_url)
        return [
            client.submit(
                {
                    "kind": "volume.create",
                    "hypervisor": HYPERVISOR,
                    "params": {
                        "pool": pool,
                        "name": overlay_name(i),
                        "backing": backing,
                        "inspect": False,
                    },
                }
            )["id"]
            for i in share
        ]

    def wait_share(ids: list[str]) -> list[dict[str, Any]]:
        client = ApiClient(api_url)
        return [client.wait(job_id, timeout=300) for job_id in ids]

    shares = [range(start, count, clients) for start in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool_of_clients:
        id_lists = list(pool_of_clients.map(submit_share, shares))
        submitted = time.perf_counter() - started
        jobs = [job for done in pool_of_clients.map(wait_share, id_lists) for job in done]
    wall = time.perf_counter() - started
    failed = [job for job in jobs if job["state"] != "succeeded"]
    latencies = [_job_seconds(job) for job in jobs if job["finished_at"]]
    return result_row(
        "API (POST /v1/jobs volume.create, worker -> libvirt)",
        count,
        count - len(failed),
        wall,
        submit_s=round(submitted, 3),
        job_latency_p50_s=round(statistics.median(latencies), 3) if latencies else None,
        job_latency_p95_s=round(_p95(latencies), 3) if latencies else None,
        first_error=failed[0]["error"] if failed else None,
    )


def api_overlays_post_wait(api_url: str, pool: str, count: int, clients: int) -> dict[str, Any]:
    """``count`` overlay jobs, each ``POST /v1/jobs?wait=`` (one request per job, as CI does),
    from ``clients`` threads: ``clients`` jobs in flight at a time."""
    backing = f"{pool}/{BASE}"

    def run_share(share: range) -> list[dict[str, Any]]:
        http = requests.Session()
        done = []
        for i in share:
            params = {"pool": pool, "name": waited_name(i), "backing": backing, "inspect": False}
            body = {"kind": "volume.create", "hypervisor": HYPERVISOR, "params": params}
            done.append(http.post(f"{api_url}/v1/jobs", params={"wait": 60}, json=body).json())
        return done

    shares = [range(start, count, clients) for start in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool_of_clients:
        jobs = [job for done in pool_of_clients.map(run_share, shares) for job in done]
    wall = time.perf_counter() - started
    failed = [job for job in jobs if job.get("state") != "succeeded"]
    return result_row(
        f"API, POST ?wait per volume from {clients} clients",
        count,
        count - len(failed),
        wall,
        first_error=(failed[0].get("error") or failed[0]) if failed else None,
    )


def waited_name(index: int) -> str:
    return f"waited-{index:04d}.qcow2"


def api_batch_overlays(api_url: str, pool: str, count: int, parallel: int) -> dict[str, Any]:
    """The same number of overlays as one ``volume.create_many`` job, timed POST to finished."""
    client = ApiClient(api_url)
    names = [batch_name(i) for i in range(count)]
    started = time.perf_counter()
    job = run_job(
        client,
        "volume.create_many",
        pool=pool,
        names=names,
        backing=f"{pool}/{BASE}",
        parallel=parallel,
    )
    wall = time.perf_counter() - started
    made = len(job["result"]["created"])
    return result_row(f"API, one volume.create_many job ({parallel} at a time)", count, made, wall)


def batch_name(index: int) -> str:
    return f"batch-{index:04d}.qcow2"


def result_row(path: str, count: int, ok: int, wall: float, **extra: Any) -> dict[str, Any]:
    """One row of the report; the fields only the API path has stay None for the others."""
    row: dict[str, Any] = {
        "path": path,
        "count": count,
        "ok": ok,
        "wall_s": round(wall, 3),
        "submit_s": None,
        "rate_per_s": round(count / wall, 1),
        "job_latency_p50_s": None,
        "job_latency_p95_s": None,
        "first_error": None,
        "cpu_ms_per_volume": None,
    }
    return {**row, **extra}


def shell_overlays(directory: Path, count: int) -> dict[str, Any]:
    """The same overlays made one after another by a shell loop of qemu-img."""
    directory.mkdir()
    base = directory / BASE
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), BASE_SIZE], check=True)
    script = (
        'for i in $(seq -f "%04g" 0 $(($2 - 1))); do '
        'qemu-img create -q -f qcow2 -b "$1" -F qcow2 "overlay-$i.qcow2" || exit 1; done'
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script, "loop", str(base), str(count)], cwd=directory, check=True)
    wall = time.perf_counter() - started
    made = len(list(directory.glob("overlay-*.qcow2")))
    return result_row("shell loop (qemu-img create -f qcow2 -b base -F qcow2)", count, made, wall)


def direct_libvirt_overlays(pool: str, pool_dir: Path, count: int, threads: int) -> dict[str, Any]:
    """The same overlays through libvirt's storage API alone (no API, queue or recorder), with
    the XML the worker sends, from ``threads`` threads on one connection: libvirt's own ceiling."""
    conn = libvirt.open(QEMU_URI)
    try:
        target = conn.storagePoolLookupByName(pool)
        capacity = target.storageVolLookupByName(BASE).info()[1]

        def create(index: int) -> None:
            definition = VolumeDefinition(
                name=f"direct-{index:04d}.qcow2",
                capacity=capacity,
                format="qcow2",
                backing_path=str(pool_dir / BASE),
                backing_format="qcow2",
            )
            target.createXML(render_volume_xml(definition), 0)

        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as executor:
            list(executor.map(create, range(count)))
        wall = time.perf_counter() - started
    finally:
        conn.close()
    made = len(list(pool_dir.glob("direct-*.qcow2")))
    return result_row(f"libvirt createXML alone, {threads} threads (no API)", count, made, wall)


def check_overlays(pool_dir: Path, names: list[str]) -> None:
    """Every overlay exists and the last one really points at the base."""
    missing = [name for name in names if not (pool_dir / name).exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} overlays missing, e.g. {missing[0]}")
    info = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(pool_dir / names[-1])],
        capture_output=True,
        text=True,
        check=True,
    )
    if json.loads(info.stdout).get("backing-filename") != str(pool_dir / BASE):
        raise RuntimeError("an overlay does not point at the base image")


def remove_pool(name: str) -> None:
    """Delete the pool's volumes and the pool itself; a pool never made is fine."""
    conn = libvirt.open(QEMU_URI)
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        conn.close()
        return
    try:
        if pool.isActive():
            pool.refresh(0)
            for volume in pool.listAllVolumes():
                volume.delete(0)
            pool.destroy()
        pool.undefine()
    finally:
        conn.close()


def rate_ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each API path's rate over the shell loop's (the target: at least 1) and over libvirt's."""
    api, waited, batch, shell, direct = rows
    return {
        "api_jobs_over_shell": round(api["rate_per_s"] / shell["rate_per_s"], 3),
        "api_post_wait_over_shell": round(waited["rate_per_s"] / shell["rate_per_s"], 3),
        "api_batch_over_shell": round(batch["rate_per_s"] / shell["rate_per_s"], 3),
        "api_jobs_over_libvirt_alone": round(api["rate_per_s"] / direct["rate_per_s"], 3),
        "api_batch_over_libvirt_alone": round(batch["rate_per_s"] / direct["rate_per_s"], 3),
    }


def print_table(rows: list[dict[str, Any]], ratios: dict[str, float]) -> None:
    print(f"\n{'path':<58} {'ok':>5} {'wall s':>8} {'vol/s':>8}")
    for row in rows:
        print(f"{row['path']:<58} {row['ok']:>5} {row['wall_s']:>8.2f} {row['rate_per_s']:>8.1f}")
    for name, value in ratios.items():
        print(f"ratio {name.replace('_', ' ')} (rate): {value:.2f}")
    api = rows[0]
    print(
        f"API: all {api['count']} submitted in {api['submit_s']:.2f}s; job latency "
        f"p50 {api['job_latency_p50_s']}s, p95 {api['job_latency_p95_s']}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=4, help="volume.create_many's parallel")
    args = parser.parse_args()
    problem = libvirtd_problem()
    if problem:
        sys.exit(f"cannot run: {problem}")
    work = Path(tempfile.mkdtemp(prefix="volumes-bench-"))
    pool = f"bench-volumes-{uuid.uuid4().hex[:8]}"
    redis_port = free_port()
    redis = redis_server(redis_port, work / "redis", log_path=work / "var/logs/redis.log")
    stack = LocalStack(
        bench_settings(work, redis_port, HYPERVISOR, QEMU_URI, worker_concurrency=args.concurrency),
        flower=False,
    )
    try:
        rows = run(args, work, pool, redis, stack)
    finally:
        stack.stop()
        redis.stop()
        remove_pool(pool)
        shutil.rmtree(work, ignore_errors=True)
    ratios = rate_ratios(rows)
    print_table(rows, ratios)
    write_report(args, rows, ratios)


def run(
    args: argparse.Namespace, work: Path, pool: str, redis: ServiceProcess, stack: LocalStack
) -> list[dict[str, Any]]:
    started = time.perf_counter()
    redis.start()
    stack.start()
    print(f"stack up in {time.perf_counter() - started:.1f}s (logs in {stack.logs})", flush=True)
    client = ApiClient(stack.settings.resolved_api_url)
    pool_dir = work / "pool"
    run_job(client, "pool.ensure", name=pool, path=str(pool_dir), autostart=False)
    run_job(client, "volume.create", pool=pool, name=BASE, capacity=BASE_SIZE, inspect=False)
    shell = shell_overlays(work / "shell", args.count)
    print(f"shell loop: {shell['rate_per_s']} volumes/s", flush=True)
    pids = {service.name: service.pid for service in stack.services}
    meter = CpuMeter({**pids, "redis": redis.pid, "libvirtd": pid_of("libvirtd")})
    url = stack.settings.resolved_api_url

    def measured(
        label: str, make: Callable[[], dict[str, Any]], names: list[str]
    ) -> dict[str, Any]:
        """Run one API path under the CPU meter, then check its overlays on disk."""
        meter.start()
        row = make()
        row["cpu_ms_per_volume"] = per_item_ms(meter.stop(), args.count)
        print(f"{label}: {row['rate_per_s']} volumes/s ({row['ok']} ok)", flush=True)
        print(f"{label}: CPU ms per volume {row['cpu_ms_per_volume']}", flush=True)
        if row["first_error"]:
            raise RuntimeError(f"{label}: overlay jobs failed: {row['first_error']}")
        check_overlays(pool_dir, names)
        return row

    indexes = range(args.count)
    api = measured(
        "API",
        lambda: api_overlays(url, pool, args.count, args.clients),
        [overlay_name(i) for i in indexes],
    )
    waited = measured(
        "API POST ?wait",
        lambda: api_overlays_post_wait(url, pool, args.count, args.clients),
        [waited_name(i) for i in indexes],
    )
    batch = measured(
        "API batch",
        lambda: api_batch_overlays(url, pool, args.count, args.parallel),
        [batch_name(i) for i in indexes],
    )
    meter = CpuMeter(
        {"libvirtd": pid_of("libvirtd"), "benchmark": os.getpid()}, alone=["benchmark"]
    )
    meter.start()
    direct = direct_libvirt_overlays(pool, pool_dir, args.count, DIRECT_THREADS)
    direct["cpu_ms_per_volume"] = per_item_ms(meter.stop(), args.count)
    print(f"libvirt alone: CPU ms per volume {direct['cpu_ms_per_volume']}", flush=True)
    print(f"libvirt alone: {direct['rate_per_s']} volumes/s", flush=True)
    return [api, waited, batch, shell, direct]


def write_report(
    args: argparse.Namespace, rows: list[dict[str, Any]], ratios: dict[str, float]
) -> None:
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "qemu_img": _qemu_img_version(),
            "libvirt": libvirt.getVersion(),
        },
        "count": args.count,
        "clients": args.clients,
        "worker_concurrency": args.concurrency,
        "note": "Wall time from the first submit until every job was seen finished; the shell "
        "loop is timed around the loop only. Same machine, same run, fresh directories.",
        "parallel": args.parallel,
        "rows": rows,
        "ratios": ratios,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def _job_seconds(job: dict[str, Any]) -> float:
    created = datetime.fromisoformat(job["created_at"])
    finished = datetime.fromisoformat(job["finished_at"])
    return (finished - created).total_seconds()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def _qemu_img_version() -> str:
    out = subprocess.run(["qemu-img", "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


if __name__ == "__main__":
    main()
