"""Benchmark: what the API's safety costs. ``POST /v1/jobs`` and ``GET /v1/jobs/<id>`` with a
token checked, its scope enforced, every write audited and the rate and waiter limits counted,
beside the same build with all of that taken off (``bench/api_apps.py``), same run.

Both APIs run under the same gunicorn command, workers and threads, each on its own SQLite file and
the same redis-server; no worker consumes the jobs, so what is measured is the API alone. The
rate limit is set high enough never to refuse, so its counting is measured, not its refusals.
The two take turns for ``--rounds`` rounds; the round with the median throughput is reported.
Within a round they also take turns in ``--slices`` slices of the requests, in alternating
order, so that load from elsewhere on the machine (the cores are shared) falls on both alike
rather than on whichever ran during it; ``--slices 1`` runs each API's requests in one go.
Target: the safety costs under 10% of throughput and of p50.

    .venv/bin/python -m bench.api [--requests 3000] [--rounds 3] [--slices 6]   (from the root)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.cpu import CpuMeter
from orchestrator import db
from orchestrator.local.processes import ServiceProcess, free_port, port_open, redis_server
from orchestrator.local.stack import child_env
from orchestrator.settings import Settings

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8
TARGET = 0.10

Call = Callable[[requests.Session, int], float]


@dataclass
class Sample:
    """Latencies of calls, the wall-clock seconds they took together, and the CPU seconds the
    API serving them spent meanwhile."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    api_cpu: float = 0.0

    def add(self, other: Sample) -> None:
        self.latencies.extend(other.latencies)
        self.elapsed += other.elapsed
        self.api_cpu += other.api_cpu

    def figures(self) -> dict[str, float]:
        """p50, p99, requests per second and the API's CPU milliseconds per request."""
        ordered = sorted(self.latencies)
        return {
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
            "requests_per_s": len(ordered) / self.elapsed,
            "api_cpu_ms": self.api_cpu * 1000 / len(ordered),
        }


def run_calls(call: Call, count: int, clients: int, first: int = 0) -> Sample:
    """``count`` calls (numbered from ``first``) from ``clients`` threads."""
    sessions = [requests.Session() for _ in range(clients)]
    per_client = count // clients

    def client(index: int) -> list[float]:
        start = first + index * per_client
        return [call(sessions[index], start + i) for i in range(per_client)]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [lat for batch in pool.map(client, range(clients)) for lat in batch]
    return Sample(latencies, time.perf_counter() - started)


def measure(call: Call, count: int, clients: int) -> dict[str, float]:
    """p50, p99 and requests per second of ``count`` calls from ``clients`` threads."""
    return run_calls(call, count, clients).figures()


def measure_in_turns(
    apis: list[Api], call: Callable[[Api], Call], count: int, slices: int
) -> dict[str, dict[str, float]]:
    """``count`` calls to each API, the APIs taking turns in ``slices`` slices, the order
    reversed every slice; each API's figures over all its slices."""
    samples = {api.name: Sample() for api in apis}
    per_slice = count // slices
    for index in range(slices):
        for api in apis if index % 2 == 0 else apis[::-1]:
            meter = CpuMeter({api.name: api.service.pid})
            meter.start()
            sample = run_calls(call(api), per_slice, CLIENTS, index * per_slice)
            sample.api_cpu = meter.stop()[api.name]
            samples[api.name].add(sample)
    return {name: sample.figures() for name, sample in samples.items()}


class Api:
    """One served API and the jobs a run posted to it (GETs read them back)."""

    def __init__(self, name: str, service: ServiceProcess, base: str, token: str | None) -> None:
        self.name, self.service, self.base = name, service, base
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.job_ids: list[str] = []

    def post(self, http: requests.Session, _: int) -> float:
        started = time.perf_counter()
        body = {"kind": "ping", "hypervisor": "bench"}
        answer = http.post(f"{self.base}/v1/jobs", json=body, headers=self.headers)
        assert answer.status_code == 202, answer.text
        elapsed = time.perf_counter() - started
        self.job_ids.append(answer.json()["id"])
        return elapsed

    def get(self, http: requests.Session, index: int) -> float:
        job_id = self.job_ids[index % len(self.job_ids)]
        started = time.perf_counter()
        answer = http.get(f"{self.base}/v1/jobs/{job_id}", headers=self.headers)
        assert answer.status_code == 200, answer.text
        return time.perf_counter() - started


def start_api(name: str, settings: Settings, argv: list[str], token: str | None) -> Api:
    db.upgrade(settings.resolved_database_url)
    env = {**child_env(settings), "PYTHONPATH": str(ROOT)}
    service = ServiceProcess(
        name,
        argv,
        log_path=settings.var_dir / "logs" / f"{name}.log",
        env=env,
        ready=port_open(settings.api_port),
    ).start(60)
    return Api(name, service, settings.resolved_api_url, token)


def bind(settings: Settings) -> str:
    return f"--bind=127.0.0.1:{settings.api_port}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--slices", type=int, default=6)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis = redis_server(free_port(), tmp / "redis", log_path=tmp / "redis.log").start()
    redis_url = f"redis://127.0.0.1:{redis.argv[redis.argv.index('--port') + 1]}/0"
    token = "orch_" + secrets.token_urlsafe(32)
    common: dict[str, Any] = {"redis_url": redis_url, "api_workers": 2, "api_threads": 16}
    guarded = Settings(
        var_dir=tmp / "guarded",
        api_port=free_port(),
        api_tokens={token: ["jobs:read", "jobs:submit"]},
        rate_limit="1000000/minute",
        **common,
    )
    unguarded = Settings(var_dir=tmp / "unguarded", api_port=free_port(), **common)
    gunicorn = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "16"]
    apis: list[Api] = []
    try:
        apis = [
            start_api(
                "guarded", guarded, [*gunicorn, bind(guarded), "bench.api_apps:guarded()"], token
            ),
            start_api(
                "unguarded",
                unguarded,
                [*gunicorn, bind(unguarded), "bench.api_apps:unguarded()"],
                None,
            ),
        ]
        for api in apis:  # warm up connections, caches and code paths
            measure(api.post, 200, CLIENTS)
            measure(api.get, 200, CLIENTS)
        rounds: dict[str, dict[str, list[dict[str, float]]]] = {
            api.name: {"POST /v1/jobs": [], "GET /v1/jobs/<id>": []} for api in apis
        }
        route_calls: list[tuple[str, Callable[[Api], Call]]] = [
            ("POST /v1/jobs", lambda api: api.post),
            ("GET /v1/jobs/<id>", lambda api: api.get),
        ]
        for _ in range(args.rounds):
            for route, call in route_calls:
                figures = measure_in_turns(apis, call, args.requests, args.slices)
                for name, measured in figures.items():
                    rounds[name][route].append(measured)
    finally:
        for api in apis:
            api.service.stop()
        redis.stop()
    report: dict[str, Any] = {
        name: {route: median_round(runs) for route, runs in routes.items()}
        for name, routes in rounds.items()
    }
    report["cost"] = costs(report["guarded"], report["unguarded"])
    # The cores are shared: a run under others' load says less, whatever its slices.
    report["run"] = {
        "requests": args.requests,
        "rounds": args.rounds,
        "slices": args.slices,
        "load_average_1m": [load_before, os.getloadavg()[0]],
    }
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2))
    return 0


def median_round(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The round with the median throughput; the API's CPU per request over every round, as
    one round's is too few samples to tell a tenth apart on shared cores."""
    ordered = sorted(runs, key=lambda run: run["requests_per_s"])
    return {
        **ordered[len(ordered) // 2],
        "api_cpu_ms": statistics.mean(run["api_cpu_ms"] for run in runs),
        "rounds_per_s": [run["requests_per_s"] for run in runs],
    }


def costs(guarded: dict[str, Any], unguarded: dict[str, Any]) -> dict[str, Any]:
    """Per route: how much throughput the safety takes, and how much it adds to p50 and to the
    API's CPU per request."""
    return {
        route: {
            "throughput_lost": 1 - guarded[route]["requests_per_s"] / anchor["requests_per_s"],
            "p50_added": guarded[route]["p50_ms"] / anchor["p50_ms"] - 1,
            "api_cpu_added": guarded[route]["api_cpu_ms"] / anchor["api_cpu_ms"] - 1,
        }
        for route, anchor in unguarded.items()
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'API':<12}{'route':<22}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'CPU ms/req':>12}")
    for name in ("guarded", "unguarded"):
        for route, figures in report[name].items():
            print(
                f"{name:<12}{route:<22}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
                f"{figures['requests_per_s']:>9.1f}{figures['api_cpu_ms']:>12.2f}"
            )
    run = report["run"]
    print(
        f"{run['rounds']} rounds of {run['requests']} requests in {run['slices']} slices; "
        "load average before and after: "
        + ", ".join(f"{load:.2f}" for load in run["load_average_1m"])
    )
    for route, cost in report["cost"].items():
        within = cost["throughput_lost"] < TARGET and cost["p50_added"] < TARGET
        print(
            f"{route}: safety costs {cost['throughput_lost']:.1%} of throughput and adds "
            f"{cost['p50_added']:.1%} to p50 (target under {TARGET:.0%}: "
            f"{'met' if within else 'NOT met'}); the API's CPU per request "
            f"{cost['api_cpu_added']:+.1%}"
        )


if __name__ == "__main__":
    sys.exit(main())
