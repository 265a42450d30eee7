"""The faults the chaos driver injects: each hits the running stack, holds for a random while,
and recovers it (restart what was killed, wake what was stopped)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.local.processes import ServiceProcess
from tests.chaos.daemon_hypervisor import DaemonHypervisor
from tests.support.services import RunningStack
from tests.support.sshd import SshdFleet, start_same_port


@dataclass
class Target:
    """What the faults act on: the stack's processes, its Redis, the sshd hosts, the libvirtd
    of the daemon-served hypervisor."""

    stack: RunningStack
    redis: ServiceProcess
    sshd: SshdFleet
    daemon: DaemonHypervisor
    freeze_seconds: float


@dataclass(frozen=True)
class Hit:
    """What a fault did, and the hypervisor it hit (None: the whole stack)."""

    what: str
    hypervisor: str | None = None


@dataclass(frozen=True)
class Fault:
    """One fault. ``may_end``: the states other than succeeded that a job may end in because
    of it (with its reason), when it ran where the fault hit (its hypervisor, its ``kinds``)
    before the fault was over; every other job must succeed. ``during_submit``: it hits while
    the jobs are being sent rather than while they run. ``wipes_daemon``: the daemon-served
    hypervisor starts afresh, losing the domains it held."""

    name: str
    hit: Callable[[Target, random.Random], Hit]
    may_end: frozenset[str] = frozenset()
    kinds: frozenset[str] | None = None
    during_submit: bool = False
    may_refuse: bool = False
    wipes_daemon: bool = False


def _pause(rng: random.Random, low: float = 0.2, high: float = 2.0) -> float:
    seconds = rng.uniform(low, high)
    time.sleep(seconds)
    return seconds


def _dead(service: ServiceProcess) -> int:
    assert service.process is not None
    pid = service.process.pid
    service.process.wait(120)
    return pid


def _restart_worker(target: Target, hypervisor: str) -> None:
    target.stack.workers[hypervisor] = target.stack.restart(f"worker-{hypervisor}")


def worker_sigkill(target: Target, rng: random.Random) -> Hit:
    hypervisor = rng.choice(sorted(target.stack.workers))
    worker = target.stack.workers[hypervisor]
    worker.kill(signal.SIGKILL)
    pid = _dead(worker)
    down = _pause(rng)
    _restart_worker(target, hypervisor)
    return Hit(f"SIGKILL worker {hypervisor} (pid {pid}), restarted after {down:.1f}s", hypervisor)


def worker_sigterm(target: Target, rng: random.Random) -> Hit:
    # Celery's warm shutdown: it takes no new task, finishes those it runs, then exits.
    hypervisor = rng.choice(sorted(target.stack.workers))
    worker = target.stack.workers[hypervisor]
    worker.kill(signal.SIGTERM)
    started = time.monotonic()
    pid = _dead(worker)
    drained = time.monotonic() - started
    down = _pause(rng)
    _restart_worker(target, hypervisor)
    what = (
        f"SIGTERM worker {hypervisor} (pid {pid}), exited after {drained:.1f}s, "
        f"restarted after {down:.1f}s"
    )
    return Hit(what, hypervisor)


def redis_restart(target: Target, rng: random.Random) -> Hit:
    # A clean stop writes the append-only file; the same port and directory load it back.
    target.redis.stop()
    down = _pause(rng)
    target.redis.start()
    return Hit(f"Redis stopped and started again on its AOF after {down:.1f}s")


def redis_freeze(target: Target, rng: random.Random) -> Hit:
    # Stopped, not gone: connections stay open and every call waits out its socket timeout.
    assert target.redis.pid is not None
    os.kill(target.redis.pid, signal.SIGSTOP)
    try:
        time.sleep(target.freeze_seconds)
    finally:
        os.kill(target.redis.pid, signal.SIGCONT)
    return Hit(f"Redis frozen (SIGSTOP) for {target.freeze_seconds:g}s")


def recorder_kill(target: Target, rng: random.Random) -> Hit:
    recorder = target.stack.service("recorder")
    recorder.kill(signal.SIGKILL)
    pid = _dead(recorder)
    down = _pause(rng)
    target.stack.restart("recorder")
    return Hit(f"SIGKILL recorder (pid {pid}), restarted after {down:.1f}s")


def api_kill(target: Target, rng: random.Random) -> Hit:
    api = target.stack.service("api")
    api.kill(signal.SIGKILL)  # the whole group: the gunicorn master and its workers
    pid = _dead(api)
    down = _pause(rng, 0.1, 1.0)
    target.stack.restart("api")
    return Hit(f"SIGKILL API (pid {pid}) mid-request, restarted after {down:.1f}s")


def ssh_host_dies(target: Target, rng: random.Random) -> Hit:
    host = rng.choice(target.sshd.hosts)
    host.stop()  # the listener and each connection's sshd: commands die mid-way
    down = _pause(rng, 0.5, 2.0)
    try:
        start_same_port(host)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        raise AssertionError(f"sshd {host.name} did not come back: {exc}") from exc
    return Hit(f"sshd {host.name} ({host.address}:{host.port}) killed, back after {down:.1f}s")


def libvirtd_restart(target: Target, rng: random.Random) -> Hit:
    down = target.daemon.restart(rng.uniform(0.2, 2.0))
    name = target.daemon.name
    return Hit(f"libvirtd of {name} restarted under its worker after {down:.1f}s", name)


def pool_fills_up(target: Target, rng: random.Random) -> Hit:
    # Left: less than one job's 1 GiB disk. The test driver refuses an allocation past it, and
    # the worker a sparse volume bigger than the space left.
    filler = target.daemon.fill(leave_bytes=256 * 1024**2)
    try:
        full = _pause(rng, 0.5, 2.5)
    finally:
        filler.delete(0)
    return Hit(f"pool default of {target.daemon.name} full for {full:.1f}s", target.daemon.name)


FLEET_KINDS = frozenset({"fleet.run", "fleet.ping"})
FAULTS = {
    fault.name: fault
    for fault in (
        # A killed worker's jobs are run again, or end lost when their kind may not re-run.
        Fault("worker-sigkill", worker_sigkill, may_end=frozenset({"lost"})),
        Fault("worker-sigterm", worker_sigterm),
        Fault("redis-restart", redis_restart),
        Fault("redis-freeze", redis_freeze),
        Fault("recorder-kill", recorder_kill),
        Fault("api-kill", api_kill, during_submit=True),
        Fault("ssh-host-dies", ssh_host_dies, may_end=frozenset({"failed"}), kinds=FLEET_KINDS),
        Fault(
            "pool-full",
            pool_fills_up,
            may_end=frozenset({"failed"}),
            kinds=frozenset({"vm.provision", "volume.create"}),
            during_submit=True,
            may_refuse=True,
        ),
        Fault(
            "libvirtd-restart",
            libvirtd_restart,
            may_end=frozenset({"failed"}),
            kinds=frozenset({"vm.provision"}),
            wipes_daemon=True,
        ),
    )
}
