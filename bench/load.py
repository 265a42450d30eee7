"""Benchmark: the pipeline under load, and a backlog queued while the workers are stopped.

Two hypervisors on the libvirt test driver, each with its own worker process, behind the API
(2 gunicorn workers) and the recorder. Phase "burst": ``--jobs`` pings spread over both, posted
by ``--clients`` concurrent HTTP clients, each POST with an Idempotency-Key; 10% of the POSTs
repeat an earlier request's key and body (the earlier job answers, 200) and one reuses a key
with another body (a 422 naming Idempotency-Key). Phase "backlog": both workers stopped with
SIGTERM (Celery's warm shutdown), ``--backlog`` pings queued, the workers started again.

After each phase the run counts, in SQL and through the API, what became of every job: one job
per distinct key, every job ``succeeded``, each run once (one ``running`` event, attempt 1).
Reported: jobs per second of each phase, and the peak RSS of the API (all its gunicorn
processes), the recorder and each worker, read from /proc every 0.5 s over the whole run. The
rate limit is raised out of the way: every client shares one address, and the limit is a guard
per caller, not what is measured.

    .venv/bin/python -m bench.load [--jobs 1000] [--clients 50] [--backlog 10000]   (from the root)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.local.processes import ServiceProcess, free_port, redis_server
from orchestrator.local.stack import LocalStack
from orchestrator.models import Job, JobEvent
from orchestrator.settings import Settings

RESULTS = Path(__file__).with_name("results")
HYPERVISORS = ("load-a", "load-b")
TEST_URI = "test:///default"
REPEAT_SHARE = 0.10
BURST_SUBMITTER = "load-burst"
BACKLOG_SUBMITTER = "load-backlog"
SAMPLE_SECONDS = 0.5
PAGE = 500
# The stack as it ships (Settings' defaults) but for the rate limit; see the docstring.
STACK_SETTINGS: dict[str, Any] = {
    "rate_limit": "1000000/minute",
    "api_workers": 2,
    "worker_concurrency": 8,
}
MIB = 1024 * 1024


# ---- the clients


@dataclass(frozen=True)
class Sent:
    """One POST and the API's answer (``status`` 0 when none came)."""

    role: str  # "new", "repeat" (an answered request sent again) or "conflict" (another body)
    key: str | None
    status: int
    job_id: str | None = None
    state: str | None = None
    expected_id: str | None = None  # for a repeat: the job its key made
    detail: str = ""
    error_fields: tuple[str, ...] = ()


def ping(index: int, hypervisors: tuple[str, ...], tag: str) -> dict[str, Any]:
    hypervisor = hypervisors[index % len(hypervisors)]
    return {"kind": "ping", "hypervisor": hypervisor, "params": {"message": f"{tag}-{index}"}}


def burst_plan(jobs: int, clients: int, seed: int = 1) -> list[str]:
    """The roles of the burst's POSTs: ``jobs`` new ones and 10% of all repeats, one of which
    is the conflict. The first ``clients`` are new, so a repeat always finds an answered one."""
    repeats = round(jobs * REPEAT_SHARE / (1 - REPEAT_SHARE))
    rest = ["new"] * (jobs - clients) + ["repeat"] * (repeats - 1) + ["conflict"]
    random.Random(seed).shuffle(rest)
    return ["new"] * clients + rest


class Clients:
    """Concurrent HTTP clients, each with its own connection, working through one plan."""

    def __init__(self, base: str, clients: int, submitter: str, seed: int = 2) -> None:
        self.base, self.clients = base, clients
        self.headers = {"X-Submitter": submitter}
        self.sent: list[Sent] = []
        self._answered: list[tuple[str, dict[str, Any], str]] = []  # key, body, job id
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def post_all(
        self, roles: list[str], body: Callable[[int], dict[str, Any]], keyed: bool
    ) -> None:
        """POST every planned request; a new one's body is ``body(index)``, its key (when
        ``keyed``) made from the index."""
        items = iter(enumerate(roles))

        def client() -> None:
            http = requests.Session()
            while (item := self._next(items)) is not None:
                index, role = item
                if role == "new":
                    self._post_new(http, index, body(index), keyed)
                else:
                    self._post_again(http, role)

        threads = [threading.Thread(target=client) for _ in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _next(self, items: Iterator[tuple[int, str]]) -> tuple[int, str] | None:
        with self._lock:
            return next(items, None)

    def _post_new(
        self, http: requests.Session, index: int, body: dict[str, Any], keyed: bool
    ) -> None:
        key = f"{self.headers['X-Submitter']}-{index}" if keyed else None
        sent = self._post(http, "new", key, body)
        if key and sent.status == 202 and sent.job_id:
            with self._lock:
                self._answered.append((key, body, sent.job_id))

    def _post_again(self, http: requests.Session, role: str) -> None:
        with self._lock:
            key, body, job_id = self._random.choice(self._answered)
        if role == "conflict":
            body = {**body, "params": {"message": "another body under a used key"}}
        self._post(http, role, key, body, expected_id=job_id)

    def _post(
        self,
        http: requests.Session,
        role: str,
        key: str | None,
        body: dict[str, Any],
        expected_id: str | None = None,
    ) -> Sent:
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        try:
            answer = http.post(f"{self.base}/v1/jobs", json=body, headers=headers, timeout=60)
        except requests.RequestException as exc:
            sent = Sent(role, key, 0, expected_id=expected_id, detail=repr(exc))
        else:
            sent = _sent(role, key, answer, expected_id)
        with self._lock:
            self.sent.append(sent)
        return sent


def _sent(role: str, key: str | None, answer: requests.Response, expected: str | None) -> Sent:
    try:
        document = answer.json()
    except ValueError:
        return Sent(role, key, answer.status_code, expected_id=expected, detail=answer.text[:300])
    fields = tuple(str(e.get("field")) for e in document.get("errors") or [])
    return Sent(
        role,
        key,
        answer.status_code,
        job_id=document.get("id"),
        state=document.get("state"),
        expected_id=expected,
        detail=str(document.get("detail", "")),
        error_fields=fields,
    )


def statuses(sent: Iterable[Sent]) -> Counter[tuple[str, int]]:
    """How many POSTs of each role got each status."""
    return Counter((s.role, s.status) for s in sent)


def wrong_repeats(sent: Iterable[Sent]) -> list[Sent]:
    """Repeats not answered 200 with the job their key made."""
    return [s for s in sent if s.role == "repeat" and (s.status, s.job_id) != (200, s.expected_id)]


def conflicts_naming_the_key(sent: Iterable[Sent]) -> list[bool]:
    """For each conflict: was it a 422 that names Idempotency-Key?"""
    return [
        s.status == 422 and "Idempotency-Key" in s.detail and "Idempotency-Key" in s.error_fields
        for s in sent
        if s.role == "conflict"
    ]


# ---- what SQL and the API say


def sql_states(sessions: sessionmaker[Session], submitter: str) -> Counter[str]:
    with sessions() as session:
        rows = session.execute(
            select(Job.state, func.count()).where(Job.submitter == submitter).group_by(Job.state)
        )
        return Counter({state: count for state, count in rows})


def rows_per_key(sessions: sessionmaker[Session], submitter: str) -> Counter[str | None]:
    """Job rows of ``submitter`` per idempotency key."""
    with sessions() as session:
        rows = session.execute(
            select(Job.idempotency_key, func.count())
            .where(Job.submitter == submitter)
            .group_by(Job.idempotency_key)
        )
        return Counter({key: count for key, count in rows})


def job_ids(sessions: sessionmaker[Session], submitter: str) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Job.id).where(Job.submitter == submitter)))


def not_run_once(sessions: sessionmaker[Session], submitter: str) -> dict[str, dict[str, int]]:
    """Jobs of ``submitter`` that did not run exactly once: their count of ``running`` events,
    their highest event attempt and their own attempt, unless those are 1, 1, 1."""
    with sessions() as session:
        ours = select(Job.id).where(Job.submitter == submitter).scalar_subquery()
        events = session.execute(
            select(
                JobEvent.job_id,
                func.sum(case((JobEvent.state == "running", 1), else_=0)),
                func.max(JobEvent.attempt),
            )
            .where(JobEvent.job_id.in_(ours))
            .group_by(JobEvent.job_id)
        )
        seen = {job: (int(running or 0), int(top)) for job, running, top in events}
        rows = session.execute(select(Job.id, Job.attempt).where(Job.id.in_(ours)))
        attempts = {job: attempt for job, attempt in rows}
    odd = {}
    for job, attempt in attempts.items():
        running, top = seen.get(job, (0, 0))
        if (running, top, attempt) != (1, 1, 1):
            odd[job] = {"running_events": running, "highest_event_attempt": top, "attempt": attempt}
    return odd


def api_jobs(base: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The API's documents of the jobs ``ids``, read page by page from ``GET /v1/jobs``."""
    http = requests.Session()
    found: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] = {"limit": PAGE}
    while True:
        answer = http.get(f"{base}/v1/jobs", params=params, timeout=60)
        answer.raise_for_status()
        page = answer.json()
        found.update((job["id"], job) for job in page["items"] if job["id"] in ids)
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


def disagreements(
    sessions: sessionmaker[Session], base: str, submitter: str
) -> dict[str, tuple[str | None, str | None]]:
    """Jobs whose state the API and SQL tell differently: id -> (SQL, API)."""
    with sessions() as session:
        rows = session.execute(select(Job.id, Job.state).where(Job.submitter == submitter))
        recorded = {job_id: state for job_id, state in rows}
    shown = {job_id: doc["state"] for job_id, doc in api_jobs(base, set(recorded)).items()}
    return {
        job_id: (recorded.get(job_id), shown.get(job_id))
        for job_id in recorded.keys() | shown.keys()
        if recorded.get(job_id) != shown.get(job_id)
    }


def wait_for_state(
    sessions: sessionmaker[Session], submitter: str, state: str, total: int, timeout: float
) -> Counter[str]:
    """Poll SQL until ``total`` jobs of ``submitter`` are in ``state``; their states by then."""
    deadline = time.monotonic() + timeout
    while (states := sql_states(sessions, submitter))[state] != total:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return states


# ---- the workers


def stop_workers(workers: Iterable[ServiceProcess]) -> dict[str, int | None]:
    """SIGTERM each worker (a warm shutdown), in parallel; each one's exit status."""
    workers = list(workers)
    threads = [threading.Thread(target=worker.stop) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {w.name: w.process.returncode if w.process else None for w in workers}


def start_workers(workers: Iterable[ServiceProcess]) -> None:
    """Start the stopped workers again, same command and log; back once each beats."""
    workers = list(workers)
    for worker in workers:
        worker.restart()
    for worker in workers:
        worker.wait_ready(120)


# ---- memory


def rss_bytes(pid: int) -> int | None:
    """VmRSS of ``pid`` from /proc; None once it is gone (or a zombie, which has none)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a gunicorn master and its workers)."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").glob("*"):
            try:
                tree.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
        index += 1
    return tree


@dataclass
class Peak:
    """The highest RSS seen of one service: of its whole process tree at one sample, and of
    each process it ran (a restarted worker has two)."""

    total: int = 0
    processes: dict[int, int] = field(default_factory=dict)
    samples: int = 0

    def add(self, sizes: Mapping[int, int]) -> None:
        self.samples += 1
        self.total = max(self.total, sum(sizes.values()))
        for pid, size in sizes.items():
            self.processes[pid] = max(self.processes.get(pid, 0), size)

    @property
    def largest_process(self) -> int:
        return max(self.processes.values(), default=0)

    def report(self) -> dict[str, Any]:
        return {
            "peak_mib": round(self.total / MIB, 1),
            "peak_process_mib": round(self.largest_process / MIB, 1),
            "processes_mib": {
                str(pid): round(size / MIB, 1) for pid, size in self.processes.items()
            },
            "samples": self.samples,
        }


class RssSampler:
    """Samples the RSS of named services (each a PID, read anew every time: a restarted
    service keeps its name) and their children, every ``interval`` seconds in a thread."""

    def __init__(
        self, services: Mapping[str, Callable[[], int | None]], interval: float = SAMPLE_SECONDS
    ) -> None:
        self.services, self.interval = services, interval
        self.peaks = {name: Peak() for name in services}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        for name, pid_of in self.services.items():
            pid = pid_of()
            if pid is None:
                continue
            sizes = {p: size for p in process_tree(pid) if (size := rss_bytes(p)) is not None}
            if sizes:
                self.peaks[name].add(sizes)

    def report(self) -> dict[str, dict[str, Any]]:
        return {name: peak.report() for name, peak in self.peaks.items()}


def pid_of(service: ServiceProcess) -> Callable[[], int | None]:
    return lambda: service.pid if service.alive() else None


# ---- the run


@dataclass
class Phase:
    """One phase's counts and times, as reported."""

    name: str
    jobs: int
    posts: int
    post_seconds: float
    finish_seconds: float  # until every job is succeeded in SQL
    statuses: dict[str, int]
    sql_states: dict[str, int]
    checks: dict[str, bool]
    extra: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["posts_per_s"] = round(self.posts / self.post_seconds, 1)
        figures["jobs_per_s"] = round(self.jobs / self.finish_seconds, 1)
        return figures


def burst(base: str, sessions: sessionmaker[Session], jobs: int, clients: int) -> Phase:
    roles = burst_plan(jobs, clients)
    posting = Clients(base, clients, BURST_SUBMITTER)
    started = time.perf_counter()
    posting.post_all(roles, lambda i: ping(i, HYPERVISORS, "burst"), keyed=True)
    posted = time.perf_counter()
    states = wait_for_state(sessions, BURST_SUBMITTER, "succeeded", jobs, timeout=600)
    finished = time.perf_counter()
    per_key = rows_per_key(sessions, BURST_SUBMITTER)
    checks = {
        "no_5xx_or_unanswered": not any(s.status >= 500 or s.status == 0 for s in posting.sent),
        "every_new_post_accepted": statuses(posting.sent)[("new", 202)] == jobs,
        "repeats_answer_the_earlier_job": not wrong_repeats(posting.sent),
        "conflict_is_422_naming_the_key": conflicts_naming_the_key(posting.sent) == [True],
        "one_job_per_key": sum(per_key.values()) == jobs and set(per_key.values()) == {1},
        "all_succeeded": states == Counter({"succeeded": jobs}),
        "sql_and_api_agree": not disagreements(sessions, base, BURST_SUBMITTER),
        "each_ran_once": not not_run_once(sessions, BURST_SUBMITTER),
    }
    return Phase(
        "burst",
        jobs,
        len(roles),
        posted - started,
        finished - started,
        _status_counts(posting.sent),
        dict(states),
        checks,
    )


def backlog(
    base: str,
    sessions: sessionmaker[Session],
    workers: list[ServiceProcess],
    jobs: int,
    clients: int,
) -> Phase:
    exits = stop_workers(workers)
    posting = Clients(base, clients, BACKLOG_SUBMITTER)
    started = time.perf_counter()
    posting.post_all(["new"] * jobs, lambda i: ping(i, HYPERVISORS, "backlog"), keyed=False)
    posted = time.perf_counter()
    waiting = wait_for_state(sessions, BACKLOG_SUBMITTER, "queued", jobs, timeout=600)
    shown = Counter(
        doc["state"] for doc in api_jobs(base, job_ids(sessions, BACKLOG_SUBMITTER)).values()
    )
    restarting = time.perf_counter()
    start_workers(workers)
    ready = time.perf_counter()
    states = wait_for_state(sessions, BACKLOG_SUBMITTER, "succeeded", jobs, timeout=1800)
    finished = time.perf_counter()
    checks = {
        "workers_stopped_warm": set(exits.values()) == {0},
        "no_5xx_or_unanswered": not any(s.status >= 500 or s.status == 0 for s in posting.sent),
        "every_post_accepted": statuses(posting.sent)[("new", 202)] == jobs,
        "all_stayed_queued": waiting == Counter({"queued": jobs}) == shown,
        "all_succeeded": states == Counter({"succeeded": jobs}),
        "sql_and_api_agree": not disagreements(sessions, base, BACKLOG_SUBMITTER),
        "each_ran_once": not not_run_once(sessions, BACKLOG_SUBMITTER),
    }
    extra = {
        "worker_exit_codes": exits,
        "workers_start_seconds": round(ready - restarting, 2),
        "drain_seconds": round(finished - restarting, 2),
        "drain_jobs_per_s": round(jobs / (finished - restarting), 1),
    }
    return Phase(
        "backlog",
        jobs,
        jobs,
        posted - started,
        finished - started,
        _status_counts(posting.sent),
        dict(states),
        checks,
        extra,
    )


def _status_counts(sent: Iterable[Sent]) -> dict[str, int]:
    return {f"{role} {status}": n for (role, status), n in sorted(statuses(sent).items())}


def start_services(stack: LocalStack) -> list[ServiceProcess]:
    """API and recorder as bench/pipeline.py starts them, and one worker per hypervisor; the
    workers."""
    stack.start(worker=False)
    workers = [stack.launch(stack.worker(name, TEST_URI)) for name in HYPERVISORS]
    for worker in workers:
        worker.wait_ready(60)
    return workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--backlog", type=int, default=10000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    redis = redis_server(free_port(), tmp / "redis", log_path=tmp / "redis.log").start()
    redis_url = f"redis://127.0.0.1:{redis.argv[redis.argv.index('--port') + 1]}/0"
    settings = Settings(
        var_dir=tmp / "var",
        redis_url=redis_url,
        api_port=free_port(),
        hypervisor=HYPERVISORS[0],
        libvirt_uri=TEST_URI,
        **STACK_SETTINGS,
    )
    stack = LocalStack(settings, flower=False)
    try:
        workers = start_services(stack)
        base = settings.resolved_api_url
        sessions = make_sessionmaker(make_engine(settings.resolved_database_url))
        named = {s.name: pid_of(s) for s in stack.services}
        with RssSampler(named) as sampler:
            phases = [
                burst(base, sessions, args.jobs, args.clients),
                backlog(base, sessions, workers, args.backlog, args.clients),
            ]
    finally:
        stack.stop()
        redis.stop()
    report = {
        "clients": args.clients,
        "phases": {phase.name: phase.report() for phase in phases},
        "peak_rss": sampler.report(),
    }
    print_report(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(report, indent=2))
    failed = [
        f"{p}: {c}" for p, f in report["phases"].items() for c, ok in f["checks"].items() if not ok
    ]
    for failure in failed:
        print(f"CHECK FAILED {failure}")
    return 1 if failed else 0


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'phase':<9}{'jobs':>7}{'posts':>7}{'posts/s':>9}{'jobs/s':>8}  statuses")
    for name, phase in report["phases"].items():
        print(
            f"{name:<9}{phase['jobs']:>7}{phase['posts']:>7}{phase['posts_per_s']:>9.1f}"
            f"{phase['jobs_per_s']:>8.1f}  {phase['statuses']}"
        )
        if phase["extra"]:
            print(f"{'':<9}{phase['extra']}")
    print(f"\n{'process':<16}{'peak MiB':>9}{'largest process MiB':>21}  per process")
    for name, peak in report["peak_rss"].items():
        print(
            f"{name:<16}{peak['peak_mib']:>9.1f}{peak['peak_process_mib']:>21.1f}  "
            f"{peak['processes_mib']}"
        )


if __name__ == "__main__":
    sys.exit(main())
