"""Benchmark: what the API's safety costs. ``POST /v1/jobs`` and ``GET /v1/jobs/<id>`` with a
token checked, its scope enforced, every write audited and the rate and waiter limits counted,
beside the same build with all of that taken off (``bench/api_apps.py``), same run.

Both APIs run under the same gunicorn command, workers and threads, each on its own SQLite file and
the same redis-server; no worker consumes the jobs, so what is measured is the API alone. The
rate limit is set high enough never to refuse, so its counting is measured, not its refusals.
The two take turns for ``--rounds`` rounds; the round with the median throughput is reported.
Target: the safety costs under 10% of throughput and of p50.

    .venv/bin/python -m bench.api [--requests 3000] [--rounds 3]   (from the root)
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from orchestrator import db
from orchestrator.local.processes import ServiceProcess, free_port, port_open, redis_server
from orchestrator.local.stack import child_env
from orchestrator.settings import Settings

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 8
TARGET = 0.10

Call = Callable[[requests.Session, int], float]


def measure(call: Call, count: int, clients: int) -> dict[str, float]:
    """p50, p99 and requests per second of ``count`` calls from ``clients`` threads."""
    sessions = [requests.Session() for _ in range(clients)]
    per_client = count // clients

    def client(index: int) -> list[float]:
        return [call(sessions[index], index * per_client + i) for i in range(per_client)]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(lat for batch in pool.map(client, range(clients)) for lat in batch)
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "requests_per_s": len(latencies) / elapsed,
    }


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
    args = parser.parse_args()
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
        for _ in range(args.rounds):
            for api in apis:
                rounds[api.name]["POST /v1/jobs"].append(measure(api.post, args.requests, CLIENTS))
                rounds[api.name]["GET /v1/jobs/<id>"].append(
                    measure(api.get, args.requests, CLIENTS)
                )
    finally:
        for api in apis:
            api.service.stop()
        redis.stop()
    report: dict[str, Any] = {
        name: {route: median_round(runs) for route, runs in routes.items()}
        for name, routes in rounds.items()
    }
    report["cost"] = costs(report["guarded"], report["unguarded"])
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api.json").write_text(json.dumps(report, indent=2))
    return 0


def median_round(runs: list[dict[str, float]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda run: run["requests_per_s"])
    return {**ordered[len(ordered) // 2], "rounds_per_s": [run["requests_per_s"] for run in runs]}


def costs(guarded: dict[str, Any], unguarded: dict[str, Any]) -> dict[str, Any]:
    """Per route: how much throughput the safety takes and how much it adds to p50."""
    return {
        route: {
            "throughput_lost": 1 - guarded[route]["requests_per_s"] / anchor["requests_per_s"],
            "p50_added": guarded[route]["p50_ms"] / anchor["p50_ms"] - 1,
        }
        for route, anchor in unguarded.items()
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'API':<12}{'route':<22}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}")
    for name in ("guarded", "unguarded"):
        for route, figures in report[name].items():
            print(
                f"{name:<12}{route:<22}{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}"
                f"{figures['requests_per_s']:>9.1f}"
            )
    for route, cost in report["cost"].items():
        within = cost["throughput_lost"] < TARGET and cost["p50_added"] < TARGET
        print(
            f"{route}: safety costs {cost['throughput_lost']:.1%} of throughput and adds "
            f"{cost['p50_added']:.1%} to p50 (target under {TARGET:.0%}: "
            f"{'met' if within else 'NOT met'})"
        )


if __name__ == "__main__":
    sys.exit(main())
