"""Benchmark: ``vm.provision`` with ``count``: 200 VMs over four hypervisors beside libvirt alone,
and 10 real VMs beside a virt-install loop, each pair in the same run.

1. Fleet. Four libvirt test-driver hypervisors (``test:///<node>.xml``: 512 CPUs, 64 GiB and a
   dir pool ``default`` under the stack's ``var/pools`` holding ``base.qcow2``), each served by
   its own worker process, on a stack of their own (redis-server on a free port, API, recorder).
   ``--vms`` VMs (64 MiB, one vCPU, a 64 MiB qcow2 overlay on the base image, no NIC, no display,
   ``wait_for: running``) are asked for as ``--requests`` count requests posted at once. The
   clock runs from the first POST until every parent ended (``GET /v1/jobs/<parent>?wait=``); a
   parent ends once all its children did, a child once its domain runs. Every parent must have
   succeeded with all its children, and ``GET /v1/domains`` must then list every VM running.
   Reported as VMs per minute (target: 2,000), with the POSTs' times, where the children spent
   theirs, and the CPU each process spent per VM.
   The anchor, in the same round: libvirt-python alone makes the same VMs (a volume on the base
   image, define, start) on four test-driver connections to the same nodes, a thread each, in
   this process: no API, no queue, no placement. VMs accumulate over rounds on both sides.
   Settings: placement refuses a hypervisor holding ``max_provisioning_per_host`` (default 8)
   claimed VMs its heartbeat has not yet shown, so a count above 32 over four hypervisors is a
   409; this stack sets it to 0 (no bound). The test driver gives a pool 100 GiB whatever the
   node says and takes a volume's whole size from it: hence 64 MiB disks. An empty disk (``disk:
   {pool, size}``) cannot be used with ``network: none``: such a VM boots from the network, which
   it lacks, and each child fails on its worker.
   Shape: 10 requests of 20, as several pipelines asking at once would, so concurrent POSTs
   contend for the same hypervisors' claims. Other shapes measured on this machine came within
   noise of it (median over 4 rounds, same stack: 1 x 200 in 1.78 s, 4 x 50 in 1.66 s, 10 x 20
   in 1.68 s, 20 x 10 in 1.72 s): the run is bound by the two cores all processes share, not by
   how the VMs are grouped; ``--requests`` measures another shape.
2. Placement decisions per second over 1,000 simulated hypervisors: bench/placement.py
   (``python -m bench.placement``, bench/results/placement.json); not repeated here.
3. Real VMs. One ``count: --real-count`` request on the real libvirtd (qemu:///system, one worker
   with ``--concurrency`` threads and the qemu64 CPU nested KVM runs) booting bench/domains.py's
   512-byte boot-sector base image through qcow2 overlays, beside that benchmark's sequential
   qemu-img + virt-install loop (the anchor; target: within 10% of it) and its libvirt-python
   floor in parallel threads: same base image, memory, CPU and display. Clocks stop when libvirt
   has started all of a method's VMs (the count request's when its parent ended); each method's
   VMs are then checked running and removed before the next. This stack's CPU allocation ratio
   is 16: two host CPUs under the default 4 promise 8 vCPUs, fewer than 10 one-vCPU VMs.

Prints every round, reports each method's median round and the ratios (medians over rounds of
each round's ratio), writes bench/results/provision.json, and removes every VM, volume, pool,
file and process it made, whatever happens.

Usage: .venv/bin/python -m bench.provision [--vms 200] [--requests 10] [--rounds 3]
       [--real-count 10] [--real-rounds 3] [--concurrency 8]   (from the project root)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt

from bench.cpu import CpuMeter, per_item_ms
from bench.domains import (
    CPU,
    FLOOR_METHOD,
    MEMORY_MIB,
    QEMU_URI,
    SHELL_METHOD,
    all_running,
    floor_run,
    pool_xml,
    remove_domains,
    remove_pools_under,
    shell_run,
    summary,
)
from bench.settings import bench_settings
from orchestrator.client import ApiClient
from orchestrator.local.bootsector import write_base_image
from orchestrator.local.processes import ServiceProcess, free_port, redis_server
from orchestrator.local.stack import LocalStack

RESULTS = Path(__file__).resolve().parent / "results" / "provision.json"
HOSTS = ("bench-hv-1", "bench-hv-2", "bench-hv-3", "bench-hv-4")
REAL_HV = "bench-provision"
DISK = "64M"
DISK_BYTES = 64 * 1024**2
REAL_CPU_RATIO = 16.0
TARGET_VMS_PER_MIN = 2000
TARGET_REAL_RATIO = 1.10
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "lost"})
COUNT_METHOD = "API, count requests at once"
LIBVIRT_METHOD = "libvirt-python, 4 connections (floor)"
REAL_METHOD = "API, one count request"

NODE_XML = """<node>
  <cpu>
    <nodes>1</nodes><sockets>1</sockets><cores>512</cores><threads>1</threads>
    <active>512</active><mhz>2000</mhz><model>x86_64</model>
  </cpu>
  <memory>67108864</memory>
  <pool type='dir'>
    <name>default</name>
    <capacity unit='GiB'>100</capacity>
    <allocation unit='GiB'>0</allocation>
    <available unit='GiB'>100</available>
    <target><path>{pool_dir}</path></target>
    <volume type='file'>
      <name>base.qcow2</name>
      <capacity unit='MiB'>64</capacity>
      <allocation unit='MiB'>1</allocation>
      <target><path>{pool_dir}/base.qcow2</path><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
"""


def write_nodes(directory: Path, pools: Path) -> dict[str, str]:
    """Each hypervisor's node file and URI; its pool's directory lies in the stack's pool roots,
    as a managed pool's must, even on the test driver."""
    uris = {}
    for host in HOSTS:
        node = directory / f"{host}.xml"
        node.write_text(NODE_XML.format(pool_dir=pools / host))
        uris[host] = f"test://{node}"
    return uris


def count_body(pattern: str, count: int) -> dict[str, Any]:
    params = {
        "count": count,
        "name": pattern,
        "vcpus": 1,
        "memory_mib": MEMORY_MIB,
        "disk": {"base_image": "default/base.qcow2", "size": DISK},
        "network": "none",
        "graphics": "none",
        "wait_for": "running",
    }
    return {"kind": "vm.provision", "params": params}


def count_run(
    base_url: str, bodies: list[dict[str, Any]], meter: CpuMeter | None = None
) -> dict[str, Any]:
    """Post every body at once, a client each; done when every parent ended."""

    def one(body: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
        client = ApiClient(base_url)  # a requests session is not shared between threads
        sent = time.perf_counter()
        parent = client.submit(body)
        posted = time.perf_counter()
        return posted - sent, posted - started, wait_parent(client, parent["id"])

    if meter:
        meter.start()
    started_at, started = time.time(), time.perf_counter()
    with ThreadPoolExecutor(len(bodies)) as threads:
        answers = list(threads.map(one, bodies))
    elapsed = time.perf_counter() - started
    cpu = meter.stop() if meter else None
    client = ApiClient(base_url)
    for _, _, parent in answers:
        require_all_succeeded(client, parent)
    vms = sum(parent["params"]["count"] for _, _, parent in answers)
    row: dict[str, Any] = {
        "method": COUNT_METHOD,
        "seconds": round(elapsed, 3),
        "vms_per_min": round(vms * 60 / elapsed),
        "post_seconds": [round(post, 3) for post, _, _ in answers],
        "last_post_returned_after": round(max(at for _, at, _ in answers), 3),
        "phases": child_phases(client, [parent["id"] for _, _, parent in answers], started_at),
    }
    if cpu is not None:
        row["cpu_ms_per_vm"] = per_item_ms(cpu, vms)
    return row


def wait_parent(client: ApiClient, job_id: str) -> dict[str, Any]:
    job = client.wait(job_id, timeout=900)
    if job["state"] not in TERMINAL:
        raise TimeoutError(f"count request {job_id} still {job['state']} after 900 s")
    return job


def require_all_succeeded(client: ApiClient, parent: dict[str, Any]) -> None:
    """Raise, naming the first child's error, unless the parent and all its children
    succeeded."""
    count = parent["params"]["count"]
    if parent["state"] == "succeeded" and parent["children"]["succeeded"] == count:
        return
    children = client.list_jobs({"parent": parent["id"], "limit": 500})
    first = next((child["error"] for child in children if child["error"]), parent["error"])
    raise RuntimeError(f"count request {parent['id']} {parent['state']}; first error: {first}")


def child_phases(client: ApiClient, parents: list[str], started_at: float) -> dict[str, Any]:
    """Where the children's time went, median and maximum over them, from their documents:
    first POST to stored (placement of the members before), stored to a worker running it
    (publishing, queue), running to ended (the worker's steps, then reporting)."""
    spans: dict[str, list[float]] = {"POST to stored": [], "stored to running": []}
    spans["running to ended"] = []
    for parent in parents:
        for child in client.list_jobs({"parent": parent, "limit": 500}):
            times = [child.get(f) or "" for f in ("created_at", "started_at", "finished_at")]
            if not all(times):
                continue  # the recorder has not stored them yet
            stored, began, ended = (_epoch(value) for value in times)
            spans["POST to stored"].append(stored - started_at)
            spans["stored to running"].append(began - stored)
            spans["running to ended"].append(ended - began)
            for step, seconds in ((child.get("result") or {}).get("timings") or {}).items():
                spans.setdefault(f"worker step {step}", []).append(seconds)
    return {
        name: {"median": round(statistics.median(values), 3), "max": round(max(values), 3)}
        for name, values in spans.items()
        if values
    }


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def running_on_fleet(client: ApiClient, names: set[str]) -> int:
    """How many of ``names`` the hypervisors' workers list as running."""
    items = client.get("/v1/domains")["items"]
    return sum(1 for item in items if item["name"] in names and item["state"] == "running")


def test_domain_xml(name: str, volume: str) -> str:
    """A test-driver domain as the count request's: 64 MiB, one vCPU, its volume as its one
    disk, no NIC, no display."""
    domain = ET.Element("domain", type="test")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = str(MEMORY_MIB)
    ET.SubElement(domain, "vcpu").text = "1"
    ET.SubElement(ET.SubElement(domain, "os"), "type", arch="x86_64").text = "hvm"
    devices = ET.SubElement(domain, "devices")
    disk = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(disk, "driver", name="qemu", type="qcow2")
    ET.SubElement(disk, "source", file=volume)
    ET.SubElement(disk, "target", dev="vda", bus="virtio")
    return ET.tostring(domain, encoding="unicode")


def overlay_volume_xml(name: str, base: str) -> str:
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(DISK_BYTES)
    ET.SubElement(ET.SubElement(volume, "target"), "format", type="qcow2")
    backing = ET.SubElement(volume, "backingStore")
    ET.SubElement(backing, "path").text = base
    ET.SubElement(backing, "format", type="qcow2")
    return ET.tostring(volume, encoding="unicode")


def libvirt_run(conns: list[libvirt.virConnect], names: list[str]) -> dict[str, Any]:
    """Volume, define, start per VM; the VMs dealt round the connections, a thread each."""

    def host(index: int) -> None:
        conn = conns[index]
        pool = conn.storagePoolLookupByName("default")
        base = pool.storageVolLookupByName("base.qcow2").path()
        for name in names[index :: len(conns)]:
            volume = pool.createXML(overlay_volume_xml(f"{name}.qcow2", base), 0)
            conn.defineXML(test_domain_xml(name, volume.path())).create()

    started = time.perf_counter()
    with ThreadPoolExecutor(len(conns)) as threads:
        list(threads.map(host, range(len(conns))))
    elapsed = time.perf_counter() - started
    wanted = set(names)
    running = sum(
        1
        for conn in conns
        for domain in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING)
        if domain.name() in wanted
    )
    if running != len(names):
        raise RuntimeError(f"libvirt-python left {len(names) - running} VMs not running")
    return {
        "method": LIBVIRT_METHOD,
        "seconds": round(elapsed, 3),
        "vms_per_min": round(len(names) * 60 / elapsed),
    }


def fleet_part(args: argparse.Namespace, work: Path, prefix: str) -> dict[str, Any]:
    """Part 1 on a stack of its own, stopped with its Redis whatever happens."""
    work.mkdir()
    redis_port = free_port()
    redis = redis_server(redis_port, work / "redis", log_path=work / "var/logs/redis.log")
    settings = bench_settings(
        work,
        redis_port,
        HOSTS[0],
        "test:///default",
        worker_concurrency=args.concurrency,
        max_provisioning_per_host=0,
    )
    uris = write_nodes(work, settings.allowed_pool_roots[-1])
    stack = LocalStack(settings, flower=False)
    conns: list[libvirt.virConnect] = []
    try:
        redis.start()
        stack.start(worker=False)
        for service in [stack.launch(stack.worker(host, uri)) for host, uri in uris.items()]:
            service.wait_ready(60)
        # The anchor's hypervisors: the same nodes opened here (a test driver's state lives in
        # the process that opened it, so the workers' VMs are not seen).
        conns = [libvirt.open(uri) for uri in uris.values()]
        meter = fleet_meter(stack.services, redis)
        return fleet_rounds(args, settings.resolved_api_url, conns, prefix, meter)
    finally:
        for conn in conns:
            conn.close()
        stack.stop()
        redis.stop()


def fleet_meter(services: list[ServiceProcess], redis: ServiceProcess) -> CpuMeter:
    """CPU per service; the benchmark process alone is the clients."""
    pids = {service.name: service.pid for service in services}
    pids |= {"redis": redis.pid, "benchmark": os.getpid()}
    return CpuMeter(pids, alone=["benchmark"])


def fleet_rounds(
    args: argparse.Namespace,
    base_url: str,
    conns: list[libvirt.virConnect],
    prefix: str,
    meter: CpuMeter,
) -> dict[str, Any]:
    per_request = args.vms // args.requests
    vms = per_request * args.requests
    # Warm the services' code paths and connections: one small request, one VM per host.
    warm = count_run(base_url, [count_body(f"{prefix}warm-{{index}}", len(HOSTS))])
    print(f"warm-up: {warm['seconds']} s", flush=True)
    rounds: dict[str, list[dict[str, Any]]] = {COUNT_METHOD: [], LIBVIRT_METHOD: []}
    for number in range(args.rounds):
        group = f"{prefix}r{number}-"
        patterns = [f"{group}q{q:02d}-{{index:03d}}" for q in range(args.requests)]
        row = count_run(base_url, [count_body(p, per_request) for p in patterns], meter)
        names = {p.format(index=i) for p in patterns for i in range(1, per_request + 1)}
        seen = running_on_fleet(ApiClient(base_url), names)
        if seen != vms:
            raise RuntimeError(f"the workers list {seen} of the {vms} VMs running")
        floor = libvirt_run(conns, [f"{group}lv-{i:03d}" for i in range(vms)])
        for method, measured in ((COUNT_METHOD, row), (LIBVIRT_METHOD, floor)):
            rounds[method].append(measured)
            print(f"round {number + 1}, {method}: {_describe(measured)}", flush=True)
    return {
        "vms": vms,
        "requests": args.requests,
        "count_per_request": per_request,
        "rows": [summary(method, method_rounds) for method, method_rounds in rounds.items()],
        "ratio_api_over_libvirt": _median_ratio(rounds[COUNT_METHOD], rounds[LIBVIRT_METHOD]),
    }


def _describe(row: dict[str, Any]) -> str:
    text = f"{row['seconds']} s, {row['vms_per_min']} VMs/min"
    if "post_seconds" in row:
        text += f", POSTs took {row['post_seconds']} s"
    return text


def _median_ratio(rows: list[dict[str, Any]], anchors: list[dict[str, Any]]) -> float:
    """The median over rounds of each round's time over its anchor's in that round."""
    ratios = [r["seconds"] / a["seconds"] for r, a in zip(rows, anchors, strict=True)]
    return round(statistics.median(ratios), 3)


def real_count_run(client: ApiClient, pattern: str, count: int, pool: str) -> dict[str, Any]:
    """The count request as bench/domains.py's VMs: an overlay on the boot sector, a VNC
    display, no NIC."""
    body = count_body(pattern, count)
    body["params"] |= {"disk": {"base_image": f"{pool}/base.img", "size": "1M"}, "graphics": "vnc"}
    started_at, started = time.time(), time.perf_counter()
    parent = client.submit(body)
    posted = time.perf_counter() - started
    done = wait_parent(client, parent["id"])
    elapsed = time.perf_counter() - started
    require_all_succeeded(client, done)
    return {
        "method": REAL_METHOD,
        "seconds": round(elapsed, 3),
        "post_seconds": round(posted, 3),
        "phases": child_phases(client, [done["id"]], started_at),
    }


def real_part(
    args: argparse.Namespace, conn: libvirt.virConnect, work: Path, prefix: str
) -> dict[str, Any]:
    """Part 3 on a stack of its own, one worker on the real libvirtd."""
    work.mkdir(mode=0o755)
    for sub in ("pool", "shell"):
        (work / sub).mkdir(mode=0o755)
    base = write_base_image(work / "pool" / "base.img")
    shell_base = write_base_image(work / "shell" / "base.img")
    pool = f"{prefix}pool"
    # Before the worker starts, so that its first heartbeat lists the pool and the base image.
    conn.storagePoolCreateXML(pool_xml(pool, work / "pool"), 0)
    redis_port = free_port()
    redis = redis_server(redis_port, work / "redis", log_path=work / "var/logs/redis.log")
    settings = bench_settings(
        work,
        redis_port,
        REAL_HV,
        QEMU_URI,
        worker_concurrency=args.concurrency,
        cpu_mode=CPU,
        cpu_allocation_ratio=REAL_CPU_RATIO,
        max_provisioning_per_host=0,
        pool_roots=[work],
    )
    stack = LocalStack(settings, flower=False)
    try:
        redis.start()
        stack.start()
        client = ApiClient(settings.resolved_api_url)
        count = args.real_count
        methods: dict[str, Callable[[str], dict[str, Any]]] = {
            SHELL_METHOD: lambda group: shell_run(
                names_of(group, count), work / "shell", shell_base
            ),
            REAL_METHOD: lambda group: real_count_run(client, f"{group}{{index:02d}}", count, pool),
            FLOOR_METHOD: lambda group: floor_run(
                names_of(group, count), pool, base, args.concurrency
            ),
        }
        return real_rounds(args, conn, prefix, methods)
    finally:
        stack.stop()
        redis.stop()


def names_of(group: str, count: int) -> list[str]:
    """The names the count request's pattern gives (index from 1); the other methods' too."""
    return [f"{group}{i:02d}" for i in range(1, count + 1)]


def real_rounds(
    args: argparse.Namespace,
    conn: libvirt.virConnect,
    prefix: str,
    methods: dict[str, Callable[[str], dict[str, Any]]],
) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {method: [] for method in methods}
    for number in range(args.real_rounds):
        for tag, (method, measure) in zip(("sh", "api", "lv"), methods.items(), strict=True):
            group = f"{prefix}r{number}-{tag}-"
            row = measure(group)
            print(f"real round {number + 1}, {method}: {row['seconds']} s", flush=True)
            names = names_of(group, args.real_count)
            assert all_running(conn, names), f"{method} left VMs not running"
            rounds[method].append(row)
            # Each method starts on the same host: no VM of an earlier one still running.
            remove_domains(conn, group)
    return {
        "count": args.real_count,
        "rows": [summary(method, method_rounds) for method, method_rounds in rounds.items()],
        "ratio_api_over_virt_install": _median_ratio(rounds[REAL_METHOD], rounds[SHELL_METHOD]),
        "ratio_api_over_floor": _median_ratio(rounds[REAL_METHOD], rounds[FLOOR_METHOD]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vms", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10, help="count requests posted at once")
    parser.add_argument("--rounds", type=int, default=3, help="fleet rounds; medians reported")
    parser.add_argument("--real-count", type=int, default=10)
    parser.add_argument("--real-rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker")
    args = parser.parse_args()
    prefix = f"bench-prov-{uuid.uuid4().hex[:6]}-"
    # Under /var/tmp so qemu, running as another user, can reach the real VMs' images.
    work = Path(tempfile.mkdtemp(prefix="provision-bench-", dir="/var/tmp"))
    work.chmod(0o755)
    conn = libvirt.open(QEMU_URI)
    try:
        fleet = fleet_part(args, work / "fleet", prefix)
        real = real_part(args, conn, work / "real", prefix)
    finally:
        remove_domains(conn, prefix)
        remove_pools_under(conn, work)
        conn.close()
        shutil.rmtree(work, ignore_errors=True)
    report = build_report(args, fleet, real)
    print_report(report)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def build_report(
    args: argparse.Namespace, fleet: dict[str, Any], real: dict[str, Any]
) -> dict[str, Any]:
    per_min = next(r["vms_per_min"] for r in fleet["rows"] if r["method"] == COUNT_METHOD)
    real_ratio = real["ratio_api_over_virt_install"]
    version = subprocess.run(["virt-install", "--version"], capture_output=True, text=True)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "libvirt": libvirt.getVersion(),
            "virt_install": version.stdout.strip(),
            "kvm": os.path.exists("/dev/kvm"),
            "load_average": os.getloadavg(),
        },
        "worker_concurrency": args.concurrency,
        "fleet": {
            **fleet,
            "rounds": args.rounds,
            "hypervisors": f"{len(HOSTS)} test-driver nodes, a worker process each",
            "settings": {"max_provisioning_per_host": 0},
            "vm": f"{MEMORY_MIB} MiB, 1 vCPU, {DISK} qcow2 overlay, no NIC, no display",
            "target": {
                "what": f"at least {TARGET_VMS_PER_MIN} VMs/min",
                "value": per_min,
                "met": per_min >= TARGET_VMS_PER_MIN,
            },
        },
        "placement": "decisions per second over 1,000 simulated hypervisors: "
        "bench/results/placement.json (python -m bench.placement)",
        "real": {
            **real,
            "rounds": args.real_rounds,
            "settings": {"max_provisioning_per_host": 0, "cpu_allocation_ratio": REAL_CPU_RATIO},
            "guest": f"512-byte boot sector on a qcow2 overlay, {MEMORY_MIB} MiB, 1 vCPU, {CPU}",
            "target": {
                "what": "count request within 10% of the virt-install loop",
                "value": real_ratio,
                "met": real_ratio <= TARGET_REAL_RATIO,
            },
        },
        "note": "Seconds to all running; each method's row is its median round, with every "
        "round's time; ratios are the median over rounds of the round's time over its anchor's. "
        "Fleet: from the first of the count requests posted at once until every parent ended; "
        "phases from the children's documents (median and maximum over the children of the "
        "median round); CPU milliseconds per VM for each process over the same span. Real, per "
        "round in this order: the sequential qemu-img + virt-install loop, the count request, "
        "libvirt-python from worker_concurrency threads.",
    }


def print_report(report: dict[str, Any]) -> None:
    fleet, real = report["fleet"], report["real"]
    shape = f"{fleet['requests']} count requests of {fleet['count_per_request']}"
    print(f"\n{fleet['vms']} VMs as {shape}")
    for row in fleet["rows"]:
        print(f"  {row['method']:<40} {row['seconds']:>7.2f} s {row['vms_per_min']:>8} VMs/min")
    print(f"  API time / libvirt-python time: {fleet['ratio_api_over_libvirt']:.1f}")
    print(f"\n{real['count']} real VMs")
    for row in real["rows"]:
        print(f"  {row['method']:<40} {row['seconds']:>7.2f} s to all running")
    print(f"  count request / virt-install loop: {real['ratio_api_over_virt_install']:.2f}")
    print(f"  count request / libvirt-python floor: {real['ratio_api_over_floor']:.2f}")
    for part in (fleet, real):
        target = part["target"]
        verdict = "met" if target["met"] else "NOT met"
        print(f"target {target['what']}: {target['value']}, {verdict}")


if __name__ == "__main__":
    main()
