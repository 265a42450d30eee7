"""The chaos driver: per fault, trials of a batch of VM provisions, pings and fleet jobs on a
real stack, the fault hitting at a random moment, then the checks of :mod:`tests.chaos.checks`.

Importable by the test suite (a bounded run) and run by ``python -m tests.chaos`` (``make
chaos``). The random choices come from one seeded generator, printed first so a run can be
replayed (timings on a busy machine still differ).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.login_user import throwaway_user
from orchestrator.db import make_engine, make_sessionmaker
from orchestrator.fleet.files import fleet_files_dir
from orchestrator.jobs.lifecycle import JobState
from orchestrator.jobs.livestate import LiveState
from tests.chaos.batch import BatchPlan, Planned
from tests.chaos.checks import Allowed, Records, Submitted, TrialCheck
from tests.chaos.checks import duplicate_jobs as find_duplicate_jobs
from tests.chaos.client import CountingClient, SubmitRefused, Tally
from tests.chaos.daemon_hypervisor import NAME as DAEMON
from tests.chaos.daemon_hypervisor import daemon_hypervisor
from tests.chaos.faults import FAULTS, Fault, Hit, Target
from tests.chaos.summary import FaultTotals, Summary
from tests.chaos.watch import ServiceWatch
from tests.hypervisors.conftest import Node
from tests.support.services import RunningStack, redis_url, running_redis, test_stack
from tests.support.sshd import SshdFleet

HYPERVISORS = ("hv-a", "hv-b")  # test driver inside the worker; DAEMON's lives in a libvirtd
# Room for every VM of a long run: the test driver's pools and memory are only numbers.
NODE = Node(cpus=512, memory_mib=256 * 1024, pools={"default": 100_000})
# Liveness as in production, only faster: the grace outlasts a Redis restart or thaw (workers
# beat again within a second of it), so those faults must lose nothing.
CHAOS_SETTINGS: dict[str, Any] = {
    "heartbeat_interval": 0.5,
    "heartbeat_ttl": 2.0,
    "recorder_lost_check_interval": 0.5,
    "outbox_grace_seconds": 0.5,
    "lost_grace_seconds": 5.0,
    "api_workers": 1,
    "worker_concurrency": 4,
}


@dataclass
class ChaosConfig:
    trials: int = 1  # per fault
    faults: tuple[str, ...] = tuple(FAULTS)
    freeze_seconds: float = 12.0
    seed: int | None = None
    vms_per_trial: int = 6
    final_timeout: float = 120.0  # for the jobs of a trial to end, after the fault


class ChaosRun:
    """One run: a stack on a private Redis; three test-driver hypervisors, two inside their
    workers and one served by a private libvirtd; the sshd hosts."""

    def __init__(
        self, root: Path, sshd: SshdFleet, config: ChaosConfig, say: Callable[[str], None] = print
    ) -> None:
        self.root = root
        self.sshd = sshd
        self.config = config
        self.say = say
        self.seed = config.seed if config.seed is not None else random.randrange(1_000_000)
        self.rng = random.Random(self.seed)
        self.tally = Tally()
        self.per_fault = {name: FaultTotals() for name in config.faults}
        self.checks: list[TrialCheck] = []
        self.made: dict[str, tuple[str, int]] = {}  # VM name -> (hypervisor, worker pid)
        self.volumes: set[str] = set()  # in pool default of DAEMON, made by succeeded jobs
        self.refused = 0  # jobs the API turned away (409) while a fault allowed it
        # Succeeded VMs per hypervisor, each listed even with none.
        self.placed: Counter[str] = Counter(dict.fromkeys((*HYPERVISORS, DAEMON), 0))
        self.reported_domains: set[tuple[str, str]] = set()
        self.reported_volumes: set[tuple[str, str]] = set()
        self.reported_duplicates: set[str] = set()

    def run(self) -> Summary:
        self.say(f"chaos seed {self.seed}: {self.config.trials} trial(s) per fault")
        with self._stack() as target:
            url = target.stack.settings.resolved_api_url
            self.client = CountingClient(url, self.tally)
            engine = make_engine(target.stack.settings.resolved_database_url)
            live = LiveState.from_url(redis_url(target.redis))
            self.records = Records(make_sessionmaker(engine), live)
            self.watch = ServiceWatch(target, live, self._blame)
            try:
                with self.watch.running():
                    for name in self.config.faults:
                        for trial in range(self.config.trials):
                            self._trial(target, FAULTS[name], trial)
                    self.watch.wait_steady()  # the last fault's late deaths count too
            finally:
                engine.dispose()
        findings = []
        for check in self.checks:
            self.per_fault.setdefault(check.fault, FaultTotals())
            self.per_fault[check.fault].findings += Counter(f.category for f in check.findings)
            findings += check.findings
        return Summary(self.seed, self.per_fault, findings, self.tally, self.placed)

    def _blame(self, seen: str) -> None:
        """A service died by itself: the finding of the trial whose fault came last."""
        if not self.checks:
            self.checks.append(TrialCheck("before any fault", 0))
        check = self.checks[-1]
        check.found("crashed", None, seen)
        self.say(f"  {check.findings[-1]}")

    @contextmanager
    def _stack(self) -> Iterator[Target]:
        uris = {}
        pools = (self.root / "var" / "pools").resolve()
        for name in HYPERVISORS:
            path = self.root / f"{name}.xml"
            path.write_text(NODE.xml(name, pools))
            uris[name] = f"test://{path}"
        public_key = Path(f"{self.sshd.client_key}.pub").read_text()
        with (
            throwaway_user(f"orchchaos{os.getpid()}", public_key) as login,
            running_redis(self.root / "redis") as redis,
            daemon_hypervisor(pools / f"{DAEMON}-default") as daemon,
            test_stack(
                self.root, redis_url(redis), {**uris, DAEMON: daemon.uri}, **CHAOS_SETTINGS
            ) as stack,
        ):
            keys = fleet_files_dir(stack.settings) / "keys"
            keys.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.sshd.client_key, keys / "fleet.key")
            (keys / "fleet.key").chmod(0o600)
            # An unprivileged user with /bin/sh: root's shell start-up here (pyenv's rehash,
            # which waits on a lock any killed shell may leave) is no part of what is tested.
            self.plan = BatchPlan(
                HYPERVISORS, DAEMON, self.sshd, login.name, CHAOS_SETTINGS["worker_concurrency"]
            )
            yield Target(stack, redis, self.sshd, daemon, self.config.freeze_seconds)

    # --- one trial ---------------------------------------------------------------------------
    def _trial(self, target: Target, fault: Fault, trial: int) -> None:
        rng = random.Random(self.rng.randrange(2**32))
        self.watch.wait_steady()  # deaths the last fault caused are still its own
        began = time.monotonic()
        errors_before, bad_before = len(self.tally.server_errors), self.tally.bad_inputs
        refused_before = self.refused
        check = TrialCheck(fault.name, trial)
        self.checks.append(check)
        bodies = self.plan.batch(f"{fault.name}-{trial}", rng, self.config.vms_per_trial)
        jobs: list[Submitted] = []
        with self._probing(jobs, rng):
            if fault.during_submit:
                sender = threading.Thread(
                    target=self._send, args=(bodies, jobs, check, rng, 0.08, fault.may_refuse)
                )
                sender.start()
                time.sleep(rng.uniform(0.05, 0.6))
                hit = self._hit(fault, target, rng)
                sender.join()
            else:
                self._send(bodies, jobs, check, rng, 0.0, fault.may_refuse)
                time.sleep(rng.uniform(0.0, 2.0))  # a random moment while they run
                hit = self._hit(fault, target, rng)
        allowed = Allowed(fault.may_end, fault.kinds, hit.hypervisor, time.time())
        self._send_burst(self.plan.after_fault(), jobs, check)
        docs = self.client.wait_final([job.id for job in jobs], self.config.final_timeout)
        check.final_states(jobs, docs, allowed)
        check.agreement(self.records, self.client, jobs, timeout=60)
        self._note_made(jobs, docs)
        if fault.wipes_daemon:
            self._restart_daemon_state(target, check)
        check.domains(self.client, self._expected(target.stack), self.reported_domains, 30)
        held = target.daemon.volumes()
        check.holds("volume", DAEMON, held, self.volumes, self.reported_volumes)
        self._duplicates(check)
        self._clear_daemon(target)

        states = Counter(doc["state"] for doc in docs.values())
        totals = self.per_fault[fault.name]
        totals.trials += 1
        totals.jobs += len(jobs)
        totals.states += states
        totals.bad_inputs += self.tally.bad_inputs - bad_before
        totals.server_errors += len(self.tally.server_errors) - errors_before
        took = time.monotonic() - began
        shown = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        if self.refused > refused_before:
            shown += f"; {self.refused - refused_before} refused (409) while it was on"
        self.say(f"{fault.name} trial {trial} ({took:.0f}s): {hit.what}; {len(jobs)} jobs: {shown}")
        for job in jobs:  # why each job that did not succeed ended as it did
            doc = docs.get(job.id) or {}
            if doc.get("state") not in (None, JobState.SUCCEEDED.value):
                detail = (doc.get("error") or {}).get("detail")
                self.say(f"  {doc['state']}: {job.kind} on {doc.get('hypervisor')}: {detail}")
        for finding in check.findings:
            self.say(f"  {finding}")

    def _hit(self, fault: Fault, target: Target, rng: random.Random) -> Hit:
        with self.watch.fault:
            return fault.hit(target, rng)

    def _send(
        self,
        bodies: list[Planned],
        jobs: list[Submitted],
        check: TrialCheck,
        rng: random.Random,
        gap: float,
        refusable: bool,
    ) -> None:
        """Send each job under its own key; with ``refusable``, a 409 (no hypervisor fits
        while the fault is on) is counted, not a finding."""
        client = CountingClient(self.client.base_url, self.tally)
        for planned in bodies:
            key = f"chaos-{self.seed}-{rng.randrange(2**48):x}"
            body = planned.body
            try:
                job = client.submit(body, key, give_up_after=90)
            except SubmitRefused as exc:
                if refusable and exc.status == 409:
                    self.refused += 1
                else:
                    check.found("unexpected", None, str(exc)[:500])
                continue
            jobs.append(Submitted(job["id"], body["kind"], planned.domain, planned.volume))
            time.sleep(rng.uniform(0, gap))

    def _send_burst(self, bodies: list[Planned], jobs: list[Submitted], check: TrialCheck) -> None:
        """All at once, so that each worker hands them to as many of its threads as it can."""

        def send(body: dict[str, Any]) -> None:
            client = CountingClient(self.client.base_url, self.tally)
            try:
                job = client.submit(body, f"chaos-{uuid.uuid4()}", give_up_after=90)
            except SubmitRefused as exc:
                check.found("unexpected", None, str(exc)[:500])
                return
            jobs.append(Submitted(job["id"], body["kind"], None))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(send, [planned.body for planned in bodies]))

    @contextmanager
    def _probing(self, jobs: list[Submitted], rng: random.Random) -> Iterator[None]:
        """While the fault is on: bad inputs, and reads of the trial's jobs, each of which
        must get an answer below 500 (or none while the API is down)."""
        stop = threading.Event()
        probe_rng = random.Random(rng.randrange(2**32))

        def probe() -> None:
            client = CountingClient(self.client.base_url, self.tally)
            while not stop.wait(probe_rng.uniform(0.1, 0.5)):
                client.send_bad_input(probe_rng)
                if jobs:
                    client.job(probe_rng.choice(jobs).id)

        thread = threading.Thread(target=probe, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(60)

    # --- what libvirt should hold ------------------------------------------------------------
    def _note_made(self, jobs: list[Submitted], docs: dict[str, dict[str, Any]]) -> None:
        for job in jobs:
            doc = docs.get(job.id)
            if not doc or doc["state"] != JobState.SUCCEEDED.value:
                continue
            if job.domain:
                pid = int(str(doc["worker"]).rsplit(":", 1)[1])
                self.made[job.domain] = (doc["hypervisor"], pid)
                self.placed[doc["hypervisor"]] += 1
            if doc["hypervisor"] == DAEMON:
                made = [v["name"] for v in doc["result"].get("volumes") or []] if job.domain else []
                self.volumes |= {*made, *([job.volume] if job.volume else [])}

    def _expected(self, stack: RunningStack) -> dict[str, set[str]]:
        """Per hypervisor, the VMs that succeeded there; for one whose test driver lives in
        its worker process, only those the current process made (they go with it)."""
        return {
            hypervisor: {
                name
                for name, (where, pid) in self.made.items()
                if where == hypervisor and (hypervisor == DAEMON or pid == worker.pid)
            }
            for hypervisor, worker in stack.workers.items()
        }

    def _restart_daemon_state(self, target: Target, check: TrialCheck) -> None:
        """The daemon restarted mid-trial with a fresh test driver: what it held before is
        gone. What it holds now must be VMs that succeeded there (a VM whose job ended after
        the restart may have been made before it, so a missing one is not counted)."""
        held = target.daemon.domains()
        succeeded = {name for name, (where, _) in self.made.items() if where == DAEMON}
        for name in sorted(held - succeeded):
            self.reported_domains.add((DAEMON, name))
            check.found("orphaned", None, f"domain {name} on {DAEMON}: no job made it")
        self.made = {n: v for n, v in self.made.items() if v[0] != DAEMON or n in held}
        volumes = target.daemon.volumes()
        for name in sorted(volumes - self.volumes):
            self.reported_volumes.add((DAEMON, name))
            check.found("orphaned", None, f"volume {name} on {DAEMON}: no job made it")
        self.volumes &= volumes

    def _clear_daemon(self, target: Target) -> None:
        """Once checked, the libvirtd-served hypervisor's VMs and volumes go, so that a long
        run never fills its small test driver."""
        target.daemon.clear()
        self.made = {name: made for name, made in self.made.items() if made[0] != DAEMON}
        self.volumes.clear()

    def _duplicates(self, check: TrialCheck) -> None:
        for name, ids in find_duplicate_jobs(self.records).items():
            if name not in self.reported_duplicates:
                self.reported_duplicates.add(name)
                check.found("duplicated", ids[0], f"VM {name} stored as jobs {ids}")


def run_chaos(
    root: Path, sshd: SshdFleet, config: ChaosConfig, say: Callable[[str], None] = print
) -> Summary:
    """Run every fault's trials; print each trial and the summary table through ``say``."""
    summary = ChaosRun(root, sshd, config, say).run()
    say(summary.report())
    return summary
