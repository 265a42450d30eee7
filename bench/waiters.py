"""Benchmark: a plain read while many clients wait. ``--gets`` plain ``GET /v1/jobs/<id>`` from
one client, timed while no, 100, then 1,000 other clients each hold a long-poll open
(``GET /v1/jobs/<id>?wait=``, asked again as soon as answered), on the API's gevent workers
(``api_worker_class=gevent``, the default) beside its gthread workers with their default 16
threads each (the anchor: how the API was served before) and with 640 threads each (the other
way to hold 1,000 waiters), same run.

Each measurement gets an API of its own (``orchestrator api``, 2 workers), on its own SQLite
file and the same redis-server, flushed in between.
The jobs are pings for a hypervisor with no worker: they stay queued and the long-polls never
end early. The waiters are raw HTTP/1.1 requests on asyncio streams (1,000 threads would cost
the client more than the server); the waiter cap and rate limit are raised so that neither
refuses. Also reported: how many waiters the API holds at once (its waiter slots in Redis) and
the CPU the API and Redis spend per second merely holding them, and the API's memory (RSS of
its processes) while it does. A plain GET still unanswered
when ``--budget`` seconds of reads have passed counts with the time it had waited, so a p50 or
p99 marked ``>=`` is a lower bound. Target: with 1,000 waiters, plain GETs' p99 under 50 ms.

    .venv/bin/python -m bench.waiters [--gets 500] [--wait 30] [--budget 30]   (from the root)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import psutil
import redis
import requests

from bench.cpu import CpuMeter
from orchestrator import db
from orchestrator.local.processes import ServiceProcess, free_port, redis_server
from orchestrator.local.stack import api_ready, child_env, orchestrator_argv
from orchestrator.serve import raise_open_files_limit
from orchestrator.settings import Settings

RESULTS = Path(__file__).with_name("results")
ANCHOR = "gthread"
SETUPS: dict[str, dict[str, Any]] = {
    "gevent": {"api_worker_class": "gevent"},
    ANCHOR: {"api_worker_class": "gthread", "api_threads": 16},
    "gthread x640": {"api_worker_class": "gthread", "api_threads": 640},
}
LOADS = (0, 100, 1000)
JOBS = 100
HOLD_SECONDS = 5.0
SETTLE_SECONDS = 10.0
TARGET_P99_MS = 50.0
SCOPES = ["jobs:read", "jobs:submit"]
# Waiters open in waves: api/rate_limit.py leases 1/50 of a caller's window per process, so
# more than 50 first requests of one caller landing on a process at once would lease past the
# limit and be refused. Clients that wait do not arrive all in one instant.
WAVE = 40
WAVE_PAUSE_SECONDS = 0.05
REFUSED_PAUSE_SECONDS = 1.0


class Waiters:
    """``count`` clients, each with one long-poll always open: asked again once answered."""

    def __init__(self, port: int, paths: list[str], token: str) -> None:
        self.port, self.paths = port, paths
        self.header = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
        self.open = 0  # requests written and not yet answered
        self.answers: Counter[int] = Counter()
        self.errors = 0
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))

    def start(self) -> Waiters:
        self._thread.start()
        return self

    def stop(self) -> None:
        while self._stop is None:
            time.sleep(0.01)
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()
        self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        tasks = []
        for first in range(0, len(self.paths), WAVE):
            wave = self.paths[first : first + WAVE]
            tasks += [asyncio.create_task(self._client(path)) for path in wave]
            # Wait for the wave to be written, and a little for it to be let in.
            while self.open + sum(self.answers.values()) < len(tasks):
                await asyncio.sleep(0.01)
            await asyncio.sleep(WAVE_PAUSE_SECONDS)
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, path: str) -> None:
        request = f"GET {path} HTTP/1.1\r\n{self.header}".encode()
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.errors += 1
                await asyncio.sleep(0.1)
                continue
            try:
                await self._ask_until_closed(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.errors += 1
            finally:
                writer.close()

    async def _ask_until_closed(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> None:
        keep_alive = True
        while keep_alive:
            writer.write(request)
            await writer.drain()
            self.open += 1
            try:
                status, keep_alive = await read_response(reader)
            finally:
                self.open -= 1
            self.answers[status] += 1
            if status != 200:  # refused (429): ask again later, as a client should
                await asyncio.sleep(REFUSED_PAUSE_SECONDS)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one HTTP/1.1 response read off ``reader``, and whether the connection
    stays open after it."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head)}
    await reader.readexactly(int(fields.get("content-length", "0")))
    return status, fields.get("connection", "").lower() != "close"


def held_at_server(client: redis.Redis) -> int:
    """Waiting requests the API has let in: the members of its waiter slot sets."""
    return sum(cast(int, client.zcard(key)) for key in client.scan_iter("orch:waiters:*"))


def plain_gets(base: str, path: str, token: str, count: int, budget: float) -> dict[str, Any]:
    """p50 and p99 of up to ``count`` sequential GETs within ``budget`` seconds; one still
    unanswered at the end counts with the time it had waited (a lower bound)."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    end = time.monotonic() + budget
    censored = 0
    while len(latencies) < count and (left := end - time.monotonic()) > 0:
        started = time.perf_counter()
        try:
            statuses[http.get(f"{base}{path}", timeout=left).status_code] += 1
        except requests.Timeout:
            censored = 1
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return {
        "gets": len(latencies),
        "unanswered": censored,
        "statuses": {str(code): n for code, n in statuses.items()},
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
        "lower_bound": bool(censored),
    }


class Run:
    """The redis-server and tokens every measurement of a run shares."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.tmp, self.args = tmp, args
        self.redis = redis_server(free_port(), tmp / "redis", log_path=tmp / "redis.log").start()
        port = self.redis.argv[self.redis.argv.index("--port") + 1]
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.client = redis.Redis.from_url(self.redis_url)
        self.waiter_token = "orch_" + secrets.token_urlsafe(32)
        self.reader_token = "orch_" + secrets.token_urlsafe(32)

    def settings(self, setup: str, waiters: int) -> Settings:
        return Settings(
            var_dir=self.tmp / f"{setup.replace(' ', '-')}-{waiters}",
            redis_url=self.redis_url,
            api_port=free_port(),
            api_workers=2,
            api_tokens={self.waiter_token: SCOPES, self.reader_token: SCOPES},
            rate_limit="1000000/minute",
            max_waiters_per_token=2 * max(LOADS),
            **SETUPS[setup],
        )

    def measure(self, setup: str, waiters: int) -> dict[str, Any]:
        self.client.flushall()  # no waiter slot of the previous API counts here
        settings = self.settings(setup, waiters)
        api = start_api(settings)
        try:
            figures = self._measure_on(api, settings, waiters)
        finally:
            api.stop()
        print(f"{setup}, {waiters} waiters: {json.dumps(figures)}", flush=True)
        return figures

    def _measure_on(self, api: ServiceProcess, settings: Settings, count: int) -> dict[str, Any]:
        base = settings.resolved_api_url
        jobs = post_jobs(base, self.waiter_token, JOBS)
        paths = [f"/v1/jobs/{jobs[i % len(jobs)]}?wait={self.args.wait}" for i in range(count)]
        waiters = Waiters(settings.api_port, paths, self.waiter_token).start()
        try:
            held = self._settle(waiters, count)
            meter = CpuMeter({"api": api.pid, "redis": self.redis.pid})
            meter.start()
            time.sleep(HOLD_SECONDS)
            cpu = {name: round(s / HOLD_SECONDS, 3) for name, s in meter.stop().items()}
            rss = rss_mib(api)
            figures = plain_gets(
                base, f"/v1/jobs/{jobs[0]}", self.reader_token, self.args.gets, self.args.budget
            )
            figures.update(
                waiters=count,
                held_by_api=held,
                open_after_gets=waiters.open,
                cpu_s_per_s_holding=cpu,
                api_rss_mib=rss,
                waiter_answers={str(code): n for code, n in waiters.answers.items()},
                waiter_errors=waiters.errors,
            )
        finally:
            waiters.stop()
        return figures

    def _settle(self, waiters: Waiters, count: int) -> int:
        """Wait until every waiter's request is written and the API holds them all, or holds
        no more for SETTLE_SECONDS (a gthread API holds one per thread); how many it holds."""
        held, since = -1, time.monotonic()
        while time.monotonic() - since < SETTLE_SECONDS:
            now_held = held_at_server(self.client)
            if waiters.open == count and now_held >= count:
                return now_held
            if now_held != held:
                held, since = now_held, time.monotonic()
            time.sleep(0.2)
        return held


def rss_mib(api: ServiceProcess) -> float:
    """Resident memory of the API's master and workers."""
    master = psutil.Process(api.pid)
    return round(sum(p.memory_info().rss for p in [master, *master.children()]) / 2**20, 1)


def start_api(settings: Settings) -> ServiceProcess:
    db.upgrade(settings.resolved_database_url)
    url = settings.resolved_api_url
    return ServiceProcess(
        "api",
        orchestrator_argv("api"),
        log_path=settings.var_dir / "logs" / "api.log",
        env=child_env(settings),
        ready=lambda: api_ready(url),
    ).start(60)


def post_jobs(base: str, token: str, count: int) -> list[str]:
    """Pings for a hypervisor with no worker: queued for good."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    ids = []
    for _ in range(count):
        answer = http.post(f"{base}/v1/jobs", json={"kind": "ping", "hypervisor": "bench"})
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gets", type=int, default=500)
    parser.add_argument("--wait", type=int, default=30, help="each long-poll's ?wait=")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds of plain GETs")
    args = parser.parse_args()
    raise_open_files_limit()  # 1,000 client sockets in this process
    run = Run(Path(tempfile.mkdtemp(prefix="bench-waiters-")), args)
    report: dict[str, Any] = {name: {} for name in SETUPS}
    try:
        for count in LOADS:
            for setup in SETUPS:
                report[setup][f"{count} waiters"] = run.measure(setup, count)
    finally:
        run.redis.stop()
    report["over_gevent"] = {name: ratios(report["gevent"], report[name]) for name in SETUPS}
    del report["over_gevent"]["gevent"]
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "waiters.json").write_text(json.dumps(report, indent=2))
    return 0


def ratios(gevent: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Per load: how many times longer a plain GET takes on ``other`` than on gevent (a lower
    bound where ``other``'s figure is)."""
    return {
        load: {
            "p50": other[load]["p50_ms"] / gevent[load]["p50_ms"],
            "p99": other[load]["p99_ms"] / gevent[load]["p99_ms"],
            "lower_bound": other[load]["lower_bound"],
        }
        for load in gevent
    }


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n{'workers':<14}{'waiters':>8}{'held':>6}{'GETs':>6}{'p50 ms':>11}{'p99 ms':>11}"
        f"{'CPU/s':>7}{'RSS MiB':>9}"
    )
    for name in SETUPS:
        for figures in report[name].values():
            mark = ">=" if figures["lower_bound"] else ""
            print(
                f"{name:<14}{figures['waiters']:>8}{figures['held_by_api']:>6}"
                f"{figures['gets'] - figures['unanswered']:>6}"
                f"{mark + format(figures['p50_ms'], '.1f'):>11}"
                f"{mark + format(figures['p99_ms'], '.1f'):>11}"
                f"{figures['cpu_s_per_s_holding']['api']:>7.2f}{figures['api_rss_mib']:>9.0f}"
            )
    for name, loads in report["over_gevent"].items():
        for load, ratio in loads.items():
            mark = ">=" if ratio["lower_bound"] else ""
            print(
                f"{name}, {load}: a plain GET takes {mark}{ratio['p50']:.1f}x (p50), "
                f"{mark}{ratio['p99']:.1f}x (p99) what it takes on gevent"
            )
    p99 = report["gevent"][f"{max(LOADS)} waiters"]["p99_ms"]
    print(
        f"gevent with {max(LOADS)} waiters: p99 {p99:.1f} ms (target under "
        f"{TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'NOT met'})"
    )


if __name__ == "__main__":
    sys.exit(main())
