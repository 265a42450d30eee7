"""Benchmark: ping jobs through our API beside raw Celery and the naive Flask + Celery app.

Every system runs on the same redis-server in the same run, each with one worker process
(a threads pool of 8) and the same gunicorn settings. Latency is from POST until the client
sees ``succeeded``; throughput is jobs per second, sequential and with 8 concurrent clients.
Each client uses its API the way it is meant to be used: ours with ``POST /v1/jobs?wait=``
(one request, as CI does; "POST + GET" is the two-request form), the naive app by POST and
polling GET, raw Celery by ``apply_async().get()``.

A shared 2-core machine drifts, so each measurement runs ``--rounds`` times, the systems taking
turns, and the round with the median throughput is reported for each.

    .venv/bin/python -m bench.pipeline [--jobs 2000] [--rounds 3] [--only]   (from the root)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.cpu import CpuMeter, per_item_ms
from orchestrator.local.processes import ServiceProcess, free_port, port_open, redis_server
from orchestrator.local.stack import LocalStack
from orchestrator.settings import Settings

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parent.parent

OneJob = Callable[[requests.Session], float]


def measure(
    one_job: OneJob, jobs: int, clients: int, meter: CpuMeter | None = None
) -> dict[str, Any]:
    """Latency and throughput of ``jobs`` jobs from ``clients`` threads; with a ``meter``,
    also the CPU milliseconds each process spent per job."""
    sessions = [requests.Session() for _ in range(clients)]
    per_client = jobs // clients

    def client(index: int) -> list[float]:
        return [one_job(sessions[index]) for _ in range(per_client)]

    if meter:
        meter.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [lat for batch in pool.map(client, range(clients)) for lat in batch]
    elapsed = time.perf_counter() - started
    latencies.sort()
    figures: dict[str, Any] = {
        "jobs": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "jobs_per_s": len(latencies) / elapsed,
    }
    if meter:
        figures["cpu_ms_per_job"] = per_item_ms(meter.stop(), len(latencies))
    return figures


def ours(base: str) -> OneJob:
    """What a CI job does with our API: POST and wait in one request."""

    def one(http: requests.Session) -> float:
        started = time.perf_counter()
        body = {"kind": "ping", "hypervisor": "bench"}
        done = http.post(f"{base}/v1/jobs", params={"wait": 30}, json=body).json()
        assert done["state"] == "succeeded", done
        return time.perf_counter() - started

    return one


def ours_post_then_get(base: str) -> OneJob:
    """POST, then GET ?wait= until finished: two requests, as a client that polls would."""

    def one(http: requests.Session) -> float:
        started = time.perf_counter()
        job = http.post(f"{base}/v1/jobs", json={"kind": "ping", "hypervisor": "bench"}).json()
        done = http.get(f"{base}/v1/jobs/{job['id']}", params={"wait": 30}).json()
        assert done["state"] == "succeeded", done
        return time.perf_counter() - started

    return one


def naive(base: str) -> OneJob:
    def one(http: requests.Session) -> float:
        started = time.perf_counter()
        task = http.post(f"{base}/tasks").json()
        deadline = started + 30
        while (done := http.get(f"{base}/tasks/{task['id']}").json())["state"] != "SUCCESS":
            assert done["state"] in {"PENDING", "STARTED"}, done
            assert time.perf_counter() < deadline, f"task {task['id']} never finished"
            time.sleep(0.001)  # poll hard: the anchor gets every chance to look fast
        return time.perf_counter() - started

    return one


def raw_celery() -> OneJob:
    from bench.naive_app import ping

    def one(_: requests.Session) -> float:
        started = time.perf_counter()
        assert ping.apply_async().get(timeout=30)["message"] == "pong"
        return time.perf_counter() - started

    return one


def start_naive(redis_url: str, logs: Path) -> list[ServiceProcess]:
    import os

    env = {**os.environ, "NAIVE_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    port = free_port()
    py = sys.executable
    web = ServiceProcess(
        "naive-api",
        [
            py,
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "-w",
            "2",
            "--threads",
            "16",
            "-b",
            f"127.0.0.1:{port}",
            "bench.naive_app:app",
        ],
        log_path=logs / "naive-api.log",
        env=env,
        ready=port_open(port),
    )
    worker = ServiceProcess(
        "naive-worker",
        [
            py,
            "-m",
            "celery",
            "-A",
            "bench.naive_app:celery",
            "worker",
            "-P",
            "threads",
            "-c",
            "8",
            "-Q",
            "naive",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        log_path=logs / "naive-worker.log",
        env=env,
    )
    web.start(60)
    worker.start(None)
    web.port = port  # type: ignore[attr-defined]
    return [web, worker]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--only", action="store_true", help="measure ours alone (no anchors), to compare changes"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    redis = redis_server(free_port(), tmp / "redis", log_path=tmp / "redis.log").start()
    redis_url = f"redis://127.0.0.1:{redis.argv[redis.argv.index('--port') + 1]}/0"
    import os

    os.environ["NAIVE_REDIS_URL"] = redis_url
    settings = Settings(
        var_dir=tmp / "var",
        redis_url=redis_url,
        api_port=free_port(),
        hypervisor="bench",
        libvirt_uri="test:///default",
        worker_concurrency=8,
        api_workers=2,
        api_threads=16,
    )
    stack = LocalStack(settings, flower=False)
    naive_services: list[ServiceProcess] = []
    try:
        stack.start()
        naive_services = start_naive(redis_url, tmp / "logs")
        naive_base = f"http://127.0.0.1:{naive_services[0].port}"  # type: ignore[attr-defined]
        systems = {
            "orchestrator API": ours(settings.resolved_api_url),
            "ours, POST + GET": ours_post_then_get(settings.resolved_api_url),
            "naive Flask+Celery": naive(naive_base),
            "raw Celery": raw_celery(),
        }
        shared = {"redis": redis.pid, "benchmark": os.getpid()}
        # The benchmark process is the parent of every service: counted alone, it is the clients.
        meters = {
            "orchestrator API": {s.name: s.pid for s in stack.services},
            "ours, POST + GET": {s.name: s.pid for s in stack.services},
            "naive Flask+Celery": {s.name: s.pid for s in naive_services},
            "raw Celery": {"naive-worker": naive_services[1].pid},
        }
        if args.only:
            systems = {name: one for name, one in systems.items() if name.startswith("o")}
        for one in systems.values():  # warm up connections and code paths
            measure(one, 80, 8)
        rounds: dict[str, dict[str, list[dict[str, Any]]]] = {
            name: {"sequential": [], "8 clients": []} for name in systems
        }
        for _ in range(args.rounds):
            for name, one in systems.items():
                rounds[name]["sequential"].append(measure(one, args.jobs, 1))
                meter = CpuMeter({**meters[name], **shared}, alone=["benchmark"])
                rounds[name]["8 clients"].append(measure(one, args.jobs, 8, meter))
        report = {
            name: {mode: median_round(runs) for mode, runs in modes.items()}
            for name, modes in rounds.items()
        }
        for name in systems:
            print(f"{name}: {json.dumps(report[name])}", flush=True)
    finally:
        for service in naive_services:
            service.stop()
        stack.stop()
        redis.stop()
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    name = "pipeline-ours.json" if args.only else "pipeline.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    return 0


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput, with every round's throughput beside it."""
    ordered = sorted(runs, key=lambda run: run["jobs_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_jobs_per_s": [run["jobs_per_s"] for run in runs]}


def print_report(report: dict[str, dict[str, dict[str, Any]]]) -> None:
    print(f"\n{'system':<22}{'mode':<12}{'p50 ms':>9}{'p99 ms':>9}{'jobs/s':>9}")
    for name, modes in report.items():
        for mode, figures in modes.items():
            print(
                f"{name:<22}{mode:<12}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
                f"{figures['jobs_per_s']:>9.1f}"
            )
            if "cpu_ms_per_job" in figures:
                print(f"{'':<22}CPU ms per job: {figures['cpu_ms_per_job']}")
    if "raw Celery" not in report:
        return
    ours_, naive_, raw = (
        report[k] for k in ("orchestrator API", "naive Flask+Celery", "raw Celery")
    )
    for mode in ("sequential", "8 clients"):
        print(
            f"{mode}: p50 ours/naive = {ours_[mode]['p50_ms'] / naive_[mode]['p50_ms']:.2f}x, "
            f"ours/raw = {ours_[mode]['p50_ms'] / raw[mode]['p50_ms']:.2f}x, "
            f"throughput ours/naive = {ours_[mode]['jobs_per_s'] / naive_[mode]['jobs_per_s']:.2f}x"
        )


if __name__ == "__main__":
    sys.exit(main())
